package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

// TestMisfire_PoliciesAfterATenMinuteOutage simulates a cluster that was
// down for ten minutes: each job's high-water mark is set ten minutes back
// before the leader starts, as if it had stopped planning then. Each policy
// must produce exactly the expected fire records for the ten missed times.
func TestMisfire_PoliciesAfterATenMinuteOutage(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartExecutor(t, "x1", 8, nil)
	jobs := map[string]string{
		"skipper":  "policy: skip",
		"once":     "policy: run-once",
		"all":      "policy: run-all\n      max_catchup: 3",
		"deadline": "policy: run-all\n      max_catchup: 10\n      starting_deadline: 270s",
	}
	var yaml strings.Builder
	yaml.WriteString("jobs:\n")
	for name, misfire := range jobs {
		fmt.Fprintf(&yaml, "  - name: %s\n    schedule: \"* * * * *\"\n    concurrency: allow\n    command: \"true\"\n    misfire:\n      %s\n", name, misfire)
	}
	c.Apply(t, yaml.String())

	// The outage: planning stopped ten minutes ago. The schedule is every
	// minute, so from the last planned time T0 the missed times are
	// T0+1m .. T0+10m. The scheduler's clock stands 5 s past a minute when
	// the test starts, instead of waiting for the wall clock to get there:
	// then all ten are older than the (test) grace of 1 s, and the next
	// minute is 55 s away.
	wall := time.Now()
	clock := clustertest.NewClock(5*time.Second-time.Duration(wall.Second())*time.Second-time.Duration(wall.Nanosecond()), 1)
	t0 := clock.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute)
	ctx := context.Background()
	for name := range jobs {
		data := clustertest.JSON(t, store.JobState{HighWater: t0, AppliedAt: t0})
		if _, err := c.Etcd.Put(ctx, c.Keys.State(name), string(data)); err != nil {
			t.Fatal(err)
		}
	}
	c.StartScheduler(t, "s1", func(cfg *scheduler.Config) {
		cfg.MisfireGrace = time.Second
		cfg.Now = clock.Now
	})

	type want struct{ ran, skipped int }
	wants := map[string]want{
		"skipper":  {0, 10},
		"once":     {1, 9},
		"all":      {3, 7},
		"deadline": {5, 5}, // T0+6m..T0+10m are within 270 s: T0+6m is 4m05s old when the leader starts
	}
	clustertest.WaitFor(t, 10*time.Second, "the catch-up to be recorded", func() bool {
		for name, w := range wants {
			if len(c.Fires(t, name)) < w.ran+w.skipped {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	for name, w := range wants {
		var ran, skipped []string
		for _, f := range c.Fires(t, name) {
			if !f.Nominal.After(t0) || f.Nominal.After(t0.Add(10*time.Minute)) {
				continue // only the ten missed times
			}
			if f.State == store.FireSkipped {
				skipped = append(skipped, f.Nominal.Format("15:04")+" "+f.Reason)
			} else {
				ran = append(ran, f.Nominal.Format("15:04"))
			}
		}
		if age := clock.Now().Sub(t0.Add(6 * time.Minute)); name == "deadline" && age > 270*time.Second {
			t.Fatalf("T0+6m is %s old, past the 270 s deadline already: the test ran too slowly to tell", age)
		}
		if len(ran) != w.ran || len(skipped) != w.skipped {
			t.Errorf("%s: ran %v, skipped %d %v; want %d ran and %d skipped", name, ran, len(skipped), skipped, w.ran, w.skipped)
		}
		// The runs are the most recent missed times.
		for i, r := range ran {
			if want := t0.Add(time.Duration(10-len(ran)+1+i) * time.Minute).Format("15:04"); r != want {
				t.Errorf("%s: run %d at %s, want %s (the latest missed times run)", name, i, r, want)
			}
		}
		for _, s := range skipped {
			if !strings.Contains(s, "misfire") && !strings.Contains(s, "starting deadline") {
				t.Errorf("%s: skipped record without its reason: %q", name, s)
			}
		}
	}
}

// TestMisfire_FiftyDueAtOnceForbidRunsOne makes fifty nominal times of a
// forbid job due in the same planning round (run-all catch-up after an
// outage): exactly one runs, the other 49 are skipped as overlaps.
func TestMisfire_FiftyDueAtOnceForbidRunsOne(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartExecutor(t, "x1", 8, nil)
	c.Apply(t, `
name: burst
schedule: "* * * * * *"
cron_seconds: true
concurrency: forbid
command: sleep 3
misfire:
  policy: run-all
  max_catchup: 50
`)
	t0 := time.Now().UTC().Truncate(time.Second).Add(-50 * time.Second)
	data := clustertest.JSON(t, store.JobState{HighWater: t0, AppliedAt: t0})
	if _, err := c.Etcd.Put(context.Background(), c.Keys.State("burst"), string(data)); err != nil {
		t.Fatal(err)
	}
	c.StartScheduler(t, "s1", func(cfg *scheduler.Config) { cfg.MisfireGrace = time.Hour })
	clustertest.WaitFor(t, 10*time.Second, "fifty records", func() bool { return len(c.Fires(t, "burst")) >= 50 })
	open, overlaps := 0, 0
	for _, f := range c.Fires(t, "burst") {
		if !f.Nominal.After(t0) || f.Nominal.After(t0.Add(50*time.Second)) {
			continue
		}
		switch {
		case f.State == store.FireSkipped && strings.Contains(f.Reason, "concurrency: forbid"):
			overlaps++
		case f.State != store.FireSkipped:
			open++
		}
	}
	if open != 1 || overlaps != 49 {
		t.Errorf("%d runs and %d overlap skips among the fifty times, want 1 and 49", open, overlaps)
	}
}
