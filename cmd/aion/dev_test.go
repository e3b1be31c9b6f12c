package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

// devInstance is an `aion dev` running in the test, through run().
type devInstance struct {
	stdout, stderr *clustertest.Buffer
	server         string // the URL its ready line gives
	tokenFile      string // where its ready line says its admin token is
	cancel         context.CancelFunc
	done           chan int
	stopOnce       sync.Once
	code           int
}

// readyLine is the line dev prints once its API listens.
var readyLine = regexp.MustCompile(`API at (http://\S+) — point the CLI at it with --server (http://\S+) or AION_SERVER=(http://\S+)`)

// devTokenLine is the line dev prints saying where its admin token is.
var devTokenLine = regexp.MustCompile(`admin token in (\S+) \(0600\)`)

// startDev runs `aion dev` with args (plus a temporary data directory and
// a free API port) and waits for its ready line; it is stopped at cleanup.
func startDev(t *testing.T, args ...string) *devInstance {
	t.Helper()
	return startDevWith(t, append([]string{"--data-dir", t.TempDir()}, args...)...)
}

// startDevWith is startDev without a data directory of its own: dev's
// default, ./.aion, unless args give one.
func startDevWith(t *testing.T, args ...string) *devInstance {
	t.Helper()
	d := &devInstance{stdout: &clustertest.Buffer{}, stderr: &clustertest.Buffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	args = append([]string{"dev", "--listen", "127.0.0.1:0"}, args...)
	go func() { d.done <- run(ctx, args, d.stdout, d.stderr) }()
	t.Cleanup(func() { d.stop(t) })
	clustertest.WaitFor(t, 30*time.Second, "the ready line of aion dev", func() bool {
		select {
		case code := <-d.done:
			d.done <- code
			t.Fatalf("aion dev exited with %d before it was ready\nstdout:\n%s\nstderr:\n%s", code, d.stdout, d.stderr)
		default:
		}
		m := readyLine.FindStringSubmatch(d.stdout.String())
		if m == nil {
			return false
		}
		if m[1] != m[2] || m[2] != m[3] {
			t.Fatalf("ready line names different URLs: %q", m[0])
		}
		d.server = m[1]
		tm := devTokenLine.FindStringSubmatch(d.stdout.String())
		if tm == nil {
			t.Fatalf("the ready lines do not say where the admin token is:\n%s", d.stdout)
		}
		d.tokenFile = tm[1]
		return true
	})
	return d
}

// stop cancels dev and returns its exit code.
func (d *devInstance) stop(t *testing.T) int {
	t.Helper()
	d.stopOnce.Do(func() {
		d.cancel()
		select {
		case d.code = <-d.done:
		case <-time.After(30 * time.Second):
			t.Error("aion dev did not stop within 30 s of its context ending")
			d.code = -1
		}
	})
	return d.code
}

func TestDev_ListenAddressTakenFailsBeforeAnythingElse(t *testing.T) {
	clustertest.SkipShort(t, "starts aion dev")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	code, stdout, stderr := runAion(t, "dev", "--data-dir", t.TempDir(), "--listen", addr, "--jobs", "../../testdata/jobs")
	if code != exitAion {
		t.Errorf("exit code: got %d, want %d", code, exitAion)
	}
	if stdout != "" {
		t.Errorf("stdout: got %q, want nothing printed before the listen check", stdout)
	}
	for _, want := range []string{addr, "address already in use", "--listen"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "context canceled") {
		t.Errorf("stderr reports a follow-on error:\n%s", stderr)
	}
}

func TestDev_StartsOutsideTheRepositoryAndWithAnEmptyJobsDirectory(t *testing.T) {
	clustertest.SkipShort(t, "starts aion dev")
	outside := t.TempDir()
	empty := filepath.Join(outside, "jobs")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // in stdout
	}{
		{"no jobs directory", nil, "no job files"},
		{"empty jobs directory", []string{"--jobs", empty}, "applied " + empty + ": 0 created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(outside)
			// dev's default data directory, ./.aion: the CLI run in the
			// same directory finds the admin token there by itself.
			d := startDevWith(t, tt.args...)
			if !strings.Contains(d.stdout.String(), tt.want) {
				t.Errorf("stdout lacks %q:\n%s", tt.want, d.stdout)
			}
			if d.tokenFile != filepath.Join(".aion", "token") {
				t.Errorf("dev's token is in %s, want .aion/token", d.tokenFile)
			}
			code, stdout, stderr := runAion(t, "jobs", "--server", d.server)
			if code != 0 {
				t.Errorf("aion jobs against dev: exit %d, stderr %q", code, stderr)
			}
			if got := lines(stdout); len(got) != 1 || !strings.HasPrefix(got[0], "NAME") {
				t.Errorf("aion jobs: got %q, want the header alone", stdout)
			}
			if code := d.stop(t); code != 0 {
				t.Errorf("dev exit code after Ctrl-C: got %d, want 0\nstderr:\n%s", code, d.stderr)
			}
		})
	}
}
