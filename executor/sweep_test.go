package executor

import (
	"os"
	"path/filepath"
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
	x.running[running] = func(error) {} // a run still going on this node
	x.sweepOutput(now)
	for id, wantKept := range map[store.FireID]bool{old: false, running: true, recent: true} {
		_, err := os.Stat(x.outputPath(id, 1))
		if kept := err == nil; kept != wantKept {
			t.Errorf("%s: kept = %v, want %v", id, kept, wantKept)
		}
	}
}
