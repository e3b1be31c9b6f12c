package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

func TestSweepOutput_DeletesOldFilesButNeverARunningFires(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OutputDir = t.TempDir()
	cfg.OutputRetention = 24 * time.Hour
	x := New(cfg, nil, nil, zap.NewNop())
	now := time.Now()
	old, running := store.FireID{Job: "a", Suffix: "2026-11-01T00:00:00Z"}, store.FireID{Job: "a", Suffix: "2026-11-02T00:00:00Z"}
	recent := store.FireID{Job: "b", Suffix: "manual-2026-11-25T00:00:00Z"}
	for _, f := range []struct {
		id  store.FireID
		age time.Duration
	}{{old, 48 * time.Hour}, {running, 48 * time.Hour}, {recent, time.Hour}} {
		p := x.outputPath(f.id, 1)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("out\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-f.age), now.Add(-f.age)); err != nil {
			t.Fatal(err)
		}
	}
	x.running[running] = activeRun{attempt: 1, cancel: func(error) {}} // a run still going on this node
	x.sweepOutput(now)
	for id, wantKept := range map[store.FireID]bool{old: false, running: true, recent: true} {
		_, err := os.Stat(x.outputPath(id, 1))
		if kept := err == nil; kept != wantKept {
			t.Errorf("%s: kept = %v, want %v", id, kept, wantKept)
		}
	}
}

// TestKillOrphans_KillsOnlyThisExecutorsRuns starts process groups as a
// dead executor would have left them — a run of this node and output
// directory — and as others would have: a run of another node, a run of
// the same node ID but another output directory (an executor of another
// cluster on this host), a process with no run. The sweep kills only the
// first.
func TestKillOrphans_KillsOnlyThisExecutorsRuns(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeID = "sweeper"
	cfg.OutputDir = t.TempDir()
	x := New(cfg, nil, nil, zap.NewNop())
	start := func(env ...string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", "sleep 30 & wait")
		cmd.Env = append(os.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
		return cmd
	}
	out := "AION_OUTPUT=" + filepath.Join(cfg.OutputDir, "job", "2026-12-01T00:00:00Z.1.log")
	ours := start("AION_NODE=sweeper", out)
	others := map[string]*exec.Cmd{
		"another node's run":             start("AION_NODE=other", out),
		"another output directory's run": start("AION_NODE=sweeper", "AION_OUTPUT="+filepath.Join(t.TempDir(), "job", "x.1.log")),
		"a process with no run":          start("AION_NODE=sweeper"),
	}
	time.Sleep(200 * time.Millisecond) // the shells have started their sleeps
	x.killOrphans(nil)
	done := make(chan error, 1)
	go func() { done <- ours.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("this executor's orphaned run is still alive")
	}
	for name, cmd := range others {
		if err := syscall.Kill(-cmd.Process.Pid, 0); err != nil {
			t.Errorf("%s was killed: %v", name, err)
		}
	}
}
