package reliability

import (
	"fmt"
	"net/url"
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
	hosts      map[string]*clustertest.Host // by process, in a hosted world
	hosted     bool                         // each process in a Host of its own
	outputs    string                       // the executors' output directories' parent
	runLog     string
	deaths     *runlog.Watcher // when runs that logged no end were seen gone
	grace      time.Duration   // the schedulers' misfire grace
}

func newWorld(t *testing.T, schedulers, executors []string) *world {
	clustertest.SkipShort(t, "fault scenario (aion processes for about 20 s)")
	return startWorld(t, clustertest.Start(t), false, schedulers, executors)
}

// newHostedWorld is newWorld with each process in a network namespace of
// its own (w.hosts, by process), etcd and NATS listening on a hub address
// every namespace reaches: a scenario cuts a process's links with its
// Host's Cut. It skips the test, with the reason, when namespaces cannot
// be made.
func newHostedWorld(t *testing.T, schedulers, executors []string) *world {
	clustertest.SkipShort(t, "fault scenario (aion processes in network namespaces for about 30 s)")
	if ok, why := clustertest.NetnsAvailable(); !ok {
		t.Skipf("network partition scenario: network namespaces not available: %s", why)
	}
	hub := clustertest.NewHub(t)
	return startWorld(t, clustertest.Start(t, clustertest.ListenOn(hub)), true, schedulers, executors)
}

// startWorld starts the processes of a world on cluster c, each in a Host
// of its own when hosted.
func startWorld(t *testing.T, c *clustertest.Cluster, hosted bool, schedulers, executors []string) *world {
	w := &world{
		c: c, bin: clustertest.BuildAion(t),
		schedulers: map[string]*clustertest.Process{}, executors: map[string]*clustertest.Process{},
		hosts: map[string]*clustertest.Host{}, hosted: hosted, outputs: t.TempDir(),
		runLog: filepath.Join(t.TempDir(), "runs.log"), grace: time.Minute, // the default of --misfire-grace
	}
	w.deaths = runlog.Watch(t, w.runLog, 50*time.Millisecond)
	for _, id := range schedulers {
		w.schedulers[id] = w.start(t, id, "scheduler", "--id", id, "--listen", "127.0.0.1:0", "--session-ttl", ttl.String())
	}
	for _, id := range executors {
		w.startExecutor(t, id)
	}
	return w
}

// startExecutor starts executor id (labelled node=id) in w.executors.
func (w *world) startExecutor(t *testing.T, id string) {
	w.executors[id] = w.start(t, id, "executor", "--node-id", id, "--labels", "node="+id,
		"--output-dir", filepath.Join(w.outputs, id), "--grace", "1s")
}

// start runs `aion args...` connected to w's etcd and NATS, in a Host of
// its own in a hosted world.
func (w *world) start(t *testing.T, id string, args ...string) *clustertest.Process {
	args = append(args, "--etcd", w.c.EtcdURL, "--nats", w.c.NATSURL)
	if !w.hosted {
		return clustertest.StartProcess(t, w.bin, id, args...)
	}
	w.hosts[id] = clustertest.NewHost(t, id)
	return clustertest.StartProcessIn(t, w.hosts[id], w.bin, id, args...)
}

func (w *world) waitLeader(t *testing.T, not string) string {
	var leader string
	clustertest.WaitFor(t, 4*ttl, "a leader", func() bool {
		leader = w.c.Leader(t)
		return leader != "" && leader != not
	})
	return leader
}

// apply applies the jobs of yamlText and returns what the checker needs
// to know of each, by name.
func (w *world) apply(t *testing.T, yamlText string) map[string]Spec {
	t.Helper()
	w.c.Apply(t, yamlText)
	return specs(t, yamlText, w.grace)
}

// specs is the checker's Spec of each job of yamlText, by name.
func specs(t *testing.T, yamlText string, grace time.Duration) map[string]Spec {
	t.Helper()
	jobs, errs := jobspec.Parse("test.yaml", []byte(yamlText))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	out := make(map[string]Spec, len(jobs))
	for _, j := range jobs {
		spec, err := SpecOf(j, grace)
		if err != nil {
			t.Fatal(err)
		}
		out[j.Name] = spec
	}
	return out
}

// check runs the checker for each job over the nominal times in (from,
// to], a run without an end line counting as running until now, the end
// of the test, and fails the test on every violation: of the protocol in
// etcd's history, and of each job's policies (duplicates, wrongful skips,
// overlaps of a job that forbids them). Missed times are left to the
// scenario.
func (w *world) check(t *testing.T, from, to time.Time, specs ...Spec) []Report {
	t.Helper()
	checkHistory(t, w.c)
	return checkRuns(t, w.c, w.runLog, w.deaths, from, to, specs...)
}

// checkHistory replays etcd's history and fails the test on each protocol
// violation it shows.
func checkHistory(t *testing.T, c *clustertest.Cluster) HistoryReport {
	t.Helper()
	events, err := ReadHistory(t.Context(), c.Etcd, c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	h := CheckHistory(c.Keys, events)
	for _, v := range h.Violations() {
		t.Error("history: " + v)
	}
	t.Logf("history: %d changes to etcd checked: %d high-water regressions, %d fire writes with a wrong term, %d bad claims, %d bad results",
		h.Events, len(h.HighWaterBackwards), len(h.WrongTerms), len(h.BadClaims), len(h.BadResults))
	return h
}

// checkRuns checks each job's runs (the run log at logPath) and fire
// records against its schedule and policies, and fails the test on each
// violation.
func checkRuns(t *testing.T, c *clustertest.Cluster, logPath string, deaths *runlog.Watcher, from, to time.Time, specs ...Spec) []Report {
	t.Helper()
	end := time.Now()
	runs := runlog.MustRead(t, logPath)
	if deaths != nil {
		// A run killed before it logged its end ended when its process
		// was seen gone; one never seen gone runs until now.
		runs = deaths.EndAtDeath(runs)
	}
	var reports []Report
	tot := newTotals()
	for _, spec := range specs {
		fires := c.Fires(t, spec.Job)
		if len(spec.Parents) > 0 {
			fires = c.Fires(t, "") // a dependent job is judged by its parents' fires too
		}
		r := Check(spec, from.Truncate(time.Second), to.Truncate(time.Second), end, fires, runs)
		for _, v := range r.Violations() {
			t.Errorf("%s: %s", spec.Job, v)
		}
		reports = append(reports, r)
		tot.add(r, len(r.Missed))
		for _, f := range fires {
			if f.ID.Job == spec.Job && (f.Trigger != store.TriggerSchedule || !f.Nominal.Before(from.Truncate(time.Second))) {
				tot.record(f)
			}
		}
	}
	tot.log(t, "counts (the checker's, for docs/reliability.md)")
	return reports
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
	tick := w.apply(t, everySecondJob(w.runLog))["tick"]
	leader := w.waitLeader(t, "")
	time.Sleep(4 * time.Second)
	from := time.Now()
	killedAt := time.Now()
	w.schedulers[leader].Kill()
	next := w.waitLeader(t, leader)
	time.Sleep(8 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	r := w.check(t, from, to, tick)[0]
	var takeover time.Duration
	for _, f := range w.c.Fires(t, "tick") {
		if f.PlannedBy == next && f.PlannedAt.After(killedAt) && (takeover == 0 || f.PlannedAt.Sub(killedAt) < takeover) {
			takeover = f.PlannedAt.Sub(killedAt)
		}
	}
	t.Logf("leader %s SIGKILLed, %s took over; first fire planned by it %s after the kill; %s", leader, next, takeover.Round(time.Millisecond), r)
	if len(r.Missed) != 0 {
		t.Errorf("missed %v; want none", r.Missed)
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
	tick := w.apply(t, everySecondJob(w.runLog))["tick"]
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
	r := w.check(t, from, to, tick)[0]
	t.Logf("leader %s stopped for %s, %s led meanwhile; %s", leader, 3*ttl, next, r)
	for _, f := range w.c.Fires(t, "tick") {
		if f.PlannedBy == leader && f.PlannedAt.After(stoppedAt) {
			t.Errorf("%s was planned by the paused ex-leader %s at %s", f.ID, leader, f.PlannedAt)
		}
	}
	if len(r.Missed) != 0 {
		t.Errorf("missed %v; want none", r.Missed)
	}
}

// TestScenario_ExecutorSIGKILLMidRun kills the executor running a long job:
// the fire becomes lost within TTL + grace and is not re-run (the job does
// not allow it); the executor, restarted, kills the process group its dead
// predecessor left behind.
func TestScenario_ExecutorSIGKILLMidRun(t *testing.T) {
	w := newWorld(t, []string{"s1"}, []string{"x1", "x2"})
	long, id, run := w.startMinuteRunOnX1(t)
	killedAt := time.Now()
	w.executors["x1"].Kill()
	var lost store.Fire
	// The lease (5 s), then the fence (3 s) and a second more.
	clustertest.WaitFor(t, 20*time.Second, "the fire to be lost", func() bool {
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
	if alive(run.PID) {
		t.Errorf("the run's shell %d still runs when its fire is counted lost: its supervisor's fence should have killed it", run.PID)
	}
	w.executors["x1"].Restart()
	w.c.WaitRegistered(t, "x1")
	time.Sleep(2 * time.Second)
	if runs, _ := runlog.Read(w.runLog); len(runs) != 1 {
		t.Errorf("%d runs started, want 1: a lost run is not retried unless retries.on_lost", len(runs))
	}
	w.check(t, killedAt, killedAt, long) // a manual job: its runs and the history only
}

// TestScenario_ExecutorSIGKILLAndRestartWithinTheFence kills the executor
// running a job and starts it again at once: it adopts the run from its
// supervisor, which outlived it, and the run ends as it would have, once,
// recorded succeeded; the every-second forbid job it also runs goes on
// without a duplicate or an overlap.
func TestScenario_ExecutorSIGKILLAndRestartWithinTheFence(t *testing.T) {
	w := newWorld(t, []string{"s1"}, []string{"x1"})
	jobs, id := w.startLongBesideSlow(t)
	from := time.Now()
	w.executors["x1"].Kill()
	w.executors["x1"].Restart()
	f := w.c.WaitFinal(t, id, 20*time.Second)
	if f.State != store.FireSucceeded || f.Attempt != 1 {
		t.Errorf("long: %s (%s), attempt %d; want succeeded on its first attempt, adopted", f.State, f.Reason, f.Attempt)
	}
	time.Sleep(3 * time.Second)
	to := time.Now()
	starts := 0
	for _, r := range runlog.MustRead(t, w.runLog) {
		if r.Fire == id.String() {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("long started %d times, want once", starts)
	}
	for _, r := range w.check(t, from, to, jobs["long"], jobs["slow"]) {
		t.Log(r)
	}
}

// TestScenario_NATSRestart stops NATS for 4 s while an every-second job
// runs: dispatches sent meanwhile are lost, the fires stay planned, and the
// leader dispatches them again once NATS is back. Nothing is missed or run
// twice.
func TestScenario_NATSRestart(t *testing.T) {
	w := newWorld(t, []string{"s1"}, []string{"x1"})
	tick := w.apply(t, everySecondJob(w.runLog))["tick"]
	w.waitLeader(t, "")
	time.Sleep(3 * time.Second)
	from := time.Now()
	w.c.RestartNATS(t, 4*time.Second)
	time.Sleep(12 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	r := w.check(t, from, to, tick)[0]
	t.Logf("NATS down for 4 s: %s", r)
	if len(r.Missed) != 0 {
		t.Errorf("missed %v; want none", r.Missed)
	}
}

// TestScenario_ExecutorSIGSTOPLongerThanItsLease pauses the executor
// running an every-second forbid job (3 s runs) and a job retried on lost
// runs (8 s runs) for 4 × TTL, then lets it go on. Its lease expires while
// it is stopped, so the leader marks its runs lost; but their processes,
// in their own process groups, are not stopped. A fire planned (or an
// attempt retried) meanwhile on the other executor must not run beside
// them: no duplicate, no overlap of either exclusive job. Each run's
// supervisor kills it once its executor has been silent for the fence,
// before the leader may count it lost (which it does only after the
// fence has passed again since it saw the lease gone). Without the
// supervisors, the retry of the lost attempt started on the other
// executor while the lost attempt still ran.
func TestScenario_ExecutorSIGSTOPLongerThanItsLease(t *testing.T) {
	w := newWorld(t, []string{"s1", "s2"}, []string{"x1", "x2"})
	jobs := w.apply(t, slowAndRetriedJobs(w.runLog))
	w.waitLeader(t, "")
	w.c.WaitRegistered(t, "x1")
	w.c.WaitRegistered(t, "x2")
	from := time.Now()
	var running store.Fire
	clustertest.WaitFor(t, 15*time.Second, "a run of the retried job", func() bool {
		for _, f := range w.c.Fires(t, "retried") {
			if f.State == store.FireRunning {
				running = f
				return true
			}
		}
		return false
	})
	node := running.Node
	stoppedAt := time.Now()
	w.executors[node].Signal(syscall.SIGSTOP)
	time.Sleep(4 * ttl)
	w.executors[node].Signal(syscall.SIGCONT)
	t.Logf("executor %s (running %s attempt %d) stopped for %s", node, running.ID, running.Attempt, time.Since(stoppedAt).Round(time.Millisecond))
	time.Sleep(6 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	reports := w.check(t, from, to, jobs["slow"], jobs["retried"])
	for i, name := range []string{"slow", "retried"} {
		t.Logf("%s: %s", name, reports[i])
	}
	for _, f := range w.c.Fires(t, "") {
		for _, a := range append(f.Attempts, store.Attempt{Attempt: f.Attempt, Node: f.Node, State: f.State, Reason: f.Reason}) {
			if a.State == store.FireLost {
				t.Logf("%s attempt %d on %s lost: %s", f.ID, a.Attempt, a.Node, a.Reason)
			}
		}
	}
}

// TestScenario_ExecutorCutOffFromEtcdNotNATS cuts the link between the
// executor running a job retried on lost runs and etcd for 4 × TTL, while
// its NATS link stays up: it cannot renew its lease, so it stops beating
// its supervisor (whose fence kills the run) and then kills its runs
// itself; the leader counts the run lost only after the fence, and the
// retry on the other executor starts once the first attempt is gone. No
// duplicate, no overlap of either forbid job.
func TestScenario_ExecutorCutOffFromEtcdNotNATS(t *testing.T) {
	w := newWorld(t, []string{"s1", "s2"}, nil)
	etcdURL, err := url.Parse(w.c.EtcdURL)
	if err != nil {
		t.Fatal(err)
	}
	link := clustertest.StartProxy(t, etcdURL.Host)
	w.executors["x1"] = clustertest.StartProcess(t, w.bin, "x1", "executor", "--node-id", "x1", "--labels", "node=x1",
		"--output-dir", filepath.Join(t.TempDir(), "x1"), "--grace", "1s", "--etcd", "http://"+link.Addr(), "--nats", w.c.NATSURL)
	jobs := w.apply(t, slowAndRetriedJobs(w.runLog))
	w.waitLeader(t, "")
	w.c.WaitRegistered(t, "x1")
	from := time.Now()
	var running store.Fire
	clustertest.WaitFor(t, 15*time.Second, "a run of the retried job on x1", func() bool {
		for _, f := range w.c.Fires(t, "retried") {
			if f.State == store.FireRunning && f.Node == "x1" {
				running = f
				return true
			}
		}
		return false
	})
	// The other executor, for the retry to go to.
	w.executors["x2"] = clustertest.StartProcess(t, w.bin, "x2", "executor", "--node-id", "x2", "--labels", "node=x2",
		"--output-dir", filepath.Join(t.TempDir(), "x2"), "--grace", "1s", "--etcd", w.c.EtcdURL, "--nats", w.c.NATSURL)
	w.c.WaitRegistered(t, "x2")
	cutAt := time.Now()
	link.Partition()
	time.Sleep(4 * ttl)
	link.Heal()
	t.Logf("x1 (running %s attempt %d) cut off from etcd for %s", running.ID, running.Attempt, time.Since(cutAt).Round(time.Millisecond))
	time.Sleep(6 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	reports := w.check(t, from, to, jobs["slow"], jobs["retried"])
	for i, name := range []string{"slow", "retried"} {
		t.Logf("%s: %s", name, reports[i])
	}
	if f := w.c.MustFire(t, running.ID); f.Attempt == running.Attempt && !f.State.Final() {
		t.Errorf("%s: still %s on its first attempt after the cut; want it lost (and retried)", f.ID, f.State)
	}
}

// TestScenario_LeaderChangeWhileAKillIsInFlight asks to kill a running run
// and SIGKILLs the leader at once: the kill is carried out either way (the
// old leader recorded it and its hint or the new leader's reaches the
// executor, or the new leader records it from the request), and the run
// ends cancelled, once, with its process gone.
func TestScenario_LeaderChangeWhileAKillIsInFlight(t *testing.T) {
	w := newWorld(t, []string{"s1", "s2"}, []string{"x1"})
	long := w.apply(t, fmt.Sprintf(`
name: long
schedule: manual
command: %q
`, runlog.Command(w.runLog, "sleep 60")))["long"]
	leader := w.waitLeader(t, "")
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
	from := time.Now()
	if err := store.RequestKill(t.Context(), w.c.Etcd, w.c.Keys, id, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	w.schedulers[leader].Kill()
	next := w.waitLeader(t, leader)
	f := w.c.WaitFinal(t, id, 20*time.Second)
	t.Logf("killed leader %s; %s led next; the run ended %s after the kill request: %s (%s)", leader, next,
		time.Since(from).Round(time.Millisecond), f.State, f.Reason)
	if f.State != store.FireCancelled || f.Attempt != 1 {
		t.Errorf("run: %s (%s), attempt %d; want cancelled on its first attempt", f.State, f.Reason, f.Attempt)
	}
	clustertest.WaitFor(t, 10*time.Second, "the run's shell to be gone", func() bool { return !alive(run.PID) })
	if runs := runlog.MustRead(t, w.runLog); len(runs) != 1 {
		t.Errorf("%d runs started, want 1", len(runs))
	}
	w.check(t, from, from, long)
}

// TestScenario_SchedulersWhoseClocksDisagree runs two schedulers whose
// clocks are 3 s apart (one ahead, one behind, by a hidden fault-injection
// flag) and SIGKILLs the leader: an every-second job runs each nominal
// time once. The one ahead plans times before they are due by the
// machine's clock; after the failover the one behind finds them planned
// (fire IDs are the nominal times, created only if absent) and goes on
// from its own high-water mark, which never moves back.
func TestScenario_SchedulersWhoseClocksDisagree(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (aion processes for about 20 s)")
	w := newWorld(t, nil, []string{"x1"})
	common := []string{"--etcd", w.c.EtcdURL, "--nats", w.c.NATSURL, "--listen", "127.0.0.1:0", "--session-ttl", ttl.String()}
	w.schedulers["ahead"] = clustertest.StartProcess(t, w.bin, "ahead", append([]string{"scheduler", "--id", "ahead", "--clock-offset", "1500ms"}, common...)...)
	leader := w.waitLeader(t, "")
	w.schedulers["behind"] = clustertest.StartProcess(t, w.bin, "behind", append([]string{"scheduler", "--id", "behind", "--clock-offset", "-1500ms"}, common...)...)
	tick := w.apply(t, everySecondJob(w.runLog))["tick"]
	w.c.WaitRegistered(t, "x1")
	time.Sleep(4 * time.Second)
	from := time.Now()
	w.schedulers[leader].Kill()
	next := w.waitLeader(t, leader)
	time.Sleep(8 * time.Second)
	to := time.Now().Add(-3 * time.Second)
	r := w.check(t, from, to, tick)[0]
	t.Logf("%s led, then %s (clocks 3 s apart): %s", leader, next, r)
	if len(r.Missed) != 0 {
		t.Errorf("missed %v; want none (times within the misfire grace run late)", r.Missed)
	}
}

// slowAndRetriedJobs are the jobs of the executor-fault scenarios, logging
// to runLog: slow, every second, forbid, 3 s runs; retried, the same with
// 8 s runs and retries of lost runs.
func slowAndRetriedJobs(runLog string) string {
	return fmt.Sprintf(`
jobs:
  - name: slow
    schedule: "* * * * * *"
    cron_seconds: true
    command: %q
  - name: retried
    schedule: "* * * * * *"
    cron_seconds: true
    command: %q
    retries:
      count: 3
      on_lost: true
      backoff: {initial: 1s}
`, runlog.Command(runLog, "sleep 3"), runlog.Command(runLog, "sleep 8"))
}

// startLongBesideSlow applies a manual 4 s job, long, and an every-second
// forbid job of 2 s runs, slow, starts a run of long on x1, waits for it to
// be running, and returns the jobs' specs and the run's fire.
func (w *world) startLongBesideSlow(t *testing.T) (map[string]Spec, store.FireID) {
	t.Helper()
	jobs := w.apply(t, fmt.Sprintf(`
jobs:
  - name: long
    schedule: manual
    command: %q
  - name: slow
    schedule: "* * * * * *"
    cron_seconds: true
    command: %q
`, runlog.Command(w.runLog, "sleep 4"), runlog.Command(w.runLog, "sleep 2")))
	w.waitLeader(t, "")
	w.c.WaitRegistered(t, "x1")
	id := w.c.RequestRun(t, "long", store.Request{By: "test"})
	w.c.WaitFire(t, id, 10*time.Second, "the run to start", func(f store.Fire) bool { return f.State == store.FireRunning })
	return jobs, id
}

// startMinuteRunOnX1 applies a manual job of a 60 s run pinned to x1,
// long, starts a run of it, waits for its command to start, and returns
// the job's spec, the run's fire and the run as its command logged it.
func (w *world) startMinuteRunOnX1(t *testing.T) (Spec, store.FireID, runlog.Run) {
	t.Helper()
	long := w.apply(t, fmt.Sprintf(`
name: long
schedule: manual
command: %q
constraints: ["node=x1"]
`, runlog.Command(w.runLog, "sleep 60")))["long"]
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
	return long, id, run
}
