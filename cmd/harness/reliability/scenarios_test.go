package reliability

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// ttl is the session and lease TTL of the scenarios' processes.
const ttl = 3 * time.Second

// world is a cluster for one scenario: embedded etcd and NATS in the test
// process, schedulers and executors as aion processes.
type world struct {
	c          *clustertest.Cluster
	bin        string
	schedulers map[string]*clustertest.Process
	executors  map[string]*clustertest.Process
	runLog     string
}

func newWorld(t *testing.T, schedulers, executors []string) *world {
	clustertest.SkipShort(t, "fault scenario (aion processes for about 20 s)")
	w := &world{
		c: clustertest.Start(t), bin: clustertest.BuildAion(t),
		schedulers: map[string]*clustertest.Process{}, executors: map[string]*clustertest.Process{},
		runLog: filepath.Join(t.TempDir(), "runs.log"),
	}
	common := []string{"--etcd", w.c.EtcdURL, "--nats", w.c.NATSURL}
	for _, id := range schedulers {
		w.schedulers[id] = clustertest.StartProcess(t, w.bin, id, append([]string{"scheduler", "--id", id,
			"--listen", "127.0.0.1:0", "--session-ttl", ttl.String()}, common...)...)
	}
	outputs := t.TempDir()
	for _, id := range executors {
		w.executors[id] = clustertest.StartProcess(t, w.bin, id, append([]string{"executor", "--node-id", id,
			"--labels", "node=" + id, "--output-dir", filepath.Join(outputs, id), "--grace", "1s"}, common...)...)
	}
	return w
}

func (w *world) waitLeader(t *testing.T, not string) string {
	var leader string
	clustertest.WaitFor(t, 4*ttl, "a leader", func() bool {
		leader = w.c.Leader(t)
		return leader != "" && leader != not
	})
	return leader
}

// check runs the checker for an every-second job over (from, to], and
// fails the test on any protocol violation in etcd's history.
func (w *world) check(t *testing.T, job string, from, to time.Time) Report {
	sched, err := jobspec.ParseCron("* * * * * *", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := runlog.Read(w.runLog)
	if err != nil {
		t.Fatal(err)
	}
	events, err := ReadHistory(t.Context(), w.c.Etcd, w.c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	h := CheckHistory(w.c.Keys, events)
	for _, v := range h.Violations() {
		t.Error(v)
	}
	t.Logf("history: %d changes to etcd checked, %d high-water regressions, %d fires created by a non-leader",
		h.Events, len(h.HighWaterBackwards), len(h.NonLeaderFires))
	return Check(sched, job, from.Truncate(time.Second), to.Truncate(time.Second), w.c.Fires(t, job), runs)
}

func everySecondJob(logPath string) string {
	return fmt.Sprintf(`
name: tick
schedule: "* * * * * *"
cron_seconds: true
concurrency: allow
command: %q
`, runlog.Command(logPath, "true"))
}

// TestScenario_LeaderSIGKILL kills the leader of two schedulers while an
// every-second job runs. The other takes over; every nominal time runs
// exactly once (late ones within the misfire grace are caught up).
func TestScenario_LeaderSIGKILL(t *testing.T) {
	w := newWorld(t, []string{"s1", "s2"}, []string{"x1", "x2"})
	w.c.Apply(t, everySecondJob(w.runLog))
	leader := w.waitLeader(t, "")
	time.Sleep(4 * time.Second)
	from := time.Now()
	killedAt := time.Now()
	w.schedulers[leader].Kill()
	next := w.waitLeader(t, leader)
	time.Sleep(8 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	r := w.check(t, "tick", from, to)
	var takeover time.Duration
	for _, f := range w.c.Fires(t, "tick") {
		if f.PlannedBy == next && f.PlannedAt.After(killedAt) && (takeover == 0 || f.PlannedAt.Sub(killedAt) < takeover) {
			takeover = f.PlannedAt.Sub(killedAt)
		}
	}
	t.Logf("leader %s SIGKILLed, %s took over; first fire planned by it %s after the kill; %s", leader, next, takeover.Round(time.Millisecond), r)
	if len(r.Missed) != 0 || len(r.Duplicates) != 0 {
		t.Errorf("missed %v, duplicates %v; want none", r.Missed, r.Duplicates)
	}
	if takeover == 0 || takeover > 2*ttl {
		t.Errorf("takeover %s, want under 2 × TTL = %s", takeover, 2*ttl)
	}
}

// TestScenario_LeaderSIGSTOPThenSIGCONT pauses the leader for 3 × TTL: its
// session expires, the other scheduler leads, and when the old one wakes
// every write it attempts is rejected by the fence: no record planned by it
// after the pause, no duplicate start.
func TestScenario_LeaderSIGSTOPThenSIGCONT(t *testing.T) {
	w := newWorld(t, []string{"s1", "s2"}, []string{"x1"})
	w.c.Apply(t, everySecondJob(w.runLog))
	leader := w.waitLeader(t, "")
	time.Sleep(3 * time.Second)
	from := time.Now()
	stoppedAt := time.Now()
	w.schedulers[leader].Signal(syscall.SIGSTOP)
	next := w.waitLeader(t, leader)
	time.Sleep(3*ttl - time.Since(stoppedAt))
	w.schedulers[leader].Signal(syscall.SIGCONT)
	time.Sleep(5 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	r := w.check(t, "tick", from, to)
	t.Logf("leader %s stopped for %s, %s led meanwhile; %s", leader, 3*ttl, next, r)
	for _, f := range w.c.Fires(t, "tick") {
		if f.PlannedBy == leader && f.PlannedAt.After(stoppedAt) {
			t.Errorf("%s was planned by the paused ex-leader %s at %s", f.ID, leader, f.PlannedAt)
		}
	}
	if len(r.Missed) != 0 || len(r.Duplicates) != 0 {
		t.Errorf("missed %v, duplicates %v; want none", r.Missed, r.Duplicates)
	}
}

// TestScenario_ExecutorSIGKILLMidRun kills the executor running a long job:
// the fire becomes lost within TTL + grace and is not re-run (the job does
// not allow it); the executor, restarted, kills the process group its dead
// predecessor left behind.
func TestScenario_ExecutorSIGKILLMidRun(t *testing.T) {
	w := newWorld(t, []string{"s1"}, []string{"x1", "x2"})
	w.c.Apply(t, fmt.Sprintf(`
name: long
schedule: manual
command: %q
constraints: ["node=x1"]
`, runlog.Command(w.runLog, "sleep 60")))
	w.waitLeader(t, "")
	w.c.WaitRegistered(t, "x1")
	id := w.c.RequestRun(t, "long", store.Request{By: "test"})
	var run runlog.Run
	clustertest.WaitFor(t, 10*time.Second, "the run to start", func() bool {
		runs, _ := runlog.Read(w.runLog)
		if len(runs) == 1 {
			run = runs[0]
		}
		return len(runs) == 1
	})
	killedAt := time.Now()
	w.executors["x1"].Kill()
	var lost store.Fire
	clustertest.WaitFor(t, 3*ttl, "the fire to be lost", func() bool {
		for _, f := range w.c.Fires(t, "long") {
			if f.ID == id && f.State == store.FireLost {
				lost = f
				return true
			}
		}
		return false
	})
	t.Logf("fire %s lost %s after its executor was SIGKILLed", id, time.Since(killedAt).Round(time.Millisecond))
	if !strings.Contains(lost.Reason, "x1 lost its lease") || lost.Attempt != 1 {
		t.Errorf("lost fire: attempt %d, reason %q", lost.Attempt, lost.Reason)
	}
	if !alive(run.PID) {
		t.Logf("the orphaned shell %d is already gone", run.PID)
	}
	w.executors["x1"].Restart()
	clustertest.WaitFor(t, 10*time.Second, "the orphaned run to be killed by the restarted executor", func() bool {
		return !alive(run.PID)
	})
	time.Sleep(2 * time.Second)
	if runs, _ := runlog.Read(w.runLog); len(runs) != 1 {
		t.Errorf("%d runs started, want 1: a lost run is not retried unless retries.on_lost", len(runs))
	}
}

// TestScenario_NATSRestart stops NATS for 4 s while an every-second job
// runs: dispatches sent meanwhile are lost, the fires stay planned, and the
// leader dispatches them again once NATS is back. Nothing is missed or run
// twice.
func TestScenario_NATSRestart(t *testing.T) {
	w := newWorld(t, []string{"s1"}, []string{"x1"})
	w.c.Apply(t, everySecondJob(w.runLog))
	w.waitLeader(t, "")
	time.Sleep(3 * time.Second)
	from := time.Now()
	w.c.RestartNATS(t, 4*time.Second)
	time.Sleep(12 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	r := w.check(t, "tick", from, to)
	t.Logf("NATS down for 4 s: %s", r)
	if len(r.Missed) != 0 || len(r.Duplicates) != 0 {
		t.Errorf("missed %v, duplicates %v; want none", r.Missed, r.Duplicates)
	}
}
