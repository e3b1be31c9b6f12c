package executor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/scheduler/store"
)

// runExecutor runs executor id with the given grace until stop is called;
// stop cancels its context and waits for Run to return.
func runExecutor(t *testing.T, c *clustertest.Cluster, id string, grace time.Duration) (stop func()) {
	t.Helper()
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.OutputDir, cfg.Grace = id, t.TempDir(), grace
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- executor.New(cfg, c.Etcd, c.NATS, c.Log).Run(ctx) }()
	c.WaitRegistered(t, id)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("executor %s: %v", id, err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestExecutor_StopSendsSIGTERMAtOnce stops an executor with a 60 s grace
// while a job that handles SIGTERM runs: the job gets SIGTERM when the
// stop begins, not when the grace ends, and its record says how it ended.
func TestExecutor_StopSendsSIGTERMAtOnce(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	marker := filepath.Join(t.TempDir(), "term")
	c.Apply(t, `
name: polite
schedule: manual
command: trap 'echo term > `+marker+`; exit 3' TERM; sleep 120 & wait
`)
	stop := runExecutor(t, c, "a", time.Minute)
	id := c.StartFire(t, "polite", "a", nil)
	c.WaitFire(t, id, 5*time.Second, "the run to start", func(f store.Fire) bool { return f.State == store.FireRunning })
	time.Sleep(200 * time.Millisecond) // the shell has set its trap
	stopDone := make(chan struct{})
	go func() { stop(); close(stopDone) }()
	clustertest.WaitFor(t, 20*time.Second, "the job to get SIGTERM (the grace is 60 s)", func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	<-stopDone
	f := c.MustFire(t, id)
	if f.State != store.FireFailed || f.ExitCode == nil || *f.ExitCode != 3 || !strings.Contains(f.Reason, "executor stopped") {
		t.Errorf("fire: %s, exit %s, reason %q; want failed with the job's exit 3 and a reason naming the stop", f.State, exitCode(f), f.Reason)
	}
}

// TestExecutor_StopKillsAfterTheGrace stops an executor with a 1 s grace
// while a job that ignores SIGTERM runs: it is SIGKILLed once the grace is
// over, and the executor records that and returns.
func TestExecutor_StopKillsAfterTheGrace(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.Apply(t, `
name: stubborn
schedule: manual
command: trap '' TERM; sleep 120
`)
	stop := runExecutor(t, c, "a", time.Second)
	id := c.StartFire(t, "stubborn", "a", nil)
	c.WaitFire(t, id, 5*time.Second, "the run to start", func(f store.Fire) bool { return f.State == store.FireRunning })
	time.Sleep(200 * time.Millisecond)
	stop()
	f := c.MustFire(t, id)
	if f.State != store.FireFailed || f.ExitCode == nil || *f.ExitCode != 128+9 || !strings.Contains(f.Reason, "SIGKILL") {
		t.Errorf("fire: %s, exit %s, reason %q; want failed, killed by SIGKILL after the grace", f.State, exitCode(f), f.Reason)
	}
}
