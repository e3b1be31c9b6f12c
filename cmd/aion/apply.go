package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
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
		Use:   "apply -f PATH [-f PATH...]",
		Short: "Store job files in the cluster",
		Long: "Apply reads job files and directories (recursively: *.yaml, *.yml; dot-files and dot-directories\n" +
			"are skipped), checks them as `aion validate` does and sends them to the API, which stores the whole\n" +
			"set in one transaction: all of it or, on any problem, none of it. With --prune, stored jobs that are\n" +
			"in none of the files are deleted (their fire history stays). --dry-run shows what would change.",
		Example: "  aion apply -f jobs/\n  aion apply -f jobs/ --prune --dry-run",
		Args:    usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.Flags().StringArrayVarP(&paths, "filename", "f", nil, "job file or directory (repeatable)")
	cmd.Flags().BoolVar(&opt.Prune, "prune", false, "delete stored jobs that are not in the files")
	cmd.Flags().BoolVar(&opt.DryRun, "dry-run", false, "show what would change; write nothing")
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, _ []string) error {
		if len(paths) == 0 {
			return &exitError{code: 2, err: errors.New("apply: name the job files or directories with -f PATH")}
		}
		// The same checks the server makes, first here: fast, and before anything is sent.
		jobs, err := jobspec.Load(paths...)
		if err != nil {
			var list jobspec.ErrorList
			if errors.As(err, &list) {
				fmt.Fprintln(a.stderr, list.Error())
				return &exitError{code: 1, err: fmt.Errorf("%s, nothing applied", countNoun(len(list), "problem"))}
			}
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
		fmt.Fprintf(w, "%s\t%s\n", name, changes[name])
	}
	if err := w.Flush(); err != nil {
		return err
	}
	summary := fmt.Sprintf("%d created, %d updated, %d unchanged, %d deleted",
		len(res.Created), len(res.Updated), len(res.Unchanged), len(res.Deleted))
	if res.DryRun {
		summary += " (dry run: nothing was written)"
	}
	_, err := fmt.Fprintln(a.stdout, summary)
	return err
}
