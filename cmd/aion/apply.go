package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
)

func newApplyCommand(a *app) *cobra.Command {
	var (
		paths []string
		opt   api.ApplyOptions
	)
	cmd := &cobra.Command{
		Use:   "apply PATH... [-f PATH...] [--set NAME] [--prune | --prune-all] [--dry-run]",
		Short: "Store job files in the cluster",
		Long: "Apply reads job files and directories (recursively: *.yaml, *.yml; dot-files and dot-directories\n" +
			"are skipped), checks them as `aion validate` does and sends them to the API, which stores the whole\n" +
			"set in one transaction: all of it or, on any problem, none of it. Parents may be jobs already stored.\n" +
			"The jobs are recorded in an apply set, --set NAME, by default the paths as given (cleaned, sorted,\n" +
			"joined by commas). With --prune, stored jobs of that set that are in none of the files are deleted\n" +
			"(their fire history stays); jobs of other sets, or of none, only with --prune-all. A job recorded in\n" +
			"another set is updated and stays in it; with --set, it is refused unless --force-conflicts moves it\n" +
			"into the named set. --dry-run shows what would change.",
		Example: "  aion apply jobs/\n  aion apply jobs/ --prune --dry-run\n  aion apply -f a.yaml -f b.yaml --set team-a --prune",
		Args:    usageArgs(cobra.ArbitraryArgs),
	}
	format := outputFlag(cmd)
	cmd.Flags().StringArrayVarP(&paths, "filename", "f", nil, "job file or directory (repeatable; or give them as arguments)")
	cmd.Flags().StringVar(&opt.Set, "set", "", "the apply set to record the jobs in (default: the paths as given)")
	cmd.Flags().BoolVar(&opt.Prune, "prune", false, "delete stored jobs of the set that are not in the files")
	cmd.Flags().BoolVar(&opt.PruneAll, "prune-all", false, "delete every stored job that is not in the files, of any set")
	cmd.Flags().BoolVar(&opt.ForceConflicts, "force-conflicts", false, "move jobs recorded in another set into this one")
	cmd.Flags().BoolVar(&opt.DryRun, "dry-run", false, "show what would change; write nothing")
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		paths = append(args, paths...)
		if len(paths) == 0 {
			return &exitError{code: exitUsage, err: errors.New("apply: name the job files or directories: aion apply PATH (or -f PATH)")}
		}
		opt.DefaultSet = applySetName(paths)
		jobs, err := a.checkJobFiles(paths)
		if err != nil {
			return err
		}
		a.printWarnings(jobspec.Warnings(jobs))
		files, err := readJobFiles(paths)
		if err != nil {
			return err
		}
		res, err := c.Apply(ctx, files, opt)
		if err != nil {
			return err
		}
		return a.render(*format, res, func() error { return a.printApply(res) })
	})
	return cmd
}

// applySetName is the apply set of jobs applied from paths when none is
// named: the paths, cleaned, sorted and joined by commas. `aion dev --jobs
// DIR` and `aion apply DIR` name the same set.
func applySetName(paths []string) string {
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		names = append(names, filepath.Clean(p))
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
}

// checkJobFiles makes the checks of each file the server makes, first
// here: fast, and before anything is sent. Parents are the server's to
// check, since they may be stored jobs.
func (a *app) checkJobFiles(paths []string) ([]*jobspec.Job, error) {
	jobs, list := jobspec.Read(paths...)
	if len(list) > 0 {
		fmt.Fprintln(a.stderr, list.Error())
		return nil, &exitError{code: exitFailure, err: fmt.Errorf("%s, nothing applied", countNoun(len(list), "problem"))}
	}
	return jobs, nil
}

// readJobFiles reads the files jobspec.Load reads, named the same way, so
// that the server reports problems with the paths the user gave.
func readJobFiles(paths []string) ([]api.File, error) {
	var files []api.File
	for _, p := range paths {
		found, err := jobspec.Files(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, name := range found {
			data, err := os.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("read %w", err)
			}
			files = append(files, api.File{Name: name, Content: string(data)})
		}
	}
	return files, nil
}

func (a *app) printApply(res api.ApplyResponse) error {
	changes := make(map[string]string)
	for _, group := range []struct {
		what  string
		names []string
	}{{"created", res.Created}, {"updated", res.Updated}, {"unchanged", res.Unchanged}, {"deleted", res.Deleted}} {
		for _, name := range group.names {
			changes[name] = group.what
		}
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tRESULT")
	for _, name := range slices.Sorted(maps.Keys(changes)) {
		fmt.Fprintf(w, "%s\t%s%s\n", name, changes[name], ownerNote(res.Owners, name))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	summary := fmt.Sprintf("%d created, %d updated, %d unchanged, %d deleted",
		len(res.Created), len(res.Updated), len(res.Unchanged), len(res.Deleted))
	if res.DryRun {
		summary += " (dry run: nothing was written)"
	}
	if _, err := fmt.Fprintln(a.stdout, summary); err != nil {
		return err
	}
	if len(res.Kept) > 0 {
		_, err := fmt.Fprintf(a.stdout, "%s of other apply sets not pruned (--prune-all deletes them): %s\n",
			countNoun(len(res.Kept), "stored job"), strings.Join(res.Kept, ", "))
		return err
	}
	return nil
}

// ownerNote names the apply set of a job recorded in another set than the
// applied one.
func ownerNote(owners map[string]string, name string) string {
	set, ok := owners[name]
	switch {
	case !ok:
		return ""
	case set == "":
		return " (no apply set)"
	}
	return fmt.Sprintf(" (apply set %s)", set)
}
