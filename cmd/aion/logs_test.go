package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

func TestClient_LogsJSONHasTheFireAndItsOutput(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": clientJobs})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := c.aion(t, "run", "greet", "-o", "json")
	if code != 0 {
		t.Fatalf("run -o json: exit %d: %s", code, stderr)
	}
	id := decodeOutput[api.RunResponse](t, stdout).Fire

	// With -f the object comes once the fire has ended.
	code, stdout, stderr = c.aion(t, "logs", "-f", "-o", "json", id)
	if code != 0 {
		t.Fatalf("logs -f -o json: exit %d: %s", code, stderr)
	}
	out := decodeOutput[logsOutput](t, stdout)
	if out.Output != "hello world\n" || out.Fire.ID.String() != id || out.Fire.State != api.FireSucceeded || out.FromRecord || out.Notes == nil {
		t.Errorf("logs -f -o json: %+v", out)
	}
	code, stdout, _ = c.aion(t, "logs", "-o", "json", id)
	if out := decodeOutput[logsOutput](t, stdout); code != 0 || out.Output != "hello world\n" || !out.Fire.Processed {
		t.Errorf("logs -o json: exit %d, %+v", code, out)
	}

	// A fire without output says why in its notes.
	skipped := store.Fire{ID: store.ScheduledFireID("nightly", time.Date(2026, 11, 24, 1, 30, 0, 0, time.UTC)), State: store.FireSkipped,
		Processed: true, Reason: "skipped: the previous run is still running", PlannedAt: time.Now()}
	data, err := json.Marshal(skipped)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Etcd.Put(context.Background(), c.Keys.Fire(skipped.ID), string(data)); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = c.aion(t, "logs", "-o", "json", skipped.ID.String())
	out = decodeOutput[logsOutput](t, stdout)
	wantNote := skipped.ID.String() + ": no output was kept for this run: skipped: the previous run is still running"
	if code != 0 || out.Output != "" || len(out.Notes) != 1 || out.Notes[0] != wantNote || out.Fire.State != api.FireSkipped {
		t.Errorf("logs -o json of a skipped fire: exit %d, %+v; want the note %q", code, out, wantNote)
	}
	if stderr != "aion: "+wantNote+"\n" {
		t.Errorf("logs -o json of a skipped fire: stderr %q, want the note", stderr)
	}
}

// The CLI decodes the API's answers into package api's types and prints
// them again: the JSON it prints is the server's.
func TestClient_JSONOutputIsTheAPIAnswer(t *testing.T) {
	c := startCluster(t, false)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": clientJobs})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	for _, tt := range []struct {
		args []string
		path string
	}{
		{[]string{"jobs"}, "/v1/jobs"},
		{[]string{"job", "nightly"}, "/v1/jobs/nightly"},
		{[]string{"history", "nightly"}, "/v1/jobs/nightly/fires?limit=20"},
		{[]string{"nodes"}, "/v1/nodes"},
	} {
		code, stdout, stderr := c.aion(t, append(tt.args, "-o", "json")...)
		if code != 0 {
			t.Fatalf("%v -o json: exit %d: %s", tt.args, code, stderr)
		}
		req, err := http.NewRequestWithContext(t.Context(), "GET", c.url+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := json.Indent(&want, raw, "", "  "); err != nil {
			t.Fatal(err)
		}
		if got := stdout; got != want.String() {
			t.Errorf("%v -o json:\n%s\nthe API answered:\n%s", tt.args, got, strings.TrimSpace(want.String()))
		}
	}
}
