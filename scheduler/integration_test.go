package scheduler_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

func TestCluster_EverySecondJobFiresOnTimeWithoutGapsOrDuplicates(t *testing.T) {
	clustertest.SkipShort(t, "soak (30 s of an every-second job)")
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
name: tick
schedule: "* * * * * *"
cron_seconds: true
command: %q
`, runlog.Command(log, "true")))
	time.Sleep(30 * time.Second)
	clustertest.WaitFor(t, 5*time.Second, "running fires to finish", func() bool {
		for _, f := range c.Fires(t, "tick") {
			if !f.State.Final() && time.Since(f.Nominal) > 2*time.Second {
				return false
			}
		}
		return true
	})

	fires := c.Fires(t, "tick")
	var nominals []time.Time
	var lateness []time.Duration
	for _, f := range fires {
		if !f.State.Final() {
			continue
		}
		if f.State != store.FireSucceeded {
			t.Errorf("fire %s: %s (%s)", f.ID, f.State, f.Reason)
		}
		nominals = append(nominals, f.Nominal)
		lateness = append(lateness, f.StartedAt.Sub(f.Nominal))
	}
	if len(nominals) < 28 {
		t.Fatalf("%d fires in 30 s, want at least 28", len(nominals))
	}
	slices.SortFunc(nominals, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(nominals); i++ {
		if gap := nominals[i].Sub(nominals[i-1]); gap != time.Second {
			t.Errorf("nominal times %s and %s are %s apart: missed or duplicate", nominals[i-1], nominals[i], gap)
		}
	}
	// Each fire started exactly once: its ID appears once in the job's own log.
	seen := runlog.Starts(runlog.MustRead(t, log))
	for _, f := range fires {
		if f.State == store.FireSucceeded && seen[f.ID.String()+" 1"] != 1 {
			t.Errorf("fire %s ran %d times, want once", f.ID, seen[f.ID.String()+" 1"])
		}
	}
	slices.Sort(lateness)
	t.Logf("%d fires; start lateness p50 %s, p90 %s, max %s", len(lateness),
		lateness[len(lateness)/2], lateness[len(lateness)*9/10], lateness[len(lateness)-1])
}

func TestCluster_ConstraintsRouteJobs(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "eu-1", 4, map[string]string{"zone": "eu"})
	c.StartExecutor(t, "us-1", 4, map[string]string{"zone": "us", "gpu": "true"})
	c.Apply(t, `
jobs:
  - name: in-eu
    schedule: "* * * * * *"
    cron_seconds: true
    concurrency: allow
    command: "true"
    constraints: ["zone=eu"]
  - name: on-gpu
    schedule: "* * * * * *"
    cron_seconds: true
    concurrency: allow
    command: "true"
    constraints: ["gpu", "zone in (us,ap)"]
  - name: nowhere
    schedule: "* * * * * *"
    cron_seconds: true
    command: "true"
    constraints: ["zone=mars"]
`)
	clustertest.WaitFor(t, 10*time.Second, "three runs of each routed job", func() bool {
		return len(clustertest.Final(c.Fires(t, "in-eu"))) >= 3 && len(clustertest.Final(c.Fires(t, "on-gpu"))) >= 3
	})
	for job, node := range map[string]string{"in-eu": "eu-1", "on-gpu": "us-1"} {
		for _, f := range clustertest.Final(c.Fires(t, job)) {
			if f.Node != node || f.State != store.FireSucceeded {
				t.Errorf("%s ran on %q (%s), want %s", f.ID, f.Node, f.State, node)
			}
		}
	}
	// A job no node satisfies waits, visibly, and never runs.
	nowhere := c.Fires(t, "nowhere")
	if len(nowhere) == 0 {
		t.Fatal("no fire recorded for the unplaceable job")
	}
	for _, f := range nowhere {
		switch {
		case f.State == store.FirePlanned && f.Node == "" && strings.Contains(f.Reason, "zone=mars"):
		case f.State == store.FireSkipped: // later times, while the first waits (concurrency: forbid)
		default:
			t.Errorf("unplaceable fire %s: state %s node %q reason %q", f.ID, f.State, f.Node, f.Reason)
		}
	}
}

func TestCluster_LeastLoadedExecutorFirst(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (about 10 s of overlapping runs)")
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	// "busy" has 2 of its 4 slots taken by long runs pinned to it.
	c.StartExecutor(t, "busy", 4, map[string]string{"role": "busy"})
	hogs := `
  - name: hog-1
    schedule: "* * * * * *"
    cron_seconds: true
    command: sleep 30
    constraints: ["role=busy"]
  - name: hog-2
    schedule: "* * * * * *"
    cron_seconds: true
    command: sleep 30
    constraints: ["role=busy"]
`
	c.Apply(t, "jobs:"+hogs)
	clustertest.WaitFor(t, 10*time.Second, "two hogs running on busy", func() bool {
		running := 0
		for _, f := range c.Fires(t, "") {
			if f.State == store.FireRunning && f.Node == "busy" {
				running++
			}
		}
		return running == 2
	})
	c.StartExecutor(t, "idle", 4, nil)
	c.WaitRegistered(t, "idle")
	time.Sleep(500 * time.Millisecond) // let the leader see the registration
	c.Apply(t, "jobs:"+hogs+`
  - name: work
    schedule: "* * * * * *"
    cron_seconds: true
    concurrency: allow
    command: sleep 2
`)
	clustertest.WaitFor(t, 10*time.Second, "six runs of work", func() bool {
		return len(c.Fires(t, "work")) >= 6
	})
	// With busy at 2/4 and idle at 0/4, overlapping 2-second runs go to idle
	// until idle holds as many as busy.
	onIdle, onBusy := 0, 0
	for _, f := range c.Fires(t, "work")[:6] {
		switch f.Node {
		case "idle":
			onIdle++
		case "busy":
			onBusy++
		}
	}
	if onIdle < 4 {
		t.Errorf("work ran %d times on idle and %d on busy; want the least-loaded node first (at least 4 of 6 on idle)", onIdle, onBusy)
	}
}

func TestCluster_DependenciesRunInOrderAndFailedParentBlocks(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
jobs:
  - name: extract
    schedule: "*/2 * * * * *"
    cron_seconds: true
    command: echo extract >> %[1]s
  - name: transform
    parents: [extract]
    command: echo transform >> %[1]s
  - name: load
    parents: [transform]
    command: echo load >> %[1]s
  - name: broken
    schedule: "*/2 * * * * *"
    cron_seconds: true
    command: exit 3
  - name: after-broken
    parents: [broken]
    command: echo after-broken >> %[1]s
`, log))
	clustertest.WaitFor(t, 15*time.Second, "two loads", func() bool {
		return len(clustertest.Final(c.Fires(t, "load"))) >= 2
	})
	lines := runlog.MustLines(t, log)
	// The chain runs in order each time: extract, transform, load.
	var chain []string
	for _, l := range lines {
		if l != "after-broken" {
			chain = append(chain, l)
		}
	}
	for i := 0; i+2 < len(chain) && i < 6; i += 3 {
		if got := strings.Join(chain[i:i+3], ","); got != "extract,transform,load" {
			t.Errorf("run order %q, want extract,transform,load (all: %v)", got, chain)
		}
	}
	if slices.Contains(lines, "after-broken") {
		t.Error("a child of a failed parent ran")
	}
	broken := clustertest.Final(c.Fires(t, "broken"))
	if len(broken) == 0 || broken[0].State != store.FireFailed || broken[0].ExitCode == nil || *broken[0].ExitCode != 3 {
		t.Errorf("broken fires = %+v, want failed with exit code 3", broken)
	}
	if n := len(c.Fires(t, "after-broken")); n != 0 {
		t.Errorf("after-broken has %d fire records, want none", n)
	}
}

func TestCluster_TimeoutKillsTheWholeProcessGroup(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (about 5 s, with a 300 s child left to kill)")
	c := clustertest.Start(t)
	dir := t.TempDir()
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
name: slow
schedule: "* * * * * *"
cron_seconds: true
timeout: 1s
command: sleep 300 & echo $! > %[1]s/child.pid; echo started; wait
`, dir))
	var f store.Fire
	clustertest.WaitFor(t, 10*time.Second, "a timed-out run", func() bool {
		for _, x := range c.Fires(t, "slow") {
			if x.State == store.FireTimedOut {
				f = x
				return true
			}
		}
		return false
	})
	if !strings.Contains(f.Reason, "1s timeout") || !strings.Contains(f.OutputTail, "started") {
		t.Errorf("timed-out fire: reason %q, output %q", f.Reason, f.OutputTail)
	}
	data, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(data), &pid)
	clustertest.WaitFor(t, 5*time.Second, "the background child to be gone", func() bool {
		return syscall.Kill(pid, 0) != nil
	})
}

func TestCluster_RunOfDeadExecutorBecomesLost(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (executor lease revoked)")
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.OutputDir, cfg.Grace = "doomed", t.TempDir(), 2*time.Second
	clustertest.RunUntilCleanup(t, executor.New(cfg, c.Etcd, c.NATS, c.Log).Run, "registration lease lost")
	c.Apply(t, `
name: long
schedule: "*/2 * * * * *"
cron_seconds: true
command: sleep 60
`)
	var running store.Fire
	clustertest.WaitFor(t, 10*time.Second, "a running fire", func() bool {
		for _, f := range c.Fires(t, "long") {
			if f.State == store.FireRunning {
				running = f
				return true
			}
		}
		return false
	})
	// The executor's lease ends as if the process had died.
	c.RevokeRegistration(t, "doomed")
	// Lost: by the executor, which kills its runs when its lease is gone,
	// or by the leader, once the fence has passed.
	clustertest.WaitFor(t, 15*time.Second, "the fire to be marked lost", func() bool {
		for _, f := range c.Fires(t, "long") {
			if f.ID == running.ID {
				return f.State == store.FireLost
			}
		}
		return false
	})
	for _, f := range c.Fires(t, "long") {
		if f.ID == running.ID && !strings.Contains(f.Reason, "doomed lost its lease") && !strings.Contains(f.Reason, "lost its etcd registration") {
			t.Errorf("lost fire reason = %q", f.Reason)
		}
	}
}

func TestCluster_AppliedChangesTakeEffect(t *testing.T) {
	c := clustertest.Start(t)
	// What is tested is which nominal times get planned: the scheduler's
	// clock runs three times as fast, so they come three times as often.
	const rate = 3
	clock := clustertest.NewClock(0, rate)
	c.StartScheduler(t, "s1", func(cfg *scheduler.Config) { cfg.Now = clock.Now })
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, `
jobs:
  - name: keep
    schedule: "* * * * * *"
    cron_seconds: true
    command: "true"
  - name: goes
    schedule: "* * * * * *"
    cron_seconds: true
    command: "true"
`)
	clustertest.WaitFor(t, 10*time.Second, "both jobs to run", func() bool {
		return len(clustertest.Final(c.Fires(t, "keep"))) >= 2 && len(clustertest.Final(c.Fires(t, "goes"))) >= 2
	})
	// goes leaves the set; keep slows down to every 2 seconds and is disabled later.
	res := c.Apply(t, `
jobs:
  - name: keep
    schedule: "*/2 * * * * *"
    cron_seconds: true
    command: "true"
`)
	if strings.Join(res.Deleted, ",") != "goes" || strings.Join(res.Updated, ",") != "keep" {
		t.Fatalf("apply result %+v, want goes deleted and keep updated", res)
	}
	changedAt := clock.Now()
	// 4.5 s of the clock; the leader sees the apply within 500 ms of the
	// wall clock.
	time.Sleep(clock.WallFor(4500 * time.Millisecond))
	seen := changedAt.Add(rate * 500 * time.Millisecond)
	for _, f := range c.Fires(t, "goes") {
		if f.PlannedAt.After(seen) {
			t.Errorf("deleted job planned %s after the apply", f.ID)
		}
	}
	var after []store.Fire
	for _, f := range c.Fires(t, "keep") {
		if f.PlannedAt.After(seen) {
			after = append(after, f)
			if f.Nominal.Second()%2 != 0 {
				t.Errorf("keep fired at %s, off its new */2 schedule", f.Nominal)
			}
		}
	}
	if len(after) < 1 {
		t.Errorf("keep did not fire after its change")
	}
}

func TestCluster_WaitingFireRunsWhenAnEligibleExecutorAppears(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "earth-1", 2, map[string]string{"zone": "earth"})
	c.Apply(t, `
name: on-mars
schedule: "*/2 * * * * *"
cron_seconds: true
command: "true"
constraints: ["zone=mars"]
`)
	clustertest.WaitFor(t, 5*time.Second, "a waiting fire", func() bool {
		for _, f := range c.Fires(t, "on-mars") {
			if f.State == store.FirePlanned && strings.Contains(f.Reason, "zone=mars") {
				return true
			}
		}
		return false
	})
	c.StartExecutor(t, "mars-1", 2, map[string]string{"zone": "mars"})
	clustertest.WaitFor(t, 10*time.Second, "the waiting fire to run on mars-1", func() bool {
		fires := c.Fires(t, "on-mars")
		return len(fires) > 0 && fires[0].State == store.FireSucceeded && fires[0].Node == "mars-1"
	})
}
