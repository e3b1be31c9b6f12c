package scheduler_test

import (
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

func TestCompact_KeepsTheNewestRecordsAndNeverAnOpenOne(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (about 8 s of records)")
	c := clustertest.Start(t)
	// Compaction counts records, not time: the scheduler's clock runs
	// twice as fast, so the eight seconds of records pile up in four.
	clock := clustertest.NewClock(0, 2)
	c.StartScheduler(t, "s1", func(cfg *scheduler.Config) {
		cfg.HistoryKeep = 4
		cfg.CompactEvery = 300 * time.Millisecond
		cfg.Now = clock.Now
	})
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, `
jobs:
  - name: tick
    schedule: "* * * * * *"
    cron_seconds: true
    command: "true"
  - name: long
    schedule: manual
    command: sleep 30
`)
	id := c.RequestRun(t, "long", store.Request{At: clock.Now()})
	start := clock.Now()
	clustertest.WaitFor(t, 15*time.Second, "eight seconds of tick runs", func() bool {
		fires := c.Fires(t, "tick")
		return len(fires) > 0 && fires[len(fires)-1].Nominal.Sub(start) >= 8*time.Second
	})
	time.Sleep(time.Second) // a few compactions more
	fires := c.Fires(t, "tick")
	if len(fires) > 4+2 { // the newest 4, plus at most the runs since the last compaction
		t.Errorf("%d tick records kept, want about 4", len(fires))
	}
	last := fires[len(fires)-1]
	if clock.Now().Sub(last.Nominal) > 3*time.Second {
		t.Errorf("the newest record %s is old: compaction deleted new ones", last.ID)
	}
	// The long run is open: it is never deleted, whatever the keep.
	found := false
	for _, f := range c.Fires(t, "long") {
		found = found || f.ID == id
	}
	if !found {
		t.Errorf("the running fire %s was deleted", id)
	}
}
