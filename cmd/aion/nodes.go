package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
)

func newNodesCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the live executors with their load",
		Args:  usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, _ []string) error {
		list, err := c.Nodes(ctx)
		if err != nil {
			return err
		}
		return a.render(*format, list, func() error { return a.printNodes(list) })
	})
	return cmd
}

func (a *app) printNodes(list api.NodeList) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tLABELS\tSLOTS\tRUNNING\tLOAD")
	for _, n := range list.Nodes {
		labels := make([]string, 0, len(n.Labels))
		for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
			labels = append(labels, k+"="+n.Labels[k])
		}
		running, load := "-", "-"
		if !n.LastReport.IsZero() {
			running, load = strconv.Itoa(n.Running), strconv.FormatFloat(n.Load1, 'f', 2, 64)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", n.ID, orDash(strings.Join(labels, ",")), n.Slots, running, load)
	}
	return w.Flush()
}
