package scheduler_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/scheduler/store"
)

func TestDAG_SoftFailParentLetsChildrenRun(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
jobs:
  - name: optional
    schedule: "*/2 * * * * *"
    cron_seconds: true
    soft_fail: true
    command: exit 1
  - name: strict
    schedule: "*/2 * * * * *"
    cron_seconds: true
    command: exit 1
  - name: after-optional
    parents: [optional]
    command: echo after-optional >> %[1]s
  - name: after-strict
    parents: [strict]
    command: echo after-strict >> %[1]s
`, log))
	clustertest.WaitFor(t, 10*time.Second, "a child of the soft-failing parent to run", func() bool {
		return slices.Contains(runlog.MustLines(t, log), "after-optional")
	})
	for _, f := range clustertest.Final(c.Fires(t, "optional")) {
		if f.State != store.FireFailed {
			t.Errorf("%s: %s, want failed (soft_fail does not hide the failure)", f.ID, f.State)
		}
	}
	if slices.Contains(runlog.MustLines(t, log), "after-strict") {
		t.Error("a child of a failed parent without soft_fail ran")
	}
}
