package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/aionsched/aion/scheduler/store"
)

// TestPlanDue_OneTransactionSpreadsFiresOverNodes plans 100 jobs due at
// once: they are written together, and their fires are spread evenly over
// four nodes of equal size, not all given to the one with the lowest load
// average (the fires of a transaction count while it is built).
func TestPlanDue_OneTransactionSpreadsFiresOverNodes(t *testing.T) {
	var nodes []store.Node
	for i := range 4 {
		nodes = append(nodes, store.Node{ID: fmt.Sprintf("x%d", i), Slots: 100})
	}
	l, clock := testTerm(t, 100, nodes...)
	for i, n := range nodes {
		l.nodes.report(store.LoadReport{Node: n.ID, Load1: float64(i)})
	}
	clock.Add(int64(1500 * time.Millisecond))
	if err := l.planner.planDue(t.Context(), l.now()); err != nil {
		t.Fatal(err)
	}
	perNode := make(map[string]int)
	revs := make(map[int64]bool)
	for _, of := range l.fires.byID {
		perNode[of.fire.Node]++
		revs[of.rev] = true
	}
	if l.fires.len() < 100 {
		t.Fatalf("%d fires planned, want at least 100 (one per job)", l.fires.len())
	}
	for _, n := range nodes {
		if got, want := perNode[n.ID], l.fires.len()/4; got < want-1 || got > want+1 {
			t.Errorf("node %s got %d of %d fires, want about %d: %v", n.ID, got, l.fires.len(), want, perNode)
		}
	}
	// 100 jobs, each a fire and a state: two transactions under etcd's 128 operations.
	if len(revs) > 4 {
		t.Errorf("fires written in %d transactions, want a few", len(revs))
	}
}
