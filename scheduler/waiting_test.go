package scheduler

import (
	"encoding/json"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/scheduler/store"
)

// TestPlaceWaiting_FiresGetSlotsAsRunsEnd: with more fires due than slots,
// the fires left without a node are placed as soon as runs end (not at the
// next reconcile), the oldest first, in one transaction.
func TestPlaceWaiting_FiresGetSlotsAsRunsEnd(t *testing.T) {
	ctx := t.Context()
	l, clock := testLeader(t, 6, store.Node{ID: "x0", Slots: 1}, store.Node{ID: "x1", Slots: 1})
	clock.Add(int64(1_000_000_000))
	if err := l.planDue(ctx); err != nil {
		t.Fatal(err)
	}
	var running, waiting []*openFire
	for _, of := range l.open {
		if of.fire.Node == "" {
			waiting = append(waiting, of)
		} else {
			running = append(running, of)
		}
	}
	if len(running) != 2 || len(waiting) < 4 || len(l.waiting) != len(waiting) {
		t.Fatalf("%d fires placed, %d waiting (%d tracked); want 2 placed on two 1-slot nodes and at least 4 waiting", len(running), len(waiting), len(l.waiting))
	}
	slices.SortFunc(waiting, func(a, b *openFire) int {
		if c := a.fire.Nominal.Compare(b.fire.Nominal); c != 0 {
			return c
		}
		return cmpFireID(a.fire.ID, b.fire.ID)
	})

	// Both runs end, as executors record them; the leader sees the events.
	for _, of := range running {
		f := of.fire
		f.State, f.StartedAt, f.EndedAt = store.FireSucceeded, l.now(), l.now()
		data, _ := json.Marshal(f)
		if _, err := l.s.etcd.Put(ctx, l.keys.Fire(f.ID), string(data)); err != nil {
			t.Fatal(err)
		}
		resp, err := l.s.etcd.Get(ctx, l.keys.Fire(f.ID))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.onEvent(ctx, &clientv3.Event{Type: clientv3.EventTypePut, Kv: resp.Kvs[0]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.processFinished(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.placeWaiting(ctx, l.now()); err != nil {
		t.Fatal(err)
	}

	revs := make(map[int64]bool)
	nodes := make(map[string]bool)
	for i, of := range waiting {
		now := l.open[of.fire.ID]
		resp, err := l.s.etcd.Get(ctx, l.keys.Fire(of.fire.ID))
		if err != nil {
			t.Fatal(err)
		}
		var stored store.Fire
		if err := json.Unmarshal(resp.Kvs[0].Value, &stored); err != nil {
			t.Fatal(err)
		}
		if stored.Node != now.fire.Node {
			t.Errorf("fire %s: the leader has node %q, etcd %q", of.fire.ID, now.fire.Node, stored.Node)
		}
		switch {
		case i < 2 && now.fire.Node == "":
			t.Errorf("fire %s (waiting %d of %d by age) still has no node after two runs ended", of.fire.ID, i+1, len(waiting))
		case i < 2:
			revs[now.rev] = true
			nodes[now.fire.Node] = true
			if stored.Reason != "" {
				t.Errorf("placed fire %s keeps the reason %q", of.fire.ID, stored.Reason)
			}
		case now.fire.Node != "":
			t.Errorf("fire %s (waiting %d of %d by age) placed on %s, but only two slots were free", of.fire.ID, i+1, len(waiting), now.fire.Node)
		}
	}
	if len(nodes) != 2 || len(revs) != 1 {
		t.Errorf("the two oldest waiting fires went to nodes %v in %d transactions, want both nodes in one", nodes, len(revs))
	}
	if len(l.waiting) != len(waiting)-2 {
		t.Errorf("%d fires tracked as waiting, want %d", len(l.waiting), len(waiting)-2)
	}
}
