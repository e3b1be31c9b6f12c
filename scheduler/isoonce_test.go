package scheduler_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/store"
)

// An ISO 8601 schedule with an empty start runs first at the time it was
// applied, and that run is its first repetition: R1 runs once, R2 twice.
func TestCluster_ISOEmptyStartRunsAtApply(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, `
jobs:
  - name: once-zero
    schedule: R1//PT0S
    command: "true"
  - name: once-day
    schedule: R1//P1D
    command: "true"
  - name: twice
    schedule: R2//PT2S
    command: "true"
`)
	want := map[string][]time.Duration{"once-zero": {0}, "once-day": {0}, "twice": {0, 2 * time.Second}}
	for job, offsets := range want {
		applied := appliedAt(t, c, job)
		for _, off := range offsets {
			id := store.ScheduledFireID(job, applied.Add(off))
			f := c.WaitFire(t, id, 30*time.Second, job+" run at apply+"+off.String(), func(f store.Fire) bool { return f.State.Final() })
			if f.State != store.FireSucceeded {
				t.Errorf("%s at apply+%s: %s (%s)", job, off, f.State, f.Reason)
			}
		}
	}
	// Nothing more follows the last repetition.
	time.Sleep(3 * time.Second)
	for job, offsets := range want {
		if fires := c.Fires(t, job); len(fires) != len(offsets) {
			t.Errorf("%s has %d fires, want %d: %+v", job, len(fires), len(offsets), fires)
		}
	}
}

// appliedAt reads the apply time the scheduler anchors job's empty start at.
func appliedAt(t *testing.T, c *clustertest.Cluster, job string) time.Time {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.State(job))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("read state of %s: %v (%d keys)", job, err, len(resp.Kvs))
	}
	var st store.JobState
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		t.Fatalf("decode state of %s: %v", job, err)
	}
	return st.AppliedAt
}
