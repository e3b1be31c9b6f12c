package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// versionOutput is what `aion version -o json` prints.
type versionOutput struct {
	Version string `json:"version"`
}

func newVersionCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.RunE = func(*cobra.Command, []string) error {
		return a.render(*format, versionOutput{Version: version}, func() error {
			_, err := fmt.Fprintln(a.stdout, "aion", version)
			return err
		})
	}
	return cmd
}
