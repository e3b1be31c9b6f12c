package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=..."; when
// it is not, the module version from the build info is shown.
var version = "dev"

// versionOutput is what `aion version -o json` prints: the version and how
// the binary was built, from its build info.
type versionOutput struct {
	Version string `json:"version"` // -ldflags version, else the module version, else "dev"
	Module  string `json:"module,omitempty"`
	// ModuleVersion is the main module's version as Go stamped it: a tag,
	// a pseudo-version, or "(devel)".
	ModuleVersion string `json:"module_version,omitempty"`
	// Commit is the VCS revision, with "+dirty" when the checkout had
	// uncommitted changes; empty when built without VCS information.
	Commit     string `json:"commit,omitempty"`
	CommitTime string `json:"commit_time,omitempty"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

func newVersionCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Long: "Version prints the version of aion, the commit it was built from (+dirty when the checkout\n" +
			"had uncommitted changes), the Go version and the platform, read from the binary's build info.",
		Args: usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.RunE = func(*cobra.Command, []string) error {
		info, ok := debug.ReadBuildInfo()
		out := versionInfo(version, info, ok)
		return a.render(*format, out, func() error { return a.printVersion(out) })
	}
	return cmd
}

// versionInfo describes the binary from its -ldflags version and its build
// info (ok false: none, as in a binary built without module support).
func versionInfo(ldflags string, info *debug.BuildInfo, ok bool) versionOutput {
	out := versionOutput{Version: ldflags, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok {
		return out
	}
	out.Module, out.ModuleVersion, out.Go = info.Main.Path, info.Main.Version, info.GoVersion
	if out.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		out.Version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Commit = s.Value
		case "vcs.time":
			out.CommitTime = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && out.Commit != "" {
		out.Commit += "+dirty"
	}
	return out
}

// printVersion prints the version, then the build details one per line.
func (a *app) printVersion(v versionOutput) error {
	if _, err := fmt.Fprintln(a.stdout, "aion", v.Version); err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	commit := "unknown (built without VCS information)"
	if v.Commit != "" {
		commit = v.Commit
		if v.CommitTime != "" {
			commit += " (" + v.CommitTime + ")"
		}
	}
	fmt.Fprintf(w, "commit\t%s\n", commit)
	fmt.Fprintf(w, "go\t%s %s\n", v.Go, v.Platform)
	if v.Module != "" {
		fmt.Fprintf(w, "module\t%s %s\n", v.Module, v.ModuleVersion)
	}
	return w.Flush()
}
