package scheduler

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/scheduler/store"
)

// TestPlaceWaiting_FiresGetSlotsAsRunsEnd: with more fires due than slots,
// the fires left without a node are placed as soon as runs end (not at the
// next reconcile), the oldest first, in one transaction.
func TestPlaceWaiting_FiresGetSlotsAsRunsEnd(t *testing.T) {
	ctx := t.Context()
	l, clock := testTerm(t, 6, store.Node{ID: "x0", Slots: 1}, store.Node{ID: "x1", Slots: 1})
	clock.Add(int64(time.Second))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	var running, waiting []*openFire
	for _, of := range l.fires.byID {
		if of.fire.Node == "" {
			waiting = append(waiting, of)
		} else {
			running = append(running, of)
		}
	}
	if len(running) != 2 || len(waiting) < 4 || l.waiting.len() != len(waiting) {
		t.Fatalf("%d fires placed, %d waiting (%d tracked); want 2 placed on two 1-slot nodes and at least 4 waiting", len(running), len(waiting), l.waiting.len())
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
		data := encodeJSON(t, f)
		if _, err := l.s.etcd.Put(ctx, l.s.keys.Fire(f.ID), string(data)); err != nil {
			t.Fatal(err)
		}
		resp, err := l.s.etcd.Get(ctx, l.s.keys.Fire(f.ID))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.onEvent(ctx, &clientv3.Event{Type: clientv3.EventTypePut, Kv: resp.Kvs[0]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.finisher.processFinished(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.waiting.place(ctx, l.now(), false); err != nil {
		t.Fatal(err)
	}

	revs := make(map[int64]bool)
	nodes := make(map[string]bool)
	for i, of := range waiting {
		now := l.fires.byID[of.fire.ID]
		resp, err := l.s.etcd.Get(ctx, l.s.keys.Fire(of.fire.ID))
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
	if l.waiting.len() != len(waiting)-2 {
		t.Errorf("%d fires tracked as waiting, want %d", l.waiting.len(), len(waiting)-2)
	}
}

// TestPlaceWaiting_SkipsFiresPastTheirStartingDeadline: a fire that waited
// for a slot longer than its job's starting deadline is skipped, with the
// reason, even while every slot is still taken; it then counts as the
// job's last result.
func TestPlaceWaiting_SkipsFiresPastTheirStartingDeadline(t *testing.T) {
	ctx := t.Context()
	l, clock := testTermWith(t, 4, func(int) string {
		return "schedule: \"* * * * * *\"\n    cron_seconds: true\n    concurrency: allow\n    misfire:\n      starting_deadline: 2s"
	}, store.Node{ID: "x0", Slots: 1})
	clock.Add(int64(time.Second))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	if l.waiting.len() == 0 || l.waiting.len() != l.fires.len()-1 {
		t.Fatalf("%d fires open, %d waiting; want all but one waiting for the single slot", l.fires.len(), l.waiting.len())
	}
	running := make(map[store.FireID]bool)
	for id, of := range l.fires.byID {
		if of.fire.Node != "" {
			running[id] = true
		}
	}

	// Within the deadline nothing changes; past it, the waiting fires are
	// skipped although the slot is still taken.
	clock.Add(int64(time.Second))
	if err := l.waiting.place(ctx, l.now(), true); err != nil {
		t.Fatal(err)
	}
	waiting := l.waiting.len()
	if waiting == 0 {
		t.Fatal("fires skipped before their starting deadline")
	}
	clock.Add(int64(2 * time.Second))
	if err := l.waiting.place(ctx, l.now(), true); err != nil {
		t.Fatal(err)
	}
	resp, err := l.s.etcd.Get(ctx, l.s.keys.Fires(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	skipped := 0
	for _, kv := range resp.Kvs {
		var f store.Fire
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			t.Fatal(err)
		}
		switch {
		case running[f.ID] && f.State != store.FirePlanned:
			t.Errorf("the fire holding the slot, %s, became %s", f.ID, f.State)
		case !running[f.ID] && f.State != store.FireSkipped:
			t.Errorf("waiting fire %s is %s after waiting 4s with a 2s starting deadline, want skipped", f.ID, f.State)
		case !running[f.ID]:
			skipped++
			if !strings.Contains(f.Reason, "past the starting deadline of 2s") || f.EndedAt.IsZero() || f.Processed {
				t.Errorf("skipped fire %s: reason %q, ended %v, processed %v", f.ID, f.Reason, f.EndedAt, f.Processed)
			}
			if err := l.onEvent(ctx, &clientv3.Event{Type: clientv3.EventTypePut, Kv: kv}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if skipped != waiting {
		t.Errorf("%d fires skipped, want the %d that waited", skipped, waiting)
	}
	if err := l.finisher.processFinished(ctx); err != nil {
		t.Fatal(err)
	}
	for id := range l.fires.byID {
		if !running[id] {
			t.Errorf("skipped fire %s still open", id)
		}
	}
	runningJobs := make(map[string]bool)
	for id := range running {
		runningJobs[id.Job] = true
	}
	for _, e := range l.jobs.jobs {
		if !runningJobs[e.name] && e.state.LastResult != store.FireSkipped {
			t.Errorf("job %s: last result %q, want skipped", e.name, e.state.LastResult)
		}
	}
}

// feedFire hands the leader the stored record of a fire, as the watch does.
func feedFire(t *testing.T, l *term, id store.FireID) store.Fire {
	t.Helper()
	resp, err := l.s.etcd.Get(context.Background(), l.s.keys.Fire(id))
	if err != nil {
		t.Fatal(err)
	}
	var f store.Fire
	if err := json.Unmarshal(resp.Kvs[0].Value, &f); err != nil {
		t.Fatalf("decode fire %s: %v", id, err)
	}
	if err := l.onEvent(context.Background(), &clientv3.Event{Type: clientv3.EventTypePut, Kv: resp.Kvs[0]}); err != nil {
		t.Fatal(err)
	}
	return f
}

// endFire records a run's end as its executor does and feeds it to the leader.
func endFire(t *testing.T, l *term, of *openFire, st store.FireState) {
	t.Helper()
	f := of.fire
	f.State, f.StartedAt, f.EndedAt = st, l.now(), l.now()
	if st == store.FireFailed {
		one := 1
		f.ExitCode = &one
	}
	data := encodeJSON(t, f)
	if _, err := l.s.etcd.Put(context.Background(), l.s.keys.Fire(f.ID), string(data)); err != nil {
		t.Fatal(err)
	}
	feedFire(t, l, f.ID)
}

// TestPlaceWaiting_DeadlineSparesRetries: a retry keeps its run's nominal
// time and waits for its backoff, not for a slot; the starting deadline
// must not skip it (that would hide the failure behind "skipped").
func TestPlaceWaiting_DeadlineSparesRetries(t *testing.T) {
	ctx := t.Context()
	l, clock := testTermWith(t, 1, func(int) string {
		return "schedule: \"* * * * * *\"\n    cron_seconds: true\n    concurrency: allow\n    retries:\n      count: 3\n      backoff:\n        initial: 1s\n    misfire:\n      starting_deadline: 30s"
	}, store.Node{ID: "x0", Slots: 4})
	clock.Add(int64(time.Second))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	var of *openFire
	for _, o := range l.fires.byID {
		of = o
	}
	clock.Add(int64(40 * time.Second)) // the run took 40 s and failed
	endFire(t, l, of, store.FireFailed)
	if err := l.finisher.processFinished(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.waiting.place(ctx, l.now(), false); err != nil {
		t.Fatal(err)
	}
	f := feedFire(t, l, of.fire.ID)
	t.Logf("after the failure: attempt %d state %s reason %q", f.Attempt, f.State, f.Reason)
	if f.State == store.FireSkipped {
		t.Errorf("retry attempt %d was skipped by the starting deadline: %q", f.Attempt, f.Reason)
	}
}

// TestPlaceWaiting_SkippedFiresDoNotBlockTheNextBatch: a fire skipped for
// its deadline is closed at once, so a placement before the watch brings
// the skip does not include its old record and fail on it.
func TestPlaceWaiting_SkippedFiresDoNotBlockTheNextBatch(t *testing.T) {
	ctx := t.Context()
	l, clock := testTermWith(t, 3, func(i int) string {
		s := "schedule: \"0 0 1 1 *\"\n    concurrency: allow"
		if i == 1 {
			s += "\n    misfire:\n      starting_deadline: 2s"
		}
		return s
	}, store.Node{ID: "x0", Slots: 1})
	// One fire per job, planned directly.
	now := l.now()
	var plans []jobPlan
	for _, name := range []string{"j00000", "j00001", "j00002"} {
		e := l.jobs.get(name)
		plans = append(plans, jobPlan{e: e, entries: []dueTime{{at: now.Truncate(time.Second)}}, highWater: now.Truncate(time.Second)})
	}
	if err := l.planner.planGroup(ctx, plans, now); err != nil {
		t.Fatal(err)
	}
	var running *openFire
	for _, o := range l.fires.byID {
		if o.fire.Node != "" {
			running = o
		}
	}
	t.Logf("running %s; waiting %d", running.fire.ID, l.waiting.len())
	clock.Add(int64(5 * time.Second))
	if err := l.waiting.place(ctx, l.now(), true); err != nil { // reconcile's sweep: skips j00001's fire
		t.Fatal(err)
	}
	// j00000's run ends before the watch has delivered the skip.
	endFire(t, l, running, store.FireSucceeded)
	if err := l.finisher.processFinished(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.waiting.place(ctx, l.now(), false); err != nil {
		t.Fatal(err)
	}
	for id, o := range l.fires.byID {
		if id.Job == "j00002" && o.fire.Node == "" {
			t.Errorf("j00002's fire still waits although a slot is free (the batch failed on the stale skipped record)")
		}
	}
}

// TestPlaceWaiting_BackfillKeepsItsParallelLimitWithinABatch: backfill
// fires placed in one batch count against their parallel limit, so fires
// that may not start yet do not hold slots.
func TestPlaceWaiting_BackfillKeepsItsParallelLimitWithinABatch(t *testing.T) {
	ctx := t.Context()
	l, clock := testTermWith(t, 1, func(int) string {
		return "schedule: \"* * * * * *\"\n    cron_seconds: true\n    concurrency: allow"
	}, store.Node{ID: "x0", Slots: 1})
	clock.Add(int64(time.Second))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	var sched *openFire
	for _, o := range l.fires.byID {
		sched = o
	}
	to := l.now().Add(-time.Hour).Truncate(time.Second)
	if _, err := store.RequestBackfill(ctx, l.s.etcd, l.s.keys, "j00000", store.Backfill{From: to.Add(-5 * time.Second), To: to, Parallel: 1}, "t", l.now()); err != nil {
		t.Fatal(err)
	}
	resp, _ := l.s.etcd.Get(ctx, l.s.keys.Requests(), clientv3.WithPrefix())
	if err := l.intents.handle(ctx, resp.Kvs[0]); err != nil {
		t.Fatal(err)
	}
	t.Logf("open %d waiting %d", l.fires.len(), l.waiting.len())
	l.nodes.register(store.Node{ID: "x1", Slots: 20})
	l.waiting.slotFreed()
	if err := l.waiting.place(ctx, l.now(), false); err != nil { // places the first backfill fire
		t.Fatal(err)
	}
	var first *openFire
	for _, o := range l.fires.byID {
		if o.fire.Trigger == store.TriggerBackfill && o.fire.Node != "" {
			first = o
		}
	}
	endFire(t, l, first, store.FireSucceeded)
	endFire(t, l, sched, store.FireSucceeded)
	if err := l.finisher.processFinished(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.waiting.place(ctx, l.now(), false); err != nil {
		t.Fatal(err)
	}
	placed, dispatched := 0, 0
	for _, o := range l.fires.byID {
		if o.fire.Trigger == store.TriggerBackfill && o.fire.Node != "" {
			placed++
			if !o.dispatchedAt.IsZero() {
				dispatched++
			}
		}
	}
	t.Logf("backfill fires with a node %d, dispatched %d, assigned %v", placed, dispatched, l.nodes.assigned)
	if placed > 1 {
		t.Errorf("%d backfill fires (parallel 1) hold slots, %d dispatched", placed, dispatched)
	}
}

// TestReconcile_SkipsUnclaimedFiresPastTheirStartingDeadline: a scheduled
// run placed on a node but never claimed (its dispatches lost: NATS down,
// no executor listening) is skipped once its job's starting deadline has
// passed, with the reason, as a run waiting for a slot is; before the
// deadline it stays planned, to be dispatched again.
func TestReconcile_SkipsUnclaimedFiresPastTheirStartingDeadline(t *testing.T) {
	ctx := t.Context()
	l, clock := testTermWith(t, 1, func(int) string {
		return "schedule: \"* * * * * *\"\n    cron_seconds: true\n    concurrency: allow\n    misfire:\n      starting_deadline: 2s"
	}, store.Node{ID: "x0", Slots: 4})
	clock.Add(int64(time.Second))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	var planned []store.FireID
	for id, of := range l.fires.byID {
		if of.fire.Node != "x0" || of.fire.State != store.FirePlanned {
			t.Fatalf("%s: %s on %q; want planned on x0", id, of.fire.State, of.fire.Node)
		}
		planned = append(planned, id)
	}
	if len(planned) == 0 {
		t.Fatal("nothing planned")
	}
	state := func(id store.FireID) store.Fire {
		resp, err := l.s.etcd.Get(ctx, l.s.keys.Fire(id))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("read %s: %v", id, err)
		}
		var f store.Fire
		if err := json.Unmarshal(resp.Kvs[0].Value, &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	// No executor claims: reconcile rounds within, then past, the deadline.
	clock.Add(int64(time.Second))
	if err := l.reconciler.reconcile(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	for _, id := range planned {
		if f := state(id); f.State != store.FirePlanned {
			t.Errorf("%s: %s (%s) within its starting deadline; want still planned", id, f.State, f.Reason)
		}
	}
	clock.Add(int64(2 * time.Second))
	if err := l.reconciler.reconcile(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	for _, id := range planned {
		f := state(id)
		if f.State != store.FireSkipped || !strings.Contains(f.Reason, "past the starting deadline of 2s (dispatched to x0, not claimed)") || f.EndedAt.IsZero() {
			t.Errorf("%s: %s (%s), ended %v; want skipped past the starting deadline, not claimed", id, f.State, f.Reason, f.EndedAt)
		}
		if l.fires.get(id) != nil {
			t.Errorf("%s is still open after its skip", id)
		}
	}
}
