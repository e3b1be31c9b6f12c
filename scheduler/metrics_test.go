package scheduler_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

func TestMetrics_CountPlannedAndSkippedFires(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	reg := prometheus.NewRegistry()
	m := scheduler.NewMetrics(reg)
	cfg := scheduler.DefaultConfig()
	cfg.ID, cfg.ReconcileEvery = "s1", 200*time.Millisecond
	clustertest.RunUntilCleanup(t, scheduler.New(cfg, c.Etcd, c.NATS, c.Log, scheduler.WithMetrics(m)).Run, "")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, `
name: slow
schedule: "* * * * * *"
cron_seconds: true
command: sleep 2
`)
	clustertest.WaitFor(t, 10*time.Second, "skipped overlaps", func() bool {
		skipped := 0
		for _, f := range c.Fires(t, "slow") {
			if f.State == store.FireSkipped {
				skipped++
			}
		}
		return skipped >= 2
	})
	time.Sleep(300 * time.Millisecond)
	skipped, planned := 0, 0
	for _, f := range c.Fires(t, "slow") {
		if f.State == store.FireSkipped {
			skipped++
		} else {
			planned++
		}
	}
	if got := testutil.ToFloat64(m.SkippedCounter("overlap")); int(got) < skipped-1 || int(got) > skipped+1 {
		t.Errorf("aion_fires_skipped_total{reason=overlap} = %v, records say %d", got, skipped)
	}
	if got, err := testutil.GatherAndCount(reg, "aion_fires_planned_total", "aion_scheduler_leader"); err != nil || got != 2 {
		t.Errorf("gathered %d series (%v), want the planned counter and the leader gauge", got, err)
	}
	if planned == 0 {
		t.Error("nothing planned")
	}
}
