package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/store"
)

func TestPause_SkipsAndRecordsThenResumeWithCatchupRunsTheLatest(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (about 7 s of schedule)")
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, `
name: tick
schedule: "* * * * * *"
cron_seconds: true
command: "true"
misfire:
  policy: run-once
`)
	clustertest.WaitFor(t, 5*time.Second, "a run", func() bool { return len(clustertest.Final(c.Fires(t, "tick"))) > 0 })
	ctx := context.Background()
	if err := store.RequestPause(ctx, c.Etcd, c.Keys, "tick", store.PauseChange{Pause: true, Note: "maintenance"}, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	pausedSkips := func() []store.Fire {
		var out []store.Fire
		for _, f := range c.Fires(t, "tick") {
			if f.State == store.FireSkipped && strings.Contains(f.Reason, "paused: maintenance") {
				out = append(out, f)
			}
		}
		return out
	}
	clustertest.WaitFor(t, 6*time.Second, "three times skipped while paused", func() bool { return len(pausedSkips()) >= 3 })
	before := len(c.Fires(t, "tick"))
	for _, f := range c.Fires(t, "tick") {
		if f.State == store.FireSucceeded && f.PlannedAt.After(pausedSkips()[0].PlannedAt) {
			t.Errorf("%s ran while paused", f.ID)
		}
	}
	if err := store.RequestPause(ctx, c.Etcd, c.Keys, "tick", store.PauseChange{Pause: false, Catchup: true}, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	// run-once catch-up: exactly one of the skipped times runs, the latest,
	// under its own fire ID; the others stay skipped.
	skipped := pausedSkips()
	latest := skipped[len(skipped)-1].ID
	clustertest.WaitFor(t, 5*time.Second, "the latest paused time to run", func() bool {
		for _, f := range c.Fires(t, "tick") {
			if f.ID == latest {
				return f.State == store.FireSucceeded
			}
		}
		return false
	})
	wasSkipped := make(map[store.FireID]bool)
	for _, s := range skipped {
		wasSkipped[s.ID] = true
	}
	caughtUp := 0
	for _, f := range c.Fires(t, "tick") {
		if wasSkipped[f.ID] && f.State != store.FireSkipped {
			caughtUp++
		}
	}
	if caughtUp != 1 {
		t.Errorf("%d paused times ran on resume --catchup, want 1 (run-once)", caughtUp)
	}
	clustertest.WaitFor(t, 5*time.Second, "runs after resume", func() bool { return len(c.Fires(t, "tick")) > before+2 })
}
