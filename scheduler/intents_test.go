package scheduler

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/scheduler/store"
)

// TestBackfill_LeavesTheTimesStillToComeToTheSchedule: a backfill whose
// range reaches past the job's next planned time creates fires only for
// the times before it; planning then goes on as usual (a backfilled fire
// under a time the planner is due to plan would make its create-if-absent
// fail, and the job would never be planned again).
func TestBackfill_LeavesTheTimesStillToComeToTheSchedule(t *testing.T) {
	ctx := t.Context()
	l, clock := testTermWith(t, 1, func(int) string {
		return "schedule: \"* * * * * *\"\n    cron_seconds: true\n    concurrency: allow"
	}, store.Node{ID: "x0", Slots: 100})
	clock.Add(int64(time.Second))
	if err := l.planner.planDue(ctx, l.now()); err != nil {
		t.Fatal(err)
	}
	next := l.jobs.get("j00000").next
	if _, err := store.RequestBackfill(ctx, l.s.etcd, l.s.keys, "j00000",
		store.Backfill{From: l.now().Add(-5 * time.Second), To: l.now().Add(10 * time.Second)}, "t", l.now()); err != nil {
		t.Fatal(err)
	}
	resp, err := l.s.etcd.Get(ctx, l.s.keys.Requests(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.intents.handle(ctx, resp.Kvs[0]); err != nil {
		t.Fatal(err)
	}
	for _, of := range l.fires.byID {
		if of.fire.Trigger == store.TriggerBackfill && !of.fire.Nominal.Before(next) {
			t.Errorf("backfill planned %s, at or after the job's next planned time %s", of.fire.ID, next.UTC())
		}
	}
	clock.Add(int64(3 * time.Second))
	planCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.planner.planDue(planCtx, l.now()); err != nil {
		t.Fatalf("planning after the backfill: %v", err)
	}
	if e := l.jobs.get("j00000"); !e.next.After(l.now()) {
		t.Errorf("the job's next time %s is not after now %s: planning is stuck", e.next.UTC(), l.now().UTC())
	}
}
