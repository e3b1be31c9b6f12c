package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

// syncBuffer is a bytes.Buffer that a running command (dev) may write
// while the test reads it; the dev tests share it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// devRun is one `aion dev` running in the test.
type devRun struct {
	stdout, stderr syncBuffer
	stop           context.CancelFunc
	done           chan int
	halted         sync.Once
}

// startDev runs `aion dev` with args until the test stops it, and waits
// until its API answers; it returns the run and the API's URL.
func startDev(t *testing.T, args ...string) (*devRun, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	d := &devRun{stop: cancel, done: make(chan int, 1)}
	go func() {
		d.done <- run(ctx, append([]string{"dev", "--listen", "127.0.0.1:0"}, args...), &d.stdout, &d.stderr)
	}()
	t.Cleanup(func() { d.halt(t) })
	api := regexp.MustCompile(`API at (http://\S+)`)
	var url string
	clustertest.WaitFor(t, 60*time.Second, "aion dev to serve its API", func() bool {
		if m := api.FindStringSubmatch(d.stdout.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return d, url
}

// halt stops dev, once, and waits until it has returned.
func (d *devRun) halt(t *testing.T) {
	t.Helper()
	d.halted.Do(func() {
		d.stop()
		select {
		case code := <-d.done:
			if code != 0 {
				t.Errorf("aion dev: exit %d\nstderr:\n%s", code, d.stderr.String())
			}
		case <-time.After(60 * time.Second):
			t.Error("aion dev did not stop")
		}
	})
}

// TestDev_RestartKeepsJobsAppliedByHand: `aion dev --jobs DIR` prunes only
// the jobs of DIR's apply set, so a job applied with `aion apply` while it
// ran is still there after a restart.
func TestDev_RestartKeepsJobsAppliedByHand(t *testing.T) {
	jobs, other, data := t.TempDir(), t.TempDir(), t.TempDir()
	writeJobs(t, jobs, map[string]string{"jobs.yaml": "jobs:\n  - name: a\n    schedule: manual\n    command: echo a\n  - name: b\n    schedule: manual\n    command: echo b\n"})
	writeJobs(t, other, map[string]string{"extra.yaml": "name: extra\nschedule: manual\ncommand: echo extra\n"})
	args := []string{"--jobs", jobs, "--data-dir", data, "--docker", "off"}

	first, url := startDev(t, args...)
	if code, _, stderr := runAion(t, "apply", "-f", filepath.Join(other, "extra.yaml"), "--server", url); code != 0 {
		t.Fatalf("apply by hand: exit %d\nstderr:\n%s", code, stderr)
	}
	first.halt(t)

	second, url := startDev(t, args...)
	if want := "applied " + jobs + ": 0 created, 0 updated, 2 unchanged, 0 deleted"; !strings.Contains(second.stdout.String(), want) {
		t.Errorf("restarted dev printed:\n%s\nwant %q", second.stdout.String(), want)
	}
	code, stdout, stderr := runAion(t, "jobs", "--server", url)
	if code != 0 || !strings.Contains(stdout, "extra") {
		t.Errorf("jobs after the restart: exit %d\n%s\nstderr:\n%s\nwant extra listed", code, stdout, stderr)
	}
}
