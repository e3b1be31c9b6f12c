package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
)

// Shell completion of job names and fire IDs asks the API of --server;
// when it cannot, it offers nothing, silently.
const (
	completeTimeout = 2 * time.Second
	completeLimit   = 1000 // names offered at most
	completeFires   = 50   // recent fires offered at most
)

// addCompletion gives each client command that takes a job name or a
// fire ID its completion of the first argument.
func (a *app) addCompletion(cmds []*cobra.Command) {
	for _, cmd := range cmds {
		f := strings.Fields(cmd.Use)
		if len(f) < 2 {
			continue
		}
		jobs, fires := takesJobName(cmd), strings.Contains(f[1], "FIRE-ID")
		if jobs || fires {
			cmd.ValidArgsFunction = a.completeFirst(jobs, fires)
		}
	}
}

// completeFirst completes the first argument with job names (jobs) and
// fire IDs (fires) that start with what is typed.
func (a *app) completeFirst(jobs, fires bool) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if err := a.setup(cmd); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := a.newAPIClient()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, completeTimeout)
		defer cancel()
		var out []string
		if jobs && !strings.Contains(toComplete, "@") {
			out = append(out, jobNamesFrom(ctx, c, toComplete)...)
		}
		if fires {
			out = append(out, fireIDsFrom(ctx, c, toComplete)...)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// jobNamesFrom lists the stored job names that start with prefix (none
// when the API does not answer).
func jobNamesFrom(ctx context.Context, c *api.Client, prefix string) []string {
	if strings.ContainsAny(prefix, `*?[\`) {
		return nil // no job name has these; they would be read as a glob
	}
	list, err := c.ListJobsPage(ctx, api.JobQuery{Name: prefix + "*", Limit: completeLimit})
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(list.Jobs))
	for _, j := range list.Jobs {
		names = append(names, j.Name)
	}
	return names
}

// fireIDsFrom lists recent fire IDs that start with prefix: of the job
// it names before '@', else of all jobs (none when the API does not
// answer).
func fireIDsFrom(ctx context.Context, c *api.Client, prefix string) []string {
	var list api.FireList
	var err error
	if job, _, ok := strings.Cut(prefix, "@"); ok {
		list, err = c.Fires(ctx, job, completeFires)
	} else {
		list, err = c.RecentFires(ctx, completeFires)
	}
	if err != nil {
		return nil
	}
	var ids []string
	for _, f := range list.Fires {
		if id := f.ID.String(); strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	return ids
}
