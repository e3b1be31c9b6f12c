package supervisor_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/executor/supervisor"
)

func TestMain(m *testing.M) {
	supervisor.RunIfInvoked()
	os.Exit(m.Run())
}

// start starts a supervisor of sh -c script with the given fence, in a
// fresh run directory.
func start(t *testing.T, script string, fence time.Duration, tune ...func(*supervisor.Spec)) *supervisor.Run {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	spec := supervisor.Spec{
		Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"},
		Output: filepath.Join(t.TempDir(), "out.log"), TailBytes: 4096, Grace: time.Second, Fence: fence,
	}
	for _, f := range tune {
		f(&spec)
	}
	r, err := supervisor.Start(self, dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill("test over"); _ = r.Close() })
	return r
}

// ended waits for the supervisor to exit, beating it every 50 ms while
// beat says so, and returns its status.
func ended(t *testing.T, r *supervisor.Run, beat func() bool) supervisor.Status {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case <-r.Done():
			st, err := r.Status()
			if err != nil {
				log, _ := os.ReadFile(filepath.Join(r.Dir(), "supervisor.log"))
				t.Fatalf("the supervisor exited without a status: %v\nits log: %s", err, log)
			}
			return st
		case <-tick.C:
			if beat() {
				_ = r.Beat()
			}
		case <-deadline:
			t.Fatal("the supervisor did not exit within 20 s")
		}
	}
}

func always() bool { return true }

func TestSupervisor_RunsTheJobAndWritesHowItEnded(t *testing.T) {
	t.Parallel()
	r := start(t, "echo hello; echo to-stderr >&2; exit 3", 5*time.Second)
	st := ended(t, r, always)
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
	r := start(t, "sleep 60 & echo $! > "+pidFile+"; wait", 300*time.Millisecond)
	st := ended(t, r, func() bool { return false })
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
	r := start(t, "sleep 1; echo done", 300*time.Millisecond)
	if st := ended(t, r, always); st.Ending != supervisor.Exited || st.ExitCode != 0 || st.Output.Tail != "done\n" {
		t.Errorf("status %+v; want exited 0 after a second beaten", st)
	}
}

func TestSupervisor_KillAndTimeoutStopTheGroup(t *testing.T) {
	t.Parallel()
	r := start(t, "sleep 60", 5*time.Second)
	if err := r.Kill("killed by test"); err != nil {
		t.Fatal(err)
	}
	if st := ended(t, r, always); st.Ending != supervisor.Killed || st.Reason != "killed by test" || st.ExitCode != 143 || st.Escalated {
		t.Errorf("status %+v; want killed by test, by SIGTERM (143)", st)
	}
	stubborn := start(t, "trap '' TERM; sleep 60", 5*time.Second, func(s *supervisor.Spec) {
		s.Timeout, s.Grace = 200*time.Millisecond, 200*time.Millisecond
	})
	if st := ended(t, stubborn, always); st.Ending != supervisor.TimedOut || !st.Escalated || st.ExitCode != 137 {
		t.Errorf("status %+v; want timed out, SIGKILL after the grace period (137)", st)
	}
}

// The supervisor outlives its executor's connection: a new executor
// attaches to it, and the run goes on under its beats.
func TestSupervisor_OutlivesItsExecutorAndIsAdopted(t *testing.T) {
	t.Parallel()
	r := start(t, "sleep 1; echo adopted", time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := supervisor.Attach(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if st := ended(t, again, always); st.Ending != supervisor.Exited || st.Output.Tail != "adopted\n" {
		t.Errorf("status %+v; want the run ended by itself under the new connection's beats", st)
	}
	if _, err := supervisor.Attach(r.Dir()); !errors.Is(err, supervisor.ErrGone) {
		t.Errorf("attach after the end: %v; want ErrGone", err)
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

// A run directory deeper than a Unix socket's path may be works all the
// same.
func TestSupervisor_RunDirectoryOfAnyLength(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	r, err := supervisor.Start(self, dir, supervisor.Spec{
		Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 0.3; echo deep"},
		Output: filepath.Join(t.TempDir(), "out.log"), TailBytes: 4096, Grace: time.Second, Fence: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	again, err := supervisor.Attach(dir)
	if err != nil {
		t.Fatalf("attach to %s (%d bytes): %v", dir, len(dir), err)
	}
	if st := ended(t, again, always); st.Ending != supervisor.Exited || st.Output.Tail != "deep\n" {
		t.Errorf("status %+v; want exited, its output kept", st)
	}
}
