package scheduler_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/scheduler/store"
)

// Tests of the run policies (retries, concurrency) and of manual runs and
// kills, against a real etcd and NATS. Jobs log their starts and ends to a
// file outside Aion (package runlog), so overlaps and timings are measured
// where the processes really ran.

// runsByStart reads the runs a job logged, ordered by start; a run that
// logged no end counts as still running now.
func runsByStart(t *testing.T, log string) []runlog.Run {
	t.Helper()
	runs := runlog.OpenUntil(runlog.MustRead(t, log), time.Now())
	runlog.SortByStart(runs)
	return runs
}

// checkNoOverlap reports every run that started while another still ran.
func checkNoOverlap(t *testing.T, runs []runlog.Run) {
	t.Helper()
	for _, p := range runlog.Overlaps(runs) {
		first, second := p[0], p[1]
		if second.Start.Before(first.Start) {
			first, second = second, first
		}
		t.Errorf("run %s started at %s while %s was still running (it ended at %s)", second.Key(), second.Start.Format("15:04:05.000"),
			first.Key(), first.End.Format("15:04:05.000"))
	}
}

// processed reports a final fire whose effects the leader has recorded: no
// retry or dependent fire will follow it any more.
func processed(f store.Fire) bool { return f.State.Final() && f.Processed }

// alive lists the processes, other than zombies, that are pid or in the
// process group it led (a run's shell leads its own group). Zombies are
// left out: an orphaned child killed with its group is reaped by PID 1,
// which in some containers never happens.
func alive(t *testing.T, pid int) []string {
	t.Helper()
	if syscall.Kill(pid, 0) != nil && syscall.Kill(-pid, 0) != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []string{fmt.Sprintf("process (group) %d exists and /proc is unreadable: %v", pid, err)}
	}
	var found []string
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if pgrp, _ := strconv.Atoi(f[2]); p == pid || pgrp == pid {
			found = append(found, strings.TrimSpace(s[:i+1])+" state "+f[0])
		}
	}
	return found
}

func TestPolicy_RetriesWithBackoff(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (about 6 s of backoffs)")
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
name: flaky
schedule: manual
command: %q
retries: {count: 3, backoff: {initial: 1s, max: 2s}}
`, runlog.Command(log, "exit 1")))
	id := c.RequestRun(t, "flaky", store.Request{})
	f := c.WaitFire(t, id, 20*time.Second, "final and processed", processed)

	if f.State != store.FireFailed || f.Attempt != 4 || f.ExitCode == nil || *f.ExitCode != 1 {
		t.Errorf("final record: state %s attempt %d exit %v reason %q; want failed, attempt 4, exit 1", f.State, f.Attempt, f.ExitCode, f.Reason)
	}
	if len(f.Attempts) != 3 {
		t.Fatalf("%d earlier attempts recorded, want 3: %+v", len(f.Attempts), f.Attempts)
	}
	for i, a := range f.Attempts {
		if a.Attempt != i+1 || a.State != store.FireFailed || a.ExitCode == nil || *a.ExitCode != 1 || a.Node != "x1" {
			t.Errorf("attempts[%d] = %+v (exit %v), want attempt %d failed with exit code 1 on x1", i, a, a.ExitCode, i+1)
		}
	}

	runs := runlog.MustRead(t, log)
	if len(runs) != 4 {
		t.Fatalf("%d attempts started, want 4: %q", len(runs), runlog.Keys(runs))
	}
	var starts []float64
	for i, r := range runs {
		if r.Fire != id.String() || r.Attempt != i+1 {
			t.Errorf("run %d = %s, want fire %s attempt %d", i, r.Key(), id, i+1)
		}
		starts = append(starts, float64(r.Start.UnixNano())/1e9)
	}
	// Backoff before attempt n+1: min(1s·2^(n-1), 2s), jittered within its
	// upper half. Slack for the 200 ms reconcile, dispatch and process start.
	const slack = 1.0
	bounds := [][2]float64{{0.5, 1 + slack}, {1, 2 + slack}, {1, 2 + slack}}
	for i, b := range bounds {
		gap := starts[i+1] - starts[i]
		t.Logf("gap after attempt %d: %.3fs (backoff range [%.1fs, %.1fs] + slack)", i+1, gap, b[0], b[1]-slack)
		if gap < b[0] || gap > b[1] {
			t.Errorf("attempt %d started %.3fs after attempt %d, want within [%.1fs, %.1fs]", i+2, gap, i+1, b[0], b[1])
		}
	}
}

func TestPolicy_TimedOutRunIsRetried(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
name: slow
schedule: manual
timeout: 1s
command: %q
retries: {count: 1, backoff: {initial: 200ms, max: 200ms}}
`, runlog.Command(log, "sleep 10")))
	id := c.RequestRun(t, "slow", store.Request{})
	f := c.WaitFire(t, id, 15*time.Second, "final and processed", processed)
	if f.State != store.FireTimedOut || f.Attempt != 2 || !strings.Contains(f.Reason, "1s timeout") {
		t.Errorf("final record: state %s attempt %d reason %q; want timed_out, attempt 2", f.State, f.Attempt, f.Reason)
	}
	if len(f.Attempts) != 1 || f.Attempts[0].State != store.FireTimedOut || f.Attempts[0].Attempt != 1 {
		t.Errorf("earlier attempts = %+v, want attempt 1 timed_out", f.Attempts)
	}
	want := []string{id.String() + " 1", id.String() + " 2"}
	if got := runlog.Keys(runlog.MustRead(t, log)); !slices.Equal(got, want) {
		t.Errorf("runs = %q, want %q", got, want)
	}
}

func TestPolicy_SuccessStopsRetrying(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
name: second-time-lucky
schedule: manual
command: %q
retries: {count: 5, backoff: {initial: 200ms, max: 200ms}}
`, runlog.Command(log, `[ "$AION_ATTEMPT" -ge 2 ] || exit 1`)))
	id := c.RequestRun(t, "second-time-lucky", store.Request{})
	f := c.WaitFire(t, id, 15*time.Second, "final and processed", processed)
	if f.State != store.FireSucceeded || f.Attempt != 2 {
		t.Errorf("final record: state %s attempt %d reason %q; want succeeded, attempt 2", f.State, f.Attempt, f.Reason)
	}
	if len(f.Attempts) != 1 || f.Attempts[0].State != store.FireFailed {
		t.Errorf("earlier attempts = %+v, want attempt 1 failed", f.Attempts)
	}
	time.Sleep(time.Second) // a wrong retry would be planned and started by now
	want := []string{id.String() + " 1", id.String() + " 2"}
	if got := runlog.Keys(runlog.MustRead(t, log)); !slices.Equal(got, want) {
		t.Errorf("runs = %q, want %q", got, want)
	}
}

func TestPolicy_LostRunRetriedOnlyWithOnLost(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	// The doomed executor reaches etcd through a link the test cuts, so
	// that once its lease is gone it cannot register again (an executor
	// that only lost its lease does, and could take the retry).
	etcdURL, err := url.Parse(c.EtcdURL)
	if err != nil {
		t.Fatal(err)
	}
	link := clustertest.StartProxy(t, etcdURL.Host)
	doomedEtcd, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + link.Addr()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = doomedEtcd.Close() })
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.OutputDir, cfg.Grace = "doomed", t.TempDir(), 2*time.Second
	clustertest.RunUntilCleanup(t, executor.New(cfg, doomedEtcd, c.NATS, c.Log).Run, "")
	t.Cleanup(link.Heal) // before the executor stops: its last calls need not time out
	c.WaitRegistered(t, "doomed")
	c.Apply(t, fmt.Sprintf(`
jobs:
  - name: not-retried
    schedule: manual
    command: %[1]q
    retries: {count: 1, backoff: {initial: 100ms, max: 100ms}}
  - name: retried
    schedule: manual
    command: %[1]q
    retries: {count: 1, on_lost: true, backoff: {initial: 100ms, max: 100ms}}
`, runlog.Command(log, "sleep 60")))
	plain := c.RequestRun(t, "not-retried", store.Request{})
	onLost := c.RequestRun(t, "retried", store.Request{})
	for _, id := range []store.FireID{plain, onLost} {
		c.WaitFire(t, id, 10*time.Second, "running on doomed", func(f store.Fire) bool {
			return f.State == store.FireRunning && f.Node == "doomed"
		})
	}
	c.StartExecutor(t, "healthy", 4, nil)
	c.WaitRegistered(t, "healthy")

	// The doomed executor's lease ends as if the process had died.
	link.Partition()
	c.RevokeRegistration(t, "doomed")

	f := c.WaitFire(t, onLost, 10*time.Second, "attempt 2 running on healthy", func(f store.Fire) bool {
		return f.Attempt == 2 && f.State == store.FireRunning
	})
	if f.Node != "healthy" || len(f.Attempts) != 1 || f.Attempts[0].State != store.FireLost || f.Attempts[0].Node != "doomed" {
		t.Errorf("on_lost fire: node %q, earlier attempts %+v; want attempt 2 on healthy after attempt 1 lost on doomed", f.Node, f.Attempts)
	}
	p := c.WaitFire(t, plain, 10*time.Second, "final and processed", processed)
	if p.State != store.FireLost || p.Attempt != 1 || len(p.Attempts) != 0 || !strings.Contains(p.Reason, "doomed lost its lease") {
		t.Errorf("fire without on_lost: state %s attempt %d attempts %+v reason %q; want lost, attempt 1, not retried", p.State, p.Attempt, p.Attempts, p.Reason)
	}
	clustertest.WaitFor(t, 5*time.Second, "attempt 2 to start", func() bool {
		return slices.Contains(runlog.Keys(runlog.MustRead(t, log)), onLost.String()+" 2")
	})
	for _, r := range runlog.MustRead(t, log) {
		if r.Key() == plain.String()+" 2" {
			t.Errorf("the lost run without on_lost ran again: %s", r.Key())
		}
	}
}

func TestPolicy_ForbidNeverOverlaps(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (12 s of schedule)")
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
name: forbid
schedule: "* * * * * *"
cron_seconds: true
concurrency: forbid
command: %q
`, runlog.Command(log, "sleep 2.5")))
	time.Sleep(12 * time.Second)

	runs := runsByStart(t, log)
	if len(runs) < 3 {
		t.Fatalf("%d runs in 12 s, want at least 3", len(runs))
	}
	checkNoOverlap(t, runs)
	// Forbid skips only while a run is open: the next run starts at the
	// first whole second after the previous one ended.
	for i := 1; i < len(runs); i++ {
		if idle := runs[i].Start.Sub(runs[i-1].End); idle > 2*time.Second {
			t.Errorf("run %s started %s after %s ended; want the next second's run", runs[i].Fire, idle.Round(time.Millisecond), runs[i-1].Fire)
		}
	}
	skipped := 0
	for _, f := range c.Fires(t, "forbid") {
		if f.State == store.FireSkipped {
			skipped++
			if !strings.Contains(f.Reason, "concurrency: forbid") {
				t.Errorf("skipped fire %s: reason %q", f.ID, f.Reason)
			}
		}
	}
	if skipped < 3 {
		t.Errorf("%d skipped fires, want at least 3 (two for each 2.5 s run)", skipped)
	}
	t.Logf("%d runs, %d skipped", len(runs), skipped)
}

func TestPolicy_ReplaceCancelsTheRunningFire(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (about 8 s of schedule)")
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	dir := t.TempDir()
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	// Each run checks that the previous one's process is gone before it logs its start.
	c.Apply(t, fmt.Sprintf(`
name: replace
schedule: "*/3 * * * * *"
cron_seconds: true
concurrency: replace
command: %q
`, fmt.Sprintf(`prev=$(cat %[1]s/pid 2>/dev/null); if [ -n "$prev" ] && kill -0 "$prev" 2>/dev/null; then echo "overlap $AION_FIRE_ID $prev" >> %[2]s; fi; echo $$ > %[1]s/pid; `, dir, log)+
		runlog.Command(log, "sleep 30")))

	var cancelled, later store.Fire
	clustertest.WaitFor(t, 10*time.Second, "a replaced fire and a later one running", func() bool {
		fires := c.Fires(t, "replace")
		for _, f := range fires {
			if f.State == store.FireCancelled {
				cancelled = f
			}
		}
		for _, f := range fires {
			if f.State == store.FireRunning && cancelled.ID.Job != "" && f.Nominal.After(cancelled.Nominal) {
				later = f
				return true
			}
		}
		return false
	})
	if !strings.Contains(cancelled.Reason, "replaced") {
		t.Errorf("cancelled fire %s: reason %q, want it to say it was replaced", cancelled.ID, cancelled.Reason)
	}
	if later.After == "" {
		t.Errorf("the replacing fire %s does not record the fire it waited for", later.ID)
	}
	if !later.StartedAt.After(cancelled.EndedAt) {
		t.Errorf("%s started at %s, before the replaced %s ended at %s", later.ID, later.StartedAt, cancelled.ID, cancelled.EndedAt)
	}
	var pid int
	for _, r := range runlog.MustRead(t, log) {
		if r.Fire == cancelled.ID.String() {
			pid = r.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no start logged for %s", cancelled.ID)
	}
	if procs := alive(t, pid); len(procs) > 0 {
		t.Errorf("the replaced run's processes are still alive: %q", procs)
	}
	// Processes of successive runs were never alive together. A killed run
	// logs no end: it ended before its record did (the executor records it
	// after reaping the process).
	ended := map[string]time.Time{}
	for _, f := range c.Fires(t, "replace") {
		if f.State.Final() && !f.EndedAt.IsZero() {
			ended[f.ID.String()] = f.EndedAt
		}
	}
	runs := runlog.MustRead(t, log)
	for i, r := range runs {
		if at, ok := ended[r.Fire]; ok && !r.Ended() {
			runs[i].End = at
		}
	}
	runs = runlog.OpenUntil(runs, time.Now())
	runlog.SortByStart(runs)
	checkNoOverlap(t, runs)
	for _, line := range runlog.MustLines(t, log) {
		if strings.HasPrefix(line, "overlap ") {
			t.Errorf("a run started while the previous one's process was alive: %q", line)
		}
	}
	states := map[store.FireState]int{}
	for _, f := range c.Fires(t, "replace") {
		states[f.State]++
	}
	t.Logf("fire states: %v", states)
}

func TestPolicy_QueueRunsOneAfterAnother(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (8 s of schedule)")
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
name: queue
schedule: "* * * * * *"
cron_seconds: true
concurrency: queue
command: %q
`, runlog.Command(log, "sleep 2.5")))
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		var waiting []string
		for _, f := range c.Fires(t, "queue") {
			if f.State == store.FirePlanned && f.After != "" {
				waiting = append(waiting, f.ID.String())
			}
		}
		if len(waiting) > 1 {
			t.Errorf("%d fires wait at once: %v", len(waiting), waiting)
		}
	}

	fires := c.Fires(t, "queue")
	runs := runsByStart(t, log)
	if len(runs) < 2 {
		t.Fatalf("%d runs in 8 s, want at least 2", len(runs))
	}
	checkNoOverlap(t, runs)
	skipped := 0
	followed := map[string]string{} // fire → the fire queued behind it
	for _, f := range fires {
		if f.After != "" {
			followed[f.After] = f.ID.String()
		}
		if f.State == store.FireSkipped {
			skipped++
			if !strings.Contains(f.Reason, "already queued") {
				t.Errorf("skipped fire %s: reason %q", f.ID, f.Reason)
			}
		}
	}
	if skipped == 0 {
		t.Error("no fire was skipped, though one is due every second and each run takes 2.5 s")
	}
	// A fire is due every second and a run takes 2.5 s, so a fire comes due
	// during every run, and whenever nothing waits yet it must be queued
	// behind the run: every run but the newest has a follower, and the job
	// runs back to back.
	for i, r := range runs[:len(runs)-1] {
		if _, ok := followed[r.Fire]; !ok {
			t.Errorf("nothing was queued behind %s (run %d of %d, %.1fs long), though fires came due while it ran and none was waiting",
				r.Fire, i+1, len(runs), r.End.Sub(r.Start).Seconds())
		}
	}
	var trace []string
	for _, f := range fires {
		trace = append(trace, fmt.Sprintf("%s %-9s planned %s started %s ended %s after=%q %s", f.Nominal.Format("05"), f.State,
			f.PlannedAt.Format("05.000"), f.StartedAt.Format("05.000"), f.EndedAt.Format("05.000"), f.After, f.Reason))
	}
	t.Logf("%d runs, %d skipped; fires:\n%s", len(runs), skipped, strings.Join(trace, "\n"))
}

func TestPolicy_ManualRuns(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
jobs:
  - name: parent
    schedule: manual
    command: echo "parent $AION_FIRE_ID" >> %[1]s
  - name: child
    parents: [parent]
    command: echo "child $AION_FIRE_ID" >> %[1]s
  - name: greet
    schedule: manual
    command: echo "args:$1,$2 foo:$FOO job:$0"
    env: {FOO: from-job}
  - name: argv
    schedule: manual
    args: [/bin/echo, default, words]
`, log))

	// The parent alone: its dependents do not run.
	alone := c.RequestRun(t, "parent", store.Request{})
	f := c.WaitFire(t, alone, 10*time.Second, "final and processed", processed)
	if f.State != store.FireSucceeded || f.Trigger != store.TriggerManual || f.RequestedBy != "tester" {
		t.Errorf("manual parent run: state %s trigger %s by %q", f.State, f.Trigger, f.RequestedBy)
	}
	if n := len(c.Fires(t, "child")); n != 0 {
		t.Errorf("a manual run without downstream planned %d child fires", n)
	}

	// With downstream, the child follows.
	down := c.RequestRun(t, "parent", store.Request{Downstream: true})
	c.WaitFire(t, down, 10*time.Second, "final and processed", processed)
	childID := store.DependentFireID("child", down)
	cf := c.WaitFire(t, childID, 10*time.Second, "final", func(f store.Fire) bool { return f.State.Final() })
	if cf.State != store.FireSucceeded || cf.Trigger != store.TriggerDependency {
		t.Errorf("child fire %s: state %s trigger %s", cf.ID, cf.State, cf.Trigger)
	}
	want := []string{"parent " + alone.String(), "parent " + down.String(), "child " + childID.String()}
	if got := runlog.MustLines(t, log); !slices.Equal(got, want) {
		t.Errorf("runs = %q, want %q", got, want)
	}

	// Arguments become $1, $2 of a command job; env overrides the job's.
	withArgs := c.RequestRun(t, "greet", store.Request{Args: []string{"x", "y"}, Env: map[string]string{"FOO": "from-request"}})
	g := c.WaitFire(t, withArgs, 10*time.Second, "final", func(f store.Fire) bool { return f.State.Final() })
	if g.State != store.FireSucceeded || !strings.Contains(g.OutputTail, "args:x,y foo:from-request job:greet") {
		t.Errorf("greet with args and env: state %s output %q", g.State, g.OutputTail)
	}
	plain := c.RequestRun(t, "greet", store.Request{})
	g = c.WaitFire(t, plain, 10*time.Second, "final", func(f store.Fire) bool { return f.State.Final() })
	if g.State != store.FireSucceeded || !strings.Contains(g.OutputTail, "args:, foo:from-job") {
		t.Errorf("greet without args: state %s output %q", g.State, g.OutputTail)
	}

	// Arguments replace an args job's arguments after the program.
	a := c.WaitFire(t, c.RequestRun(t, "argv", store.Request{Args: []string{"given", "instead"}}), 10*time.Second, "final",
		func(f store.Fire) bool { return f.State.Final() })
	if a.State != store.FireSucceeded || a.OutputTail != "given instead\n" {
		t.Errorf("argv with args: state %s output %q, want %q", a.State, a.OutputTail, "given instead\n")
	}
}

func TestPolicy_Kill(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	dir := t.TempDir()
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, fmt.Sprintf(`
jobs:
  - name: long
    schedule: manual
    command: echo $$ > %s/pid; sleep 60
    retries: {count: 2, backoff: {initial: 100ms, max: 100ms}}
  - name: nowhere
    schedule: manual
    command: "true"
    constraints: ["zone=mars"]
`, dir))

	// A running fire: its process group is killed and it is recorded as cancelled, not retried.
	id := c.RequestRun(t, "long", store.Request{})
	c.WaitFire(t, id, 10*time.Second, "running", func(f store.Fire) bool { return f.State == store.FireRunning })
	var pid int
	clustertest.WaitFor(t, 5*time.Second, "the pid file", func() bool {
		data, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(data), &pid)
		return err == nil
	})
	if err := store.RequestKill(context.Background(), c.Etcd, c.Keys, id, "tester", time.Now()); err != nil {
		t.Fatal(err)
	}
	f := c.WaitFire(t, id, 10*time.Second, "final and processed", processed)
	if f.State != store.FireCancelled || !strings.Contains(f.Reason, "killed by tester") || f.Attempt != 1 || len(f.Attempts) != 0 {
		t.Errorf("killed fire: state %s reason %q attempt %d attempts %+v; want cancelled, killed by tester, not retried", f.State, f.Reason, f.Attempt, f.Attempts)
	}
	if procs := alive(t, pid); len(procs) > 0 {
		t.Errorf("the killed run's processes are still alive: %q", procs)
	}

	// A planned fire waiting for a node is cancelled without running.
	wait := c.RequestRun(t, "nowhere", store.Request{})
	c.WaitFire(t, wait, 10*time.Second, "waiting for a node", func(f store.Fire) bool {
		return f.State == store.FirePlanned && strings.Contains(f.Reason, "zone=mars")
	})
	if err := store.RequestKill(context.Background(), c.Etcd, c.Keys, wait, "tester", time.Now()); err != nil {
		t.Fatal(err)
	}
	w := c.WaitFire(t, wait, 10*time.Second, "final and processed", processed)
	if w.State != store.FireCancelled || !strings.Contains(w.Reason, "killed by tester") || !w.StartedAt.IsZero() {
		t.Errorf("killed waiting fire: state %s reason %q started %s; want cancelled before it started", w.State, w.Reason, w.StartedAt)
	}
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Requests(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Errorf("%d run requests left over, want none", resp.Count)
	}
}

// TestPolicy_KillJustAfterPlanningIsNotLost asks to kill fires a moment after
// they are planned, while their executor is claiming them: every kill must
// take effect, whether it finds the fire planned or running.
func TestPolicy_KillJustAfterPlanningIsNotLost(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 16, nil)
	c.Apply(t, `
name: race
schedule: manual
command: sleep 30
`)
	ctx := context.Background()
	killedAt := map[store.FireID]time.Time{}
	for range 10 {
		w := c.Etcd.Watch(ctx, c.Keys.JobFires("race"), clientv3.WithPrefix())
		id := c.RequestRun(t, "race", store.Request{})
	planned:
		for resp := range w {
			for _, ev := range resp.Events {
				if string(ev.Kv.Key) == c.Keys.Fire(id) {
					break planned
				}
			}
		}
		killedAt[id] = time.Now()
		if err := store.RequestKill(ctx, c.Etcd, c.Keys, id, "tester", killedAt[id]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A kill takes effect within a second or so; 5 s is plenty.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if len(clustertest.Final(c.Fires(t, "race"))) == len(killedAt) {
			break
		}
	}
	lost := 0
	for _, f := range c.Fires(t, "race") {
		if f.State != store.FireCancelled || !strings.Contains(f.Reason, "killed by tester") {
			lost++
			t.Errorf("%s, kill requested %s after planning: state %s (claimed %s after planning), reason %q; want cancelled",
				f.ID, killedAt[f.ID].Sub(f.PlannedAt).Round(time.Microsecond), f.State, f.StartedAt.Sub(f.PlannedAt).Round(time.Microsecond), f.Reason)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d kills had no effect", lost, len(killedAt))
	}
}

// TestPolicy_FullSlotsWaitThenSkipPastTheStartingDeadline overloads one
// executor of 2 slots with a job due every second whose runs take 2.5 s:
// runs that find both slots taken wait, start as soon as a slot frees (not
// at the next reconcile), and those that cannot start within the job's
// 1 s starting deadline are skipped with that reason instead of queuing up
// ever later. Without the deadline the backlog (and lateness) would grow
// by almost half a run a second.
func TestPolicy_FullSlotsWaitThenSkipPastTheStartingDeadline(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end (12 s of schedule)")
	t.Parallel()
	c := clustertest.Start(t)
	log := runlog.File(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 2, nil)
	c.Apply(t, fmt.Sprintf(`
name: crowded
schedule: "* * * * * *"
cron_seconds: true
concurrency: allow
misfire: {starting_deadline: 1s}
command: %q
`, runlog.Command(log, "sleep 3.5")))
	time.Sleep(12 * time.Second)

	runs := runsByStart(t, log)
	if len(runs) < 4 {
		t.Fatalf("%d runs in 12 s on 2 slots of 3.5 s runs, want at least 4", len(runs))
	}
	for i, r := range runs { // never more than the 2 slots at once
		going := 0
		for _, o := range runs[:i] {
			if o.End.After(r.Start) {
				going++
			}
		}
		if going >= 2 {
			t.Errorf("run %s started at %s while %d others ran on 2 slots", r.Fire, r.Start.Format("15:04:05.000"), going)
		}
	}
	skipped := 0
	for _, f := range c.Fires(t, "crowded") {
		switch {
		case f.State == store.FireSkipped:
			skipped++
			if !strings.Contains(f.Reason, "past the starting deadline of 1s") || !strings.Contains(f.Reason, "free slot") {
				t.Errorf("skipped fire %s: reason %q", f.ID, f.Reason)
			}
		case !f.StartedAt.IsZero():
			// Placed within the deadline, then claimed and forked: allow
			// a generous second for that on a loaded machine. Without the
			// deadline the lateness would grow past it within seconds.
			if lateness := f.StartedAt.Sub(f.Nominal); lateness > 2*time.Second {
				t.Errorf("run %s started %s after its nominal time, past the 1s deadline", f.ID, lateness.Round(time.Millisecond))
			}
		}
	}
	if skipped < 2 {
		t.Errorf("%d runs skipped for the deadline in 12 s, want at least 2 (a run a second needs 3.5 slots)", skipped)
	}
	t.Logf("%d runs, %d skipped past the deadline", len(runs), skipped)
}
