package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/apiserver"
	"github.com/aionsched/aion/scheduler/store"
)

// cluster is a test cluster with the API on an httptest server.
type cluster struct {
	*clustertest.Cluster
	url   string
	token string // an admin token's secret, which aion sends
}

// startCluster starts etcd, NATS and the API; with runs, also a scheduler
// and an executor (node x1, label zone=eu), so that jobs really run.
func startCluster(t *testing.T, runs bool) *cluster {
	t.Helper()
	requireClientCommands(t)
	c := clustertest.Start(t)
	if runs {
		c.StartScheduler(t, "s1")
		c.StartExecutor(t, "x1", 4, map[string]string{"zone": "eu"})
	}
	srv := apiserver.New(c.Etcd, c.NATS, c.Keys, "aion.", c.Log, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &cluster{Cluster: c, url: hs.URL, token: c.AdminToken(t)}
}

// requireClientCommands fails clearly while root.go does not register the
// client commands.
func requireClientCommands(t *testing.T) {
	t.Helper()
	root := newRootCommand(nil, nil)
	if cmd, _, err := root.Find([]string{"apply"}); err != nil || cmd.Name() != "apply" {
		t.Fatal("the client commands are not registered: root.go needs root.AddCommand(clientCommands(a)...)")
	}
}

// aion runs a command line against the cluster's API.
func (c *cluster) aion(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runAion(t, append(args, "--server", c.url, "--token", c.token)...)
}

// jobKeys reads the stored job definitions with their mod revisions.
func (c *cluster) jobKeys(t *testing.T) map[string]int64 {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Jobs(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]int64)
	for _, kv := range resp.Kvs {
		m[strings.TrimPrefix(string(kv.Key), c.Keys.Jobs())] = kv.ModRevision
	}
	return m
}

// writeJobs writes files (path relative to dir → content) under dir.
func writeJobs(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const clientJobs = `jobs:
  - name: greet
    schedule: manual
    env:
      WHO: world
    command: echo "hello $WHO"
  - name: fail
    schedule: manual
    command: echo failing; exit 7
  - name: nightly
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
    command: echo nightly
  - name: child
    parents: [nightly]
    command: echo child
`

// rows returns the table rows of stdout (after the header) with blanks squashed.
func rows(stdout string) []string {
	var out []string
	for _, l := range lines(stdout)[1:] {
		out = append(out, squash(l))
	}
	return out
}

func TestClient_ApplyListsChangesAndPruneRemovesExactlyWhatLeft(t *testing.T) {
	c := startCluster(t, false)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{
		"jobs.yaml":        clientJobs,
		"sub/more.yml":     "name: sub-job\nschedule: manual\ncommand: echo sub\n",
		".hidden.yaml":     "not: [a job",     // dot-files are skipped
		".git/config.yaml": "also: not a job", // so are dot-directories
		"notes.txt":        "not yaml",
	})

	code, stdout, stderr := c.aion(t, "apply", "-f", dir)
	if code != 0 {
		t.Fatalf("apply: exit %d\nstderr:\n%s", code, stderr)
	}
	want := []string{"child created", "fail created", "greet created", "nightly created", "sub-job created",
		"5 created, 0 updated, 0 unchanged, 0 deleted"}
	if got := rows(stdout); !slices.Equal(got, want) {
		t.Errorf("apply output:\ngot  %q\nwant %q", got, want)
	}

	code, stdout, _ = c.aion(t, "apply", "-f", filepath.Join(dir, "jobs.yaml"), "-f", filepath.Join(dir, "sub"))
	if got := rows(stdout); code != 0 || got[len(got)-1] != "0 created, 0 updated, 5 unchanged, 0 deleted" {
		t.Errorf("second apply: exit %d, output %q", code, got)
	}

	code, stdout, stderr = c.aion(t, "jobs")
	if code != 0 {
		t.Fatalf("jobs: exit %d\nstderr:\n%s", code, stderr)
	}
	if got, want := strings.Fields(lines(stdout)[0]), []string{"NAME", "SCHEDULE", "ZONE", "NEXT", "RUN", "LAST", "RESULT"}; !slices.Equal(got, want) {
		t.Errorf("jobs header: got %q, want %q", got, want)
	}
	got := rows(stdout)
	wantRows := []string{"child after nightly UTC - -", "fail manual UTC - -", "greet manual UTC - -", "nightly 30 2 * * * Europe/Berlin", "sub-job manual UTC - -"}
	if len(got) != len(wantRows) {
		t.Fatalf("jobs rows: got %q, want %q", got, wantRows)
	}
	for i, w := range wantRows {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("jobs row %d: got %q, want it to start with %q", i, got[i], w)
		}
	}
	if !strings.Contains(got[3], " 02:30:00 CE") || !strings.HasSuffix(got[3], " -") {
		t.Errorf("nightly row %q: want the next run at 02:30 Berlin time and no result yet", got[3])
	}

	code, stdout, _ = c.aion(t, "jobs", "-o", "json")
	var list api.JobList
	if err := json.Unmarshal([]byte(stdout), &list); code != 0 || err != nil || len(list.Jobs) != 5 {
		t.Errorf("jobs -o json: exit %d, %d jobs, err %v\n%s", code, len(list.Jobs), err, stdout)
	}

	code, stdout, stderr = c.aion(t, "job", "nightly")
	if code != 0 || !strings.Contains(stdout, "Runs:") || !strings.Contains(stdout, "30 2 * * * in Europe/Berlin") || !strings.Contains(stdout, "Next runs:") {
		t.Errorf("job nightly: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// Drop child (from jobs.yaml) and sub-job (its file): prune deletes exactly those two.
	before := c.jobKeys(t)
	writeJobs(t, dir, map[string]string{"jobs.yaml": strings.Split(clientJobs, "  - name: child")[0]})
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = c.aion(t, "apply", "-f", dir, "--prune", "--dry-run")
	if got := rows(stdout); code != 0 || !slices.Contains(got, "child deleted") || got[len(got)-1] != "0 created, 0 updated, 3 unchanged, 2 deleted (dry run: nothing was written)" {
		t.Errorf("apply --prune --dry-run: exit %d, output %q, stderr %s", code, got, stderr)
	}
	if after := c.jobKeys(t); !maps.Equal(before, after) {
		t.Errorf("a dry run changed the stored jobs: %v → %v", before, after)
	}
	code, stdout, stderr = c.aion(t, "apply", "-f", dir, "--prune")
	want = []string{"child deleted", "fail unchanged", "greet unchanged", "nightly unchanged", "sub-job deleted",
		"0 created, 0 updated, 3 unchanged, 2 deleted"}
	if got := rows(stdout); code != 0 || !slices.Equal(got, want) {
		t.Errorf("apply --prune: exit %d\ngot  %q\nwant %q\nstderr: %s", code, got, want, stderr)
	}
	after := c.jobKeys(t)
	for name, rev := range before {
		switch {
		case name == "child" || name == "sub-job":
			if _, ok := after[name]; ok {
				t.Errorf("%s is still stored after prune", name)
			}
		case after[name] != rev:
			t.Errorf("%s changed (revision %d → %d); prune must only delete", name, rev, after[name])
		}
	}
}

func TestClient_ApplyWithABadFileFailsAndChangesNothing(t *testing.T) {
	c := startCluster(t, false)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": clientJobs})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	before := c.jobKeys(t)

	writeJobs(t, dir, map[string]string{
		"jobs.yaml": strings.Replace(clientJobs, "echo nightly", "echo changed", 1),
		"bad.yaml":  "name: bad\nschedule: manual\ncommand: \"true\"\nretry: 3\n",
	})
	code, stdout, stderr := c.aion(t, "apply", "-f", dir, "--prune")
	if code != 1 || stdout != "" {
		t.Errorf("apply with a bad file: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	wantLine := filepath.Join(dir, "bad.yaml") + `:4:1: retry: unknown field (did you mean "retries"?)`
	if got := lines(stderr); !slices.Contains(got, wantLine) || got[len(got)-1] != "aion: 1 problem, nothing applied" {
		t.Errorf("stderr:\n%s\nwant the line %q and the summary", stderr, wantLine)
	}
	if after := c.jobKeys(t); !maps.Equal(before, after) {
		t.Errorf("a failed apply changed the stored jobs: %v → %v", before, after)
	}
}

func TestClient_RunWaitStreamsOutputAndExitsWithTheJobsCode(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": clientJobs})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}

	code, stdout, stderr := c.aion(t, "run", "greet", "--wait", "--env", "WHO=tester")
	if code != 0 || stdout != "hello tester\n" {
		t.Errorf("run greet --wait: exit %d, stdout %q; want 0 and the output\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "greet@manual-") {
		t.Errorf("run --wait did not name the fire on stderr: %q", stderr)
	}

	code, stdout, stderr = c.aion(t, "run", "fail", "--wait")
	if code != 7 || stdout != "failing\n" {
		t.Errorf("run fail --wait: exit %d, stdout %q; want 7 and the output\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "failed: exit status 7") {
		t.Errorf("run fail --wait: stderr %q does not say how it failed", stderr)
	}

	// Without --wait: the fire ID, then its output with logs -f.
	code, stdout, stderr = c.aion(t, "run", "greet")
	id := strings.TrimSpace(stdout)
	if _, err := store.ParseFireID(id); code != 0 || err != nil {
		t.Fatalf("run greet: exit %d, stdout %q (%v)\nstderr:\n%s", code, stdout, err, stderr)
	}
	code, stdout, stderr = c.aion(t, "logs", "-f", id)
	if code != 0 || stdout != "hello world\n" {
		t.Errorf("logs -f %s: exit %d, stdout %q\nstderr:\n%s", id, code, stdout, stderr)
	}
	code, stdout, _ = c.aion(t, "logs", id)
	if code != 0 || stdout != "hello world\n" {
		t.Errorf("logs %s: exit %d, stdout %q", id, code, stdout)
	}

	code, stdout, stderr = c.aion(t, "history", "greet", "-n", "5")
	if got := rows(stdout); code != 0 || len(got) != 2 || !strings.HasPrefix(got[0], id+" manual 1 succeeded x1 ") {
		t.Errorf("history greet: exit %d, rows %q (want 2, newest %s first)\nstderr:\n%s", code, got, id, stderr)
	}
	code, stdout, _ = c.aion(t, "job", "greet")
	if code != 0 || !strings.Contains(stdout, "Recent fires:") || !strings.Contains(stdout, id) {
		t.Errorf("job greet: exit %d\n%s", code, stdout)
	}

	clustertest.WaitFor(t, 5*time.Second, "x1 in aion nodes with its load", func() bool {
		code, stdout, _ := c.aion(t, "nodes")
		r := rows(stdout)
		if code != 0 || len(r) != 1 {
			return false
		}
		f := strings.Fields(r[0]) // ID, labels (sorted, with the default arch, hostname, os), slots, ...
		if len(f) < 3 {
			return false
		}
		labels := strings.Split(f[1], ",")
		return f[0] == "x1" && slices.Contains(labels, "zone=eu") && slices.Contains(labels, "os="+runtime.GOOS) &&
			f[2] == "4" && !strings.HasSuffix(r[0], "- -")
	})

	code, stdout, _ = c.aion(t, "disable", "greet")
	if code != 0 || stdout != "greet disabled\n" {
		t.Errorf("disable: exit %d, %q", code, stdout)
	}
	code, stdout, _ = c.aion(t, "disable", "greet")
	if code != 0 || stdout != "greet was already disabled\n" {
		t.Errorf("disable again: exit %d, %q", code, stdout)
	}
	code, stdout, _ = c.aion(t, "enable", "greet")
	if code != 0 || stdout != "greet enabled\n" {
		t.Errorf("enable: exit %d, %q", code, stdout)
	}

	code, _, stderr = c.aion(t, "delete", "nightly")
	if code != exitAion || !strings.Contains(stderr, "job child lists nightly in its parents") || !strings.Contains(stderr, "aion: job nightly is a parent of child") {
		t.Errorf("delete nightly: exit %d, stderr %q; want it refused because of child", code, stderr)
	}
	for _, name := range []string{"child", "nightly"} {
		if code, stdout, stderr := c.aion(t, "delete", name); code != 0 || stdout != name+" deleted\n" {
			t.Errorf("delete %s: exit %d, %q %q", name, code, stdout, stderr)
		}
	}

	code, _, stderr = c.aion(t, "run", "nope")
	if code != exitAion || stderr != "aion: no job named \"nope\"\n" {
		t.Errorf("run nope: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = c.aion(t, "run", "greet", "--env", "AION_JOB=x")
	if code != exitAion || !strings.Contains(stderr, "env.AION_JOB: names starting with AION_ are set by Aion") {
		t.Errorf("run with an AION_ override: exit %d, stderr %q", code, stderr)
	}
}

func TestClient_UsageAndConnectionErrors(t *testing.T) {
	requireClientCommands(t)
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"apply without -f", []string{"apply"}, 2, "-f PATH"},
		{"run without a name", []string{"run"}, 2, "accepts 1 arg"},
		{"run with a bad env", []string{"run", "x", "--env", "NOEQUALS"}, 2, `--env "NOEQUALS": want NAME=VALUE`},
		{"logs with a bad ID", []string{"logs", "backup@"}, 2, "logs: "},
		{"bad output format", []string{"jobs", "-o", "yaml"}, 2, `-o "yaml": want table or json`},
		{"bad count", []string{"history", "x", "-n", "0"}, 2, "-n: want 1 to 1000"},
		{"bad server", []string{"jobs", "--server", "ftp://example.com"}, 2, "want an http:// or https:// URL"},
		{"unreachable", []string{"jobs", "--server", "http://127.0.0.1:1"}, exitAion,
			"cannot reach the Aion API at http://127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused (is `aion dev` or a scheduler running? set --server)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAion(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestClient_UnknownJobIsAnError(t *testing.T) {
	c := startCluster(t, false)
	for _, args := range [][]string{{"job", "nope"}, {"enable", "nope"}, {"delete", "nope"}, {"history", "nope"}} {
		code, stdout, stderr := c.aion(t, args...)
		if code != exitAion || stdout != "" || !strings.HasPrefix(stderr, `aion: no job named "nope"`) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	code, _, stderr := c.aion(t, "logs", "nope@2026-11-24T02:00:00Z")
	if code != exitAion || !strings.Contains(stderr, "no fire nope@2026-11-24T02:00:00Z") {
		t.Errorf("logs of an unknown fire: exit %d, stderr %q", code, stderr)
	}
}
