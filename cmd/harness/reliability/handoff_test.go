package reliability

import (
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/scheduler/store"
)

// TestScenario_ExecutorUpgradeHandsItsRunsOff upgrades an executor as an
// operator would: SIGUSR2 (the executor exits at once, leaving its runs
// to its node's supervisor), then the executor started again on the same
// node and output directory. The new one adopts the runs: a 4 s run goes
// on uninterrupted and is recorded succeeded on its first attempt, once;
// the every-second forbid job goes on without a duplicate or an overlap.
func TestScenario_ExecutorUpgradeHandsItsRunsOff(t *testing.T) {
	w := newWorld(t, []string{"s1"}, []string{"x1"})
	jobs, id := w.startLongBesideSlow(t)
	from := time.Now()
	x := w.executors["x1"]
	x.Signal(syscall.SIGUSR2)
	if !x.Wait(5 * time.Second) {
		t.Fatal("the executor did not exit within 5 s of SIGUSR2")
	}
	exited := time.Since(from)
	x.Restart()
	f := w.c.WaitFinal(t, id, 20*time.Second)
	t.Logf("the executor exited %s after SIGUSR2; long ended %s after it, %s", exited.Round(time.Millisecond),
		time.Since(from).Round(time.Millisecond), f.State)
	if f.State != store.FireSucceeded || f.Attempt != 1 {
		t.Errorf("long: %s (%s), attempt %d; want succeeded on its first attempt, handed off and adopted", f.State, f.Reason, f.Attempt)
	}
	time.Sleep(3 * time.Second)
	to := time.Now()
	var starts, ends int
	for _, r := range runlog.MustRead(t, w.runLog) {
		if r.Fire == id.String() {
			starts++
			if !r.End.IsZero() {
				ends++
			}
		}
	}
	if starts != 1 || ends != 1 {
		t.Errorf("long started %d times and ended %d; want once each: the run is not interrupted", starts, ends)
	}
	for _, r := range w.check(t, from, to, jobs["long"], jobs["slow"]) {
		t.Log(r)
	}
}

// TestScenario_ExecutorHandOffWithNoSuccessor hands an executor's runs
// off and starts no successor: the supervisor kills the run when the
// fence passes, before the leader counts it lost.
func TestScenario_ExecutorHandOffWithNoSuccessor(t *testing.T) {
	w := newWorld(t, []string{"s1"}, []string{"x1"})
	long, id, run := w.startMinuteRunOnX1(t)
	from := time.Now()
	w.executors["x1"].Signal(syscall.SIGUSR2)
	f := w.c.WaitFinal(t, id, 30*time.Second)
	t.Logf("handed off with no successor: fire %s %s later (%s)", f.State, time.Since(from).Round(time.Millisecond), f.Reason)
	if f.State != store.FireLost {
		t.Errorf("fire %s (%s); want lost: nobody adopted it", f.State, f.Reason)
	}
	if alive(run.PID) {
		t.Errorf("the run's shell %d still runs when its fire is counted lost: the fence should have killed it", run.PID)
	}
	w.check(t, from, from, long)
}
