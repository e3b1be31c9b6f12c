package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/scheduler/store"
)

func TestBackfill_PlansEachTimeOnceWithinTheParallelLimit(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (about 4 s of backfilled runs)")
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 8, nil)
	c.Apply(t, fmt.Sprintf(`
name: report
schedule: "0 * * * *"
concurrency: allow
command: %q
`, runlog.Command(log, "sleep 0.5")))
	to := time.Now().Truncate(time.Hour).Add(-time.Hour)
	from := to.Add(-5 * time.Hour) // six hourly times: from .. to
	ctx := context.Background()
	backfill := func() {
		if _, err := store.RequestBackfill(ctx, c.Etcd, c.Keys, "report", store.Backfill{From: from, To: to, Parallel: 2}, "test", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	backfill()
	done := func() int {
		n := 0
		for _, f := range c.Fires(t, "report") {
			if f.Trigger == store.TriggerBackfill && f.State == store.FireSucceeded {
				n++
			}
		}
		return n
	}
	clustertest.WaitFor(t, 20*time.Second, "six backfilled runs", func() bool { return done() == 6 })
	backfill() // again: every time has its fire already
	time.Sleep(2 * time.Second)

	starts := map[string]int{}
	runs := runlog.MustRead(t, log)
	for _, r := range runs {
		starts[r.Fire]++
	}
	if len(starts) != 6 {
		t.Errorf("%d distinct times ran, want 6: %v", len(starts), starts)
	}
	for id, n := range starts {
		if n != 1 {
			t.Errorf("%s ran %d times, want once (backfill twice must not run anything twice)", id, n)
		}
		if _, err := store.ParseFireID(id); err != nil || !strings.HasPrefix(id, "report@") {
			t.Errorf("bad fire ID %s", id)
		}
	}
	for h := 0; h <= 5; h++ {
		id := store.ScheduledFireID("report", from.Add(time.Duration(h)*time.Hour)).String()
		if starts[id] != 1 {
			t.Errorf("nominal time %s did not run under its scheduled fire ID", id)
		}
	}
	// A run that logged no end counts as running to the end of the test.
	if peak := runlog.Peak(runlog.OpenUntil(runs, time.Now())); peak > 2 {
		t.Errorf("%d backfilled runs at once, want at most 2 (--parallel 2)", peak)
	}
}
