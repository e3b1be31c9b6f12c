package executor_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/store"
)

// runOnce applies a manual job with the given command, runs it on executor
// "a" and returns its final record.
func runOnce(t *testing.T, c *clustertest.Cluster, name, command string) store.Fire {
	t.Helper()
	c.Apply(t, "name: "+name+"\nschedule: manual\ncommand: "+strconv.Quote(command)+"\n")
	return c.WaitFinal(t, c.StartFire(t, name, "a", nil), 10*time.Second)
}

// TestExecutor_OutputFileOnlyWhenTheRunWritesOutput: a silent run leaves no
// output file (creating one per run cost a fifth of the executor's CPU at
// 1,000 runs a second); a run with output keeps all of it, however much,
// and its tail; a run that writes to $AION_OUTPUT itself keeps that; a
// process that left the run's group holding the output does not hold up
// the result.
func TestExecutor_OutputFileOnlyWhenTheRunWritesOutput(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	startExecutor(t, c, "a")
	dir := t.TempDir()

	t.Run("silent", func(t *testing.T) {
		side := filepath.Join(dir, "silent-path")
		f := runOnce(t, c, "silent", `echo "$AION_OUTPUT" > `+side)
		if f.State != store.FireSucceeded || f.OutputPath != "" || f.OutputTail != "" {
			t.Errorf("silent run: state %s, output path %q, tail %q; want succeeded with neither", f.State, f.OutputPath, f.OutputTail)
		}
		path, err := os.ReadFile(side)
		if err != nil || len(strings.TrimSpace(string(path))) == 0 {
			t.Fatalf("the run did not say its AION_OUTPUT: %q, %v", path, err)
		}
		if _, err := os.Stat(strings.TrimSpace(string(path))); !os.IsNotExist(err) {
			t.Errorf("silent run: output file %s exists (stat: %v)", strings.TrimSpace(string(path)), err)
		}
	})

	t.Run("large", func(t *testing.T) {
		// 300,000 bytes: more than a pipe holds, more than the 4 KiB tail.
		f := runOnce(t, c, "large", `head -c 300000 /dev/zero | tr '\0' x; echo; echo END; echo err >&2`)
		full, err := os.ReadFile(f.OutputPath)
		if err != nil {
			t.Fatalf("output file %q: %v", f.OutputPath, err)
		}
		want := strings.Repeat("x", 300000) + "\nEND\nerr\n"
		if string(full) != want {
			t.Errorf("output file holds %d bytes ending %q, want %d ending %q", len(full), tailOf(string(full), 20), len(want), tailOf(want, 20))
		}
		if f.OutputTail != tailOf(want, 4<<10) {
			t.Errorf("tail: %d bytes ending %q, want the last 4096 of the output", len(f.OutputTail), tailOf(f.OutputTail, 20))
		}
	})

	t.Run("direct", func(t *testing.T) {
		f := runOnce(t, c, "direct", `echo written-by-the-job >> "$AION_OUTPUT"`)
		if f.OutputTail != "written-by-the-job\n" || f.OutputPath == "" {
			t.Errorf("run writing to $AION_OUTPUT: tail %q, path %q", f.OutputTail, f.OutputPath)
		}
	})

	t.Run("escaped", func(t *testing.T) {
		pidFile := filepath.Join(dir, "escaped.pid")
		t.Cleanup(func() {
			if data, err := os.ReadFile(pidFile); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
		// The background process makes its own session (so the end of the
		// run does not kill it) and keeps stdout open for a minute.
		f := runOnce(t, c, "escaped", `setsid sh -c 'echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 60' &
while [ ! -s `+pidFile+` ]; do sleep 0.01; done; echo bye`)
		// The scenario holds: the run ended while its escaped process,
		// still alive, held the output pipe.
		pid, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := os.Readlink("/proc/" + strings.TrimSpace(string(pid)) + "/fd/1"); err != nil || !strings.HasPrefix(out, "pipe:") {
			t.Fatalf("escaped process %s: stdout %q, %v; want the run's pipe, still open", strings.TrimSpace(string(pid)), out, err)
		}
		if f.State != store.FireSucceeded || !strings.Contains(f.OutputTail, "bye") {
			t.Errorf("run with an escaped process: state %s, tail %q; want succeeded with bye", f.State, f.OutputTail)
		}
	})
}

func tailOf(s string, n int) string { return s[max(len(s)-n, 0):] }
