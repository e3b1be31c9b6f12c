package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/api"
)

// readmeSleeper is a job the test adds for the README's `aion kill
// FIRE-ID`, which needs a run that is still going.
const readmeSleeper = "name: readme-sleeper\nschedule: manual\ncommand: sleep 60\n"

// readmeExample is one command line of the README's "Using it" block.
type readmeExample struct {
	line string // as the README has it
	key  string // its command, e.g. "run extract", naming its check
}

// readmeExamples returns the example command lines of README.md's "Using
// it" section.
func readmeExamples(t *testing.T, readme string) []readmeExample {
	t.Helper()
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Using it\n")
	if !ok {
		t.Fatal(`README.md has no "## Using it" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var out []readmeExample
	for _, l := range strings.Split(section, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "go run ./cmd/aion "):
			f := strings.Fields(strings.TrimPrefix(l, "go run ./cmd/aion "))
			key := f[0]
			if len(f) > 1 && f[0] == "jobs" && strings.HasPrefix(f[1], "--") {
				key += " " + f[1] // the filters are an example of their own
			} else if len(f) > 1 && !strings.HasPrefix(f[1], "-") && !strings.HasPrefix(f[1], "#") && f[1] != "FIRE-ID" && !strings.ContainsAny(f[1], "/'") {
				key += " " + f[1]
			}
			out = append(out, readmeExample{line: l, key: key})
		case strings.HasPrefix(l, "curl "):
			out = append(out, readmeExample{line: l, key: "curl"})
		}
	}
	if len(out) == 0 {
		t.Fatal(`no example command lines in README.md's "Using it" section`)
	}
	return out
}

// readmeRun is the README example test's aion dev and what its commands
// produced so far.
type readmeRun struct {
	t      *testing.T
	root   string // the repository, where the commands run
	bin    string
	addr   string
	token  string // the file aion dev wrote its admin token to
	c      *api.Client
	fireID string // what FIRE-ID stands for in the next command
}

// sh runs one README line in the shell, with `go run ./cmd/aion` the
// built binary pointed at dev by --server, and returns its exit code and
// output.
func (r *readmeRun) sh(line string) (code int, stdout, stderr string) {
	r.t.Helper()
	line = strings.ReplaceAll(line, "go run ./cmd/aion", r.bin+" --server=http://"+r.addr+" --token-file="+r.token)
	line = strings.ReplaceAll(line, ".aion/token", r.token)
	line = strings.ReplaceAll(line, "127.0.0.1:8080", r.addr)
	line = strings.ReplaceAll(line, "FIRE-ID", r.fireID)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = r.root
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		r.t.Fatalf("%s: %v", line, err)
	}
	return code, out.String(), errOut.String()
}

// waitSucceeded waits for a succeeded fire of each job.
func (r *readmeRun) waitSucceeded(jobs ...string) {
	r.t.Helper()
	for _, job := range jobs {
		clustertest.WaitFor(r.t, 30*time.Second, job+" to succeed", func() bool {
			list, err := r.c.Fires(context.Background(), job, 5)
			if err != nil {
				return false
			}
			for _, f := range list.Fires {
				if f.State == api.FireSucceeded {
					return true
				}
			}
			return false
		})
	}
}

// waitFire waits for the fire r.fireID to be in state.
func (r *readmeRun) waitFire(state api.FireState) {
	r.t.Helper()
	id, err := api.ParseFireID(r.fireID)
	if err != nil {
		r.t.Fatal(err)
	}
	clustertest.WaitFor(r.t, 30*time.Second, r.fireID+" "+string(state), func() bool {
		f, err := r.c.Fire(context.Background(), id)
		return err == nil && f.State == state
	})
}

var requestedFire = regexp.MustCompile(`aion: (\S+@\S+) requested`)

// readmeChecks say, per example, what to do before it and what its
// comment promises, checked on its output. Every example needs one.
var readmeChecks = map[string]struct {
	before func(r *readmeRun)
	check  func(r *readmeRun, stdout, stderr string)
}{
	"jobs": {check: func(r *readmeRun, stdout, _ string) {
		for _, job := range []string{"backup", "extract", "build-report"} {
			if !strings.Contains(stdout, job) {
				r.t.Errorf("aion jobs does not list %s:\n%s", job, stdout)
			}
		}
	}},
	"run reindex": {check: func(r *readmeRun, stdout, stderr string) {
		if stdout != "reindex full=1\n" {
			r.t.Errorf("run reindex --wait printed %q, want its output", stdout)
		}
		if m := requestedFire.FindStringSubmatch(stderr); m != nil {
			r.fireID = m[1]
		}
	}},
	"run extract": {check: func(r *readmeRun, _, _ string) {
		r.waitSucceeded("clean-orders", "clean-customers", "build-report") // "its three dependents follow"
	}},
	"history build-report": {check: func(r *readmeRun, stdout, _ string) {
		if !strings.Contains(stdout, "build-report@") || !strings.Contains(stdout, "succeeded") {
			r.t.Errorf("history build-report lacks the run that succeeded:\n%s", stdout)
		}
	}},
	"logs": {check: func(r *readmeRun, stdout, _ string) {
		if stdout != "reindex full=1\n" {
			r.t.Errorf("logs %s -f printed %q, want the output of the reindex run", r.fireID, stdout)
		}
	}},
	"logs build-report": {check: func(r *readmeRun, _, stderr string) {
		if stderr != "" {
			r.t.Errorf("logs build-report: stderr %q", stderr)
		}
	}},
	"history": {check: func(r *readmeRun, stdout, _ string) {
		for _, job := range []string{"reindex@", "extract@", "build-report@"} {
			if !strings.Contains(stdout, job) {
				r.t.Errorf("history of all jobs lacks a fire of %s:\n%s", job, stdout)
			}
		}
	}},
	"jobs --state": {check: func(r *readmeRun, stdout, _ string) {
		if got := names(stdout); len(got) != 2 || got[0] != "clean-customers" || got[1] != "clean-orders" {
			r.t.Errorf("jobs --state succeeded --name 'clean-*': got %q, want the two clean jobs", got)
		}
	}},
	"job backup": {check: func(r *readmeRun, stdout, _ string) {
		if !strings.Contains(stdout, "backup") || !strings.Contains(stdout, "30 2 * * *") {
			r.t.Errorf("job backup lacks the definition:\n%s", stdout)
		}
	}},
	"nodes": {check: func(r *readmeRun, stdout, _ string) {
		if !strings.Contains(stdout, "dev") {
			r.t.Errorf("nodes does not list the dev executor:\n%s", stdout)
		}
	}},
	"apply": {},
	"version": {check: func(r *readmeRun, stdout, _ string) {
		if !strings.Contains(stdout, "go1.") || !strings.Contains(stdout, "github.com/aionsched/aion") {
			r.t.Errorf("version lacks the Go version or the module:\n%s", stdout)
		}
	}},
	"validate": {check: func(r *readmeRun, stdout, _ string) {
		if !strings.Contains(stdout, "12 jobs valid") {
			r.t.Errorf("validate testdata/jobs:\n%s", stdout)
		}
	}},
	"explain": {check: func(r *readmeRun, stdout, _ string) {
		if !strings.Contains(stdout, "2026-03-2") {
			r.t.Errorf("explain printed no times from 2026-03-27:\n%s", stdout)
		}
	}},
	"kill": {
		before: func(r *readmeRun) {
			dir := r.t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "sleeper.yaml"), []byte(readmeSleeper), 0o644); err != nil {
				r.t.Fatal(err)
			}
			if code, _, stderr := r.sh("go run ./cmd/aion apply -f " + dir); code != 0 {
				r.t.Fatalf("apply the sleeper: exit %d: %s", code, stderr)
			}
			code, stdout, stderr := r.sh("go run ./cmd/aion run readme-sleeper")
			if code != 0 {
				r.t.Fatalf("run the sleeper: exit %d: %s", code, stderr)
			}
			r.fireID = strings.TrimSpace(stdout)
			r.waitFire(api.FireRunning)
		},
		check: func(r *readmeRun, _, _ string) { r.waitFire(api.FireCancelled) },
	},
	"pause backup": {check: func(r *readmeRun, _, _ string) {
		d, err := r.c.GetJob(context.Background(), "backup")
		if err != nil || d.State.Paused {
			r.t.Errorf("backup after pause; resume: paused %v (%v), want resumed", d.State.Paused, err)
		}
	}},
	"backfill extract": {},
	"curl": {check: func(r *readmeRun, stdout, _ string) {
		if !strings.Contains(stdout, "aion_") {
			r.t.Errorf("no aion_ metrics:\n%s", stdout)
		}
	}},
}

// TestREADME_ExamplesWorkAgainstAionDev runs every example command of the
// README's "Using it" section against a real `aion dev`, checking that it
// succeeds and, where checkable, what its comment promises.
func TestREADME_ExamplesWorkAgainstAionDev(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end, the README's examples against aion dev")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(t, filepath.Join(root, "README.md"))
	for _, ex := range examples {
		if _, ok := readmeChecks[ex.key]; !ok {
			t.Fatalf("README example %q (%s) has no entry in readmeChecks", ex.line, ex.key)
		}
	}
	data := t.TempDir()
	r := &readmeRun{t: t, root: root, bin: clustertest.BuildAion(t), addr: clustertest.FreeAddr(t), token: filepath.Join(data, "token")}
	clustertest.StartProcess(t, r.bin, "aion-dev", "dev", "--data-dir", data, "--listen", r.addr,
		"--jobs", filepath.Join(root, "testdata", "jobs"))
	health, err := api.NewClient("http://"+r.addr, &http.Client{Timeout: api.DefaultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, 60*time.Second, "the API of aion dev", func() bool {
		return health.Health(context.Background()) == nil
	})
	r.c = devClient(t, r.addr, data)
	for _, ex := range examples {
		check := readmeChecks[ex.key]
		if check.before != nil {
			check.before(r)
		}
		code, stdout, stderr := r.sh(ex.line)
		if code != 0 {
			t.Errorf("README example failed (exit %d):\n  %s\nstdout:\n%s\nstderr:\n%s", code, ex.line, stdout, stderr)
			continue
		}
		if check.check != nil {
			check.check(r, stdout, stderr)
		}
	}
}
