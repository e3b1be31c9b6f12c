package containerizer

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/moby/moby/client"
)

// Leftover is a container that a previous executor of a node left behind.
type Leftover struct {
	ContainerID string
	Fire        string // from its LabelFire
	Attempt     int    // from its LabelAttempt
	State       string // as the engine says: running, exited, ...
}

// RemoveLeftovers kills and removes every container labelled with node,
// running or not, but those in keep (by ID), and returns what it removed. The executor calls it once
// it holds the node's registration and before it runs anything: no live
// executor of node can own such a container then, and the fires they ran
// are lost (the leader marks them so when the dead executor's lease ends).
// An error is returned along with what was removed before it.
func (e *Engine) RemoveLeftovers(ctx context.Context, node string, keep map[string]bool) ([]Leftover, error) {
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", LabelNode+"="+node),
	})
	if err != nil {
		return nil, fmt.Errorf("list containers of node %s: %w", node, err)
	}
	var removed []Leftover
	var errs []error
	for _, c := range list.Items {
		if keep[c.ID] {
			continue
		}
		attempt, _ := strconv.Atoi(c.Labels[LabelAttempt])
		l := Leftover{ContainerID: c.ID, Fire: c.Labels[LabelFire], Attempt: attempt, State: string(c.State)}
		if err := e.Remove(ctx, c.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, l)
	}
	return removed, errors.Join(errs...)
}
