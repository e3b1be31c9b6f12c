package scheduler

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// TestAdmit_ForbidSaysWhetherThePreviousRunStarted: a forbid skip's
// reason says the previous fire is running only when it is; one still
// planned (no executor claimed it: NATS down, no free slot) is said to be
// open and not started yet.
func TestAdmit_ForbidSaysWhetherThePreviousRunStarted(t *testing.T) {
	prev := store.FireID{Job: "j", Suffix: "2026-12-04T18:00:00Z"}
	for state, want := range map[store.FireState]string{
		store.FireRunning: "skipped: " + prev.String() + " is still running (concurrency: forbid)",
		store.FirePlanned: "skipped: " + prev.String() + " is still open, planned but not started yet (concurrency: forbid)",
	} {
		ov := overlap{newest: &prev, newestAt: time.Now(), newestState: state}
		f := store.Fire{ID: store.FireID{Job: "j", Suffix: "2026-12-04T18:00:01Z"}, PlannedAt: time.Now()}
		if ov.admit(&jobPolicy{Concurrency: jobspec.ConcurrencyForbid}, &f, nil) {
			t.Fatalf("previous fire %s: admitted; want skipped", state)
		}
		if f.State != store.FireSkipped || f.Reason != want || !strings.HasSuffix(f.Reason, "(concurrency: forbid)") {
			t.Errorf("previous fire %s: %s, %q; want skipped, %q", state, f.State, f.Reason, want)
		}
	}
}

// TestReady_AFollowerWaitsForEveryRunOfItsJob: a replace job's run r
// goes on, its kill not yet carried out (its executor is cut off); w,
// planned to follow r, is itself replaced by f and cancelled before it
// starts. f follows w, which has closed, but must not be dispatched while
// r still runs: two runs of the job would overlap. Once r ends, f is
// ready (the reconcile dispatches it).
func TestReady_AFollowerWaitsForEveryRunOfItsJob(t *testing.T) {
	l, _ := testTerm(t, 0)
	at := time.Date(2026, 12, 4, 19, 25, 0, 0, time.UTC)
	fire := func(s int, state store.FireState, after store.FireID) *openFire {
		f := store.Fire{ID: store.ScheduledFireID("job", at.Add(time.Duration(s)*time.Second)), State: state, Node: "x1", PlannedAt: at}
		if after.Job != "" {
			f.After = after.String()
		}
		return &openFire{fire: f, rev: int64(s)}
	}
	r := fire(2, store.FireRunning, store.FireID{})
	w := fire(4, store.FirePlanned, r.fire.ID)
	f := fire(6, store.FirePlanned, w.fire.ID)
	for _, of := range []*openFire{r, w, f} {
		l.fires.open(of)
	}
	now := at.Add(6 * time.Second)
	if l.fires.ready(f, now) {
		t.Error("f is ready while w, the fire it follows, is open")
	}
	l.fires.close(w.fire.ID) // cancelled: replaced by f
	if l.fires.ready(f, now) {
		t.Error("f is ready while r, an older run of its job, still runs")
	}
	l.fires.close(r.fire.ID)
	if !l.fires.ready(f, now) {
		t.Error("f is not ready once every other run of its job has ended")
	}
}

// TestPlanDue_ForbidSkipHoldsOnlyIfTheOpenFireIsAsSeen: a leader whose
// view is stale (the run before has ended in etcd, the watch event not yet
// applied, as after a pause) does not skip the next time of a forbid job
// behind it: the skip's transaction compares the open fire's record, the
// conflict ends the round, and once the view is fresh the time is planned.
func TestPlanDue_ForbidSkipHoldsOnlyIfTheOpenFireIsAsSeen(t *testing.T) {
	ctx := t.Context()
	l, clock := testTermWith(t, 1, func(int) string {
		return "schedule: \"* * * * * *\"\n    cron_seconds: true\n    concurrency: forbid"
	}, store.Node{ID: "x0", Slots: 4})
	clock.Add(int64(time.Second))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	if len(l.fires.byID) != 1 {
		t.Fatalf("%d open fires; want the first time's", len(l.fires.byID))
	}
	var first *openFire
	for _, of := range l.fires.byID {
		first = of
	}
	// Its run ends in etcd; the leader's table still has it open.
	ended := first.fire
	ended.State, ended.EndedAt = store.FireSucceeded, l.now().UTC()
	data, err := json.Marshal(ended)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.etcd.Put(ctx, l.s.keys.Fire(ended.ID), string(data)); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(time.Second))
	next := store.ScheduledFireID(ended.ID.Job, ended.Nominal.Add(time.Second))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	if resp, err := l.s.etcd.Get(ctx, l.s.keys.Fire(next)); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("%s written (%v) on a stale view of %s; want the round ended by the conflict", next, err, ended.ID)
	}
	l.fires.close(ended.ID) // the watch event, applied
	clock.Add(int64(replanBackoff))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	resp, err := l.s.etcd.Get(ctx, l.s.keys.Fire(next))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read %s: %v", next, err)
	}
	var f store.Fire
	if err := json.Unmarshal(resp.Kvs[0].Value, &f); err != nil {
		t.Fatal(err)
	}
	if f.State != store.FirePlanned {
		t.Errorf("%s: %s (%s); want planned: the run before it has ended", next, f.State, f.Reason)
	}
}
