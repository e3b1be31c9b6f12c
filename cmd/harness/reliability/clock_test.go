package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

// TestScenario_ClockJumps moves the leader's clock an hour forward, then
// back. Forward: the hour's 3600 every-second times are due at once; the
// one or two within the misfire grace run, and with run-once all older ones
// are skipped (the newest 100 with records, all counted). Back: the
// high-water mark is an hour ahead of the clock, so nothing is planned
// again, and it never moves back.
func TestScenario_ClockJumps(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (clock jumps, about 15 s)")
	c := clustertest.Start(t)
	var offset atomic.Int64
	c.StartScheduler(t, "s1", func(cfg *scheduler.Config) {
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		cfg.MisfireGrace = time.Second // times more than 1 s late follow the misfire policy
	})
	c.StartExecutor(t, "x1", 4, nil)
	logPath := runlog.File(t)
	job := fmt.Sprintf(`
name: tick
schedule: "* * * * * *"
cron_seconds: true
concurrency: allow
command: %q
misfire:
  policy: run-once
`, runlog.Command(logPath, "true"))
	c.Apply(t, job)
	tick := specs(t, job, time.Second)["tick"]
	from := time.Now()
	clustertest.WaitFor(t, 5*time.Second, "runs", func() bool { return len(clustertest.Final(c.Fires(t, "tick"))) >= 2 })
	skippedBefore := state(t, c, "tick").Skipped

	jumpAt := time.Now()
	offset.Store(int64(time.Hour))
	clustertest.WaitFor(t, 10*time.Second, "the skipped hour to be recorded", func() bool {
		return state(t, c, "tick").Skipped-skippedBefore >= 3595
	})
	time.Sleep(2 * time.Second)
	var ranInHour, recordedSkips int
	for _, f := range c.Fires(t, "tick") {
		if !f.Nominal.After(jumpAt) || f.Nominal.After(jumpAt.Add(time.Hour-2*time.Second)) {
			continue
		}
		switch {
		case f.State == store.FireSkipped && strings.Contains(f.Reason, "misfire: run-once"):
			recordedSkips++
		case f.State != store.FireSkipped:
			ranInHour++
		}
	}
	t.Logf("clock +1h: %d of the hour's times ran, %d skipped with records, %d counted in all", ranInHour, recordedSkips, state(t, c, "tick").Skipped-skippedBefore)
	// The time or two within the 1 s grace run; run-once then skips every
	// older one, since a newer time runs anyway.
	if ranInHour > 2 || recordedSkips > 100 || recordedSkips < 95 {
		t.Errorf("after the jump %d ran and %d skipped records, want at most 2 runs and about 100 records", ranInHour, recordedSkips)
	}

	// Back by an hour (the real clock again): everything up to the
	// high-water mark, an hour ahead, is planned already.
	before := len(c.Fires(t, "tick"))
	offset.Store(0)
	time.Sleep(4 * time.Second)
	if after := len(c.Fires(t, "tick")); after != before {
		t.Errorf("%d new fires after the clock went back an hour, want none (the high-water mark is ahead)", after-before)
	}
	// The checker, over the times from the start to the end of the jumped
	// hour: no time ran twice, and every skip record is a run-once skip
	// planned past the 1 s grace by the scheduler's clock. The hour's
	// times skipped without a record (counted only) are missed to it.
	checkHistory(t, c)
	r := checkRuns(t, c, logPath, nil, from, jumpAt.Add(time.Hour-2*time.Second), tick)[0]
	runs := runlog.MustRead(t, logPath)
	t.Logf("checker: %s; %d runs logged", r, len(runs))
	if len(runs) < 3 {
		t.Errorf("%d runs logged, want the runs before the jump and those within the grace after it", len(runs))
	}
	if counted := state(t, c, "tick").Skipped - skippedBefore; r.Skipped != recordedSkips || len(r.Missed) > counted-recordedSkips {
		t.Errorf("checker: %d skips accepted and %d missed; want the %d recorded skips, and no more missed than the %d counted without a record",
			r.Skipped, len(r.Missed), recordedSkips, counted-recordedSkips)
	}
}

func state(t *testing.T, c *clustertest.Cluster, job string) store.JobState {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.State(job))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("read state of %s: %v", job, err)
	}
	var st store.JobState
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		t.Fatal(err)
	}
	return st
}
