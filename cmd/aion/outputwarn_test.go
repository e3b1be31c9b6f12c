package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// TestClient_OutputTruncatedOrNotKeptIsAWarningInJobHistoryAndLogs: a run
// whose output passed its limit, or could not be kept, says so in aion
// job, aion history and aion logs, never as an empty success.
func TestClient_OutputTruncatedOrNotKeptIsAWarningInJobHistoryAndLogs(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": clientJobs + `  - name: chatty
    schedule: manual
    output_limit: 1KiB
    command: "head -c 5000 /dev/zero | tr '\\0' x; echo; echo END"
`})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := c.aion(t, "run", "chatty", "-o", "json")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	id := decodeOutput[api.RunResponse](t, stdout).Fire
	const truncated = "output truncated at 1KiB (the output limit): the full output holds its first 1KiB"
	code, stdout, stderr = c.aion(t, "logs", "-f", id)
	if code != 0 || len(stdout) != 1024 || !strings.Contains(stderr, "aion: warning: "+truncated) {
		t.Errorf("logs -f of a truncated run: exit %d, %d bytes, stderr %q; want 1024 bytes and the warning %q", code, len(stdout), stderr, truncated)
	}
	for _, args := range [][]string{{"history", "chatty"}, {"job", "chatty"}} {
		code, stdout, stderr := c.aion(t, args...)
		if code != 0 || !strings.Contains(stdout, "warning: "+id+": "+truncated) {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s\nwant the warning %q", args, code, stderr, stdout, truncated)
		}
	}
	if _, stdout, _ := c.aion(t, "job", "chatty"); !strings.Contains(squash(stdout), "Output limit: 1KiB") {
		t.Errorf("job chatty does not show its output limit:\n%s", stdout)
	}

	// A run whose output could not be kept (the executor tests make one).
	lost := store.Fire{ID: store.ManualFireID("greet", time.Now()), Trigger: store.TriggerManual, State: store.FireSucceeded,
		Node: "x1", Attempt: 1, PID: 4242, PlannedAt: time.Now(), StartedAt: time.Now(), EndedAt: time.Now(), Processed: true,
		OutputTail:  "hello world\n",
		OutputError: "create output file: mkdir /var/lib/aion/output/greet: permission denied"}
	data, err := json.Marshal(lost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Etcd.Put(context.Background(), c.Keys.Fire(lost.ID), string(data)); err != nil {
		t.Fatal(err)
	}
	const notKept = "output not kept: create output file: mkdir /var/lib/aion/output/greet: permission denied"
	code, _, stderr = c.aion(t, "logs", lost.ID.String())
	if code != 0 || !strings.Contains(stderr, "aion: warning: "+notKept) || strings.Contains(stderr, "wrote no output") {
		t.Errorf("logs of a run whose output was not kept: exit %d, stderr %q; want the warning %q and not that it wrote none", code, stderr, notKept)
	}
	for _, args := range [][]string{{"history", "greet"}, {"job", "greet"}} {
		code, stdout, stderr := c.aion(t, args...)
		if code != 0 || !strings.Contains(stdout, "warning: "+lost.ID.String()+": "+notKept) {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s\nwant the warning %q", args, code, stderr, stdout, notKept)
		}
	}
}
