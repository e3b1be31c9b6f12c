package clustertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// BuildAion builds the aion binary once per test binary run and returns
// its path. Tests that need processes (fault injection) run it.
func BuildAion(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "aion-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "aion")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/aion")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("build aion: %v", buildErr)
	}
	return builtBin
}

// The build is shared by every test of one test binary: building takes
// seconds and the binary does not change while tests run.
var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// Process is an aion process of a test: a scheduler or an executor, which
// the test can kill, stop, continue and restart.
type Process struct {
	Name string
	bin  string
	args []string
	out  string
	t    testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartProcess runs bin with args; its output goes to a file shown when the
// test fails. It is stopped (SIGTERM, then SIGKILL) when the test ends.
func StartProcess(t testing.TB, bin, name string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, bin: bin, args: args, out: filepath.Join(t.TempDir(), name+".log"), t: t}
	p.start()
	t.Cleanup(func() {
		p.Signal(syscall.SIGCONT)
		p.Stop(15 * time.Second)
		if t.Failed() {
			data, _ := os.ReadFile(p.out)
			s := string(data)
			if len(s) > 3000 {
				s = s[len(s)-3000:]
			}
			t.Logf("--- %s output (end):\n%s", name, s)
		}
	})
	return p
}

func (p *Process) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// PID is the process ID of the current incarnation.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Signal sends sig (SIGKILL, SIGSTOP, SIGCONT, ...) to the process.
func (p *Process) Signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	<-done
}

// Stop sends SIGTERM and waits, then SIGKILL after timeout.
func (p *Process) Stop(timeout time.Duration) {
	p.Signal(syscall.SIGTERM)
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(timeout):
		p.Kill()
	}
}

// Restart starts the process again with the same arguments.
func (p *Process) Restart() { p.start() }

// Leader returns the ID held by the current leader's election key, or "".
func (c *Cluster) Leader(t testing.TB) string {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Election(), clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// Wait waits up to timeout for the process to exit by itself and reports
// whether it did.
func (p *Process) Wait(timeout time.Duration) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Candidates returns the IDs held by the live election keys, the leader's
// first: the schedulers campaigning, each on a live session.
func (c *Cluster) Candidates(t testing.TB) []string {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Election(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		t.Fatalf("read election keys: %v", err)
	}
	ids := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		ids[i] = string(kv.Value)
	}
	return ids
}
