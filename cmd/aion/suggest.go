package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
)

// maxSuggestions bounds the names a "did you mean" offers.
const maxSuggestions = 3

// takesJobName reports whether a command's first argument may be a job
// name: its usage line reads "cmd NAME ...", "cmd [NAME] ..." or
// "cmd NAME|FIRE-ID ...".
func takesJobName(cmd *cobra.Command) bool {
	f := strings.Fields(cmd.Use)
	return len(f) > 1 && (f[1] == "NAME" || f[1] == "[NAME]" || strings.HasPrefix(f[1], "NAME|"))
}

// suggestJob adds the stored job names nearest to name to the API's "no
// such job" answer notFound, as "did you mean". When the names cannot be
// listed, or none is near, notFound is returned as it is.
func suggestJob(ctx context.Context, c *api.Client, name string, notFound error) error {
	var answer *api.Error
	if !errors.As(notFound, &answer) {
		return notFound
	}
	list, err := c.ListJobs(ctx)
	if err != nil {
		return notFound
	}
	names := make([]string, 0, len(list.Jobs))
	for _, j := range list.Jobs {
		names = append(names, j.Name)
	}
	near := nearNames(name, names)
	if len(near) == 0 {
		return notFound
	}
	quoted := make([]string, len(near))
	for i, n := range near {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	with := *answer
	with.Message = fmt.Sprintf("%s; did you mean %s?", answer.Message, strings.Join(quoted, " or "))
	return &with
}

// nearNames returns up to maxSuggestions of names within a small edit
// distance of name (a third of its length, at least 2), nearest first.
func nearNames(name string, names []string) []string {
	limit := max(2, len([]rune(name))/3)
	type scored struct {
		name string
		d    int
	}
	var near []scored
	for _, n := range names {
		if d := levenshtein.ComputeDistance(name, n); d <= limit {
			near = append(near, scored{n, d})
		}
	}
	slices.SortFunc(near, func(a, b scored) int {
		return cmp.Or(cmp.Compare(a.d, b.d), strings.Compare(a.name, b.name))
	})
	out := make([]string, 0, maxSuggestions)
	for _, s := range near[:min(len(near), maxSuggestions)] {
		out = append(out, s.name)
	}
	return out
}
