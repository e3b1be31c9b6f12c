package supervisor_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/executor/supervisor"
)

func TestMain(m *testing.M) {
	supervisor.RunIfInvoked()
	os.Exit(m.Run())
}

// open connects to a fresh supervisor of a new runs directory, and
// beats it every 50 ms while beating says so.
func open(t *testing.T, fence time.Duration) (*supervisor.Supervisor, string, *atomic.Bool) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "runs")
	s, attached, err := supervisor.Open(self, dir, fence)
	if err != nil || attached {
		t.Fatalf("open: attached %v, %v; want a new supervisor", attached, err)
	}
	beating := &atomic.Bool{}
	beating.Store(true)
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if beating.Load() {
					_ = s.Beat()
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); _ = s.Close() })
	return s, dir, beating
}

// start runs sh -c script under s as run name.
func start(t *testing.T, s *supervisor.Supervisor, _, name, script string, fence time.Duration, tune ...func(*supervisor.Spec)) *supervisor.Run {
	t.Helper()
	spec := supervisor.Spec{
		Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"},
		Output: filepath.Join(t.TempDir(), "out.log"), TailBytes: 4096, Grace: time.Second, Fence: fence,
	}
	for _, f := range tune {
		f(&spec)
	}
	r, err := s.Start(name, spec, []byte(`{"name":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill("test over") })
	return r
}

// ended waits for the run to end and returns its status.
func ended(t *testing.T, r *supervisor.Run) supervisor.Status {
	t.Helper()
	select {
	case <-r.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end within 20 s")
	}
	st, err := r.Status()
	if err != nil {
		t.Fatalf("no status for %s: %v", r.ID(), err)
	}
	return st
}

func TestSupervisor_RunsTheJobAndWritesHowItEnded(t *testing.T) {
	t.Parallel()
	s, dir, _ := open(t, 5*time.Second)
	r := start(t, s, dir, "a", "echo hello; echo to-stderr >&2; exit 3", 5*time.Second)
	st := ended(t, r)
	if st.Ending != supervisor.Exited || st.ExitCode != 3 || st.PID == 0 || st.StartedAt.IsZero() {
		t.Errorf("status %+v; want exited with code 3, a PID and a start time", st)
	}
	if st.Output.Tail != "hello\nto-stderr\n" || st.Output.Path == "" {
		t.Errorf("output %+v; want the tail and the file", st.Output)
	}
}

// Without beats, the run is killed once the fence passes, whatever it is
// doing, its children included.
func TestSupervisor_FenceKillsARunWhoseExecutorIsSilent(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	s, dir, beating := open(t, 300*time.Millisecond)
	beating.Store(false)
	r := start(t, s, dir, "a", "sleep 60 & echo $! > "+pidFile+"; wait", 300*time.Millisecond)
	st := ended(t, r)
	if st.Ending != supervisor.Fenced || st.ExitCode != 137 || !strings.Contains(st.Reason, "300ms") {
		t.Errorf("status %+v; want fenced, killed by SIGKILL (137), the fence named", st)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(string(data)), &pid); err != nil {
		t.Fatal(err)
	}
	// Killed, it is reaped by init (or whoever adopted it) soon after.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) || zombie(pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run's child %d is still there 5 s after the fence (kill 0: %v)", pid, err)
		}
	}
}

// Beats keep a run alive past its fence, as long as they come.
func TestSupervisor_BeatsKeepTheRunAlive(t *testing.T) {
	t.Parallel()
	s, dir, _ := open(t, 300*time.Millisecond)
	r := start(t, s, dir, "a", "sleep 1; echo done", 300*time.Millisecond)
	if st := ended(t, r); st.Ending != supervisor.Exited || st.ExitCode != 0 || st.Output.Tail != "done\n" {
		t.Errorf("status %+v; want exited 0 after a second beaten", st)
	}
}

func TestSupervisor_KillAndTimeoutStopTheGroup(t *testing.T) {
	t.Parallel()
	s, dir, _ := open(t, 5*time.Second)
	r := start(t, s, dir, "a", "sleep 60", 5*time.Second)
	if err := r.Kill("killed by test"); err != nil {
		t.Fatal(err)
	}
	if st := ended(t, r); st.Ending != supervisor.Killed || st.Reason != "killed by test" || st.ExitCode != 143 || st.Escalated {
		t.Errorf("status %+v; want killed by test, by SIGTERM (143)", st)
	}
	stubborn := start(t, s, dir, "b", "trap '' TERM; sleep 60", 5*time.Second, func(s *supervisor.Spec) {
		s.Timeout, s.Grace = 200*time.Millisecond, 200*time.Millisecond
	})
	if st := ended(t, stubborn); st.Ending != supervisor.TimedOut || !st.Escalated || st.ExitCode != 137 {
		t.Errorf("status %+v; want timed out, SIGKILL after the grace period (137)", st)
	}
}

// The supervisor outlives its executor: a new executor attaches to it and
// adopts the run, which goes on under its beats, and one that ended
// meanwhile, whose status is in its file. Once it has no run and no
// beat, the supervisor exits.
func TestSupervisor_OutlivesItsExecutorAndIsAdopted(t *testing.T) {
	t.Parallel()
	self, _ := os.Executable()
	first, dir, beating := open(t, time.Second)
	start(t, first, dir, "long", "sleep 1.5; echo adopted", time.Second)
	short := start(t, first, dir, "short", "echo quick", time.Second)
	<-short.Done()
	beating.Store(false)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second, attached, err := supervisor.Open(self, dir, time.Second)
	if err != nil || !attached {
		t.Fatalf("open again: attached %v, %v; want the running supervisor", attached, err)
	}
	defer second.Close()
	beatSecond := &atomic.Bool{}
	beatSecond.Store(true)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				if beatSecond.Load() {
					_ = second.Beat()
				}
			}
		}
	}()
	runs, err := second.Runs()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]supervisor.RunInfo{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	if len(runs) != 2 || byID["long"].Status != nil || byID["short"].Status == nil || string(byID["long"].Meta) != `{"name":"long"}` {
		t.Fatalf("runs listed: %+v; want long going and short ended, with their meta", runs)
	}
	if st := byID["short"].Status; st.Ending != supervisor.Exited || st.Output.Tail != "quick\n" {
		t.Errorf("short: status %+v; want the status it ended with", st)
	}
	if err := second.Ack("short"); err != nil {
		t.Fatal(err)
	}
	adopted, err := second.Adopt("long")
	if err != nil {
		t.Fatal(err)
	}
	if st := ended(t, adopted); st.Ending != supervisor.Exited || st.Output.Tail != "adopted\n" {
		t.Errorf("long: status %+v; want it ended by itself under the new executor's beats", st)
	}
	beatSecond.Store(false)
	// With no run and no beat for its fence, the supervisor exits.
	waitFor(t, 10*time.Second, func() bool {
		conn, err := net.Dial("unix", filepath.Join(dir, "ctl"))
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s", d)
		}
	}
}

func TestSupervisor_ProgramThatIsNotOneIsRefused(t *testing.T) {
	if err := supervisor.Check("/bin/true"); err == nil {
		t.Error("Check(/bin/true): nil; want an error")
	}
	self, _ := os.Executable()
	if err := supervisor.Check(self); err != nil {
		t.Errorf("Check(the test binary): %v", err)
	}
}

// zombie reports whether process pid has exited and waits to be reaped.
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(stat), ") ")
	return ok && strings.HasPrefix(rest, "Z")
}

// A runs directory deeper than a Unix socket's path may be works all the
// same.
func TestSupervisor_RunsDirectoryOfAnyLength(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	s, _, err := supervisor.Open(self, dir, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := start(t, s, dir, "a", "echo deep", 5*time.Second)
	if st := ended(t, r); st.Ending != supervisor.Exited || st.Output.Tail != "deep\n" {
		t.Errorf("status %+v; want exited, its output kept", st)
	}
}

// A run can be handed to the supervisor ahead of its time: its process
// starts at StartAt, not before.
func TestSupervisor_StartsARunAtItsStartAt(t *testing.T) {
	t.Parallel()
	s, dir, _ := open(t, 5*time.Second)
	at := time.Now().Add(400 * time.Millisecond)
	r := start(t, s, dir, "later", "echo on time", 5*time.Second, func(spec *supervisor.Spec) { spec.StartAt = at })
	st := ended(t, r)
	if st.Ending != supervisor.Exited || st.StartedAt.Before(at) || st.Output.Tail != "on time\n" {
		t.Errorf("status %+v; want it started at %s or after", st, at.Format(time.RFC3339Nano))
	}
}

// When the supervisor dies, its runs die with it (their processes get
// SIGKILL when their parent goes), and the executor hears of it: the run
// ends with no status.
func TestSupervisor_RunsDieWithTheirSupervisor(t *testing.T) {
	t.Parallel()
	s, dir, _ := open(t, 5*time.Second)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := start(t, s, dir, "a", "echo $$ > "+pidFile+"; exec sleep 60", 5*time.Second)
	var pid int
	waitFor(t, 10*time.Second, func() bool {
		data, err := os.ReadFile(pidFile)
		_, serr := fmt.Sscan(strings.TrimSpace(string(data)), &pid)
		return err == nil && serr == nil && pid > 0
	})
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	var state string
	var parent int
	if _, err := fmt.Sscan(rest, &state, &parent); err != nil {
		t.Fatal(err)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", parent)); !strings.HasPrefix(string(cmdline), supervisor.ProcessName+"\x00") {
		t.Fatalf("the run's parent %d is %q, not a supervisor", parent, cmdline)
	}
	if err := syscall.Kill(parent, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the supervisor %d: %v", parent, err)
	}
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run is not done 10 s after its supervisor died")
	}
	if st, err := r.Status(); !errors.Is(err, supervisor.ErrGone) {
		t.Errorf("status %+v, %v; want ErrGone", st, err)
	}
	waitFor(t, 5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil || zombie(pid) })
}
