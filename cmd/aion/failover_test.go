package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/scheduler/clustertest"
	"github.com/aionsched/aion/scheduler/store"
)

// buildAion builds the aion binary for tests that run it as processes.
func buildAion(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aion")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running aion subprocess with its output in a file.
type process struct {
	name string
	cmd  *exec.Cmd
	out  string
}

func startProcess(t *testing.T, bin, name string, args ...string) *process {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	f.Close()
	p := &process{name: name, cmd: cmd, out: out}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			data, _ := os.ReadFile(out)
			t.Logf("--- %s output (last 3000 bytes):\n%s", name, tailString(string(data), 3000))
		}
	})
	return p
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// currentLeader returns the ID the election key of the current leader holds.
func currentLeader(t *testing.T, c *clustertest.Cluster) string {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Election(), clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// TestFailover_LeaderKilledEverySecondJobContinues runs 2 schedulers and 2
// executors as processes of the built binary against one etcd and one NATS,
// SIGKILLs the leader, and counts missed and duplicate runs of an
// every-second job from the fire records and from the job's own log.
func TestFailover_LeaderKilledEverySecondJobContinues(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes for about 25 seconds")
	}
	bin := buildAion(t)
	c := clustertest.Start(t)
	runLog := filepath.Join(t.TempDir(), "runs.log")
	c.Apply(t, fmt.Sprintf(`
name: tick
schedule: "* * * * * *"
cron_seconds: true
concurrency: allow
command: echo "$AION_FIRE_ID $AION_ATTEMPT $(hostname) $$" >> %s
`, runLog))
	const ttl = 3 * time.Second
	common := []string{"--etcd", c.EtcdURL, "--nats", c.NATSURL, "--log-level", "info"}
	schedulers := map[string]*process{}
	for _, id := range []string{"s1", "s2"} {
		schedulers[id] = startProcess(t, bin, id, append([]string{"scheduler", "--id", id, "--listen", "127.0.0.1:0",
			"--session-ttl", ttl.String()}, common...)...)
	}
	for _, id := range []string{"x1", "x2"} {
		startProcess(t, bin, id, append([]string{"executor", "--node-id", id, "--output-dir", t.TempDir()}, common...)...)
	}
	clustertest.WaitFor(t, 15*time.Second, "a leader and five runs", func() bool {
		return currentLeader(t, c) != "" && len(clustertest.Final(c.Fires(t, "tick"))) >= 5
	})
	leader := currentLeader(t, c)
	killedAt := time.Now()
	if err := schedulers[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILLed leader %s at %s", leader, killedAt.Format("15:04:05.000"))
	clustertest.WaitFor(t, 4*ttl, "a new leader", func() bool {
		l := currentLeader(t, c)
		return l != "" && l != leader
	})
	time.Sleep(8 * time.Second)
	stopAt := time.Now()

	fires := c.Fires(t, "tick")
	var nominals []time.Time
	var firstAfterKill time.Time
	for _, f := range fires {
		if f.Nominal.After(stopAt.Add(-2 * time.Second)) {
			continue // may still be running
		}
		nominals = append(nominals, f.Nominal)
		if f.PlannedAt.After(killedAt) && (firstAfterKill.IsZero() || f.PlannedAt.Before(firstAfterKill)) {
			firstAfterKill = f.PlannedAt
		}
		if f.State != store.FireSucceeded {
			t.Errorf("fire %s: %s (%s)", f.ID, f.State, f.Reason)
		}
	}
	slices.SortFunc(nominals, func(a, b time.Time) int { return a.Compare(b) })
	missed := 0
	for i := 1; i < len(nominals); i++ {
		missed += int(nominals[i].Sub(nominals[i-1])/time.Second) - 1
	}
	// Duplicates: a fire ID started more than once, by the job's own log.
	data, err := os.ReadFile(runLog)
	if err != nil {
		t.Fatal(err)
	}
	starts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		fields := strings.Fields(line)
		starts[fields[0]+" "+fields[1]]++
	}
	dups := 0
	for _, n := range starts {
		dups += n - 1
	}
	takeover := firstAfterKill.Sub(killedAt)
	t.Logf("failover with session TTL %s: %d nominal times, %d missed, %d duplicate starts, first fire planned by the new leader %s after the kill",
		ttl, len(nominals), missed, dups, takeover.Round(time.Millisecond))
	if dups != 0 {
		t.Errorf("%d duplicate starts, want 0", dups)
	}
	if missed != 0 {
		t.Errorf("%d nominal times missed, want 0 (they are within the misfire grace and must be caught up)", missed)
	}
	if firstAfterKill.IsZero() || takeover > 2*ttl {
		t.Errorf("takeover took %s, want under 2 × TTL = %s", takeover, 2*ttl)
	}
}
