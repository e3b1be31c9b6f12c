package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// serve runs the API of cluster c on an httptest server until the test
// ends and returns its URL and the secret of an admin token.
func serve(t *testing.T, c *clustertest.Cluster, now func() time.Time) (base, token string) {
	t.Helper()
	srv := New(c.Etcd, c.NATS, c.Keys, "aion.", c.Log, now)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, c.AdminToken(t)
}

// fixedClock is a clock stopped at a time.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// call sends a request with the token (none when empty); body is sent as
// is when it is a string or []byte, else as JSON, with Content-Type
// application/json. It returns the status and the answer's body.
func call(t *testing.T, token, method, target string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// callJSON sends a request, checks the status and decodes the answer.
func callJSON[T any](t *testing.T, token, method, target string, body any, wantStatus int) T {
	t.Helper()
	status, data := call(t, token, method, target, body)
	if status != wantStatus {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, target, status, wantStatus, data)
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, target, data, err)
	}
	return v
}

// snapshot reads every key under the cluster's prefix with its value and
// revisions, so tests can assert that nothing changed.
func snapshot(t *testing.T, c *clustertest.Cluster) map[string]string {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m[string(kv.Key)] = fmt.Sprintf("%d/%d %s", kv.CreateRevision, kv.ModRevision, kv.Value)
	}
	return m
}

func assertUnchanged(t *testing.T, c *clustertest.Cluster, before map[string]string, what string) {
	t.Helper()
	after := snapshot(t, c)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed etcd: key %s was %q, is %q", what, k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s changed etcd: key %s was added", what, k)
		}
	}
}

func keyExists(t *testing.T, c *clustertest.Cluster, key string) bool {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Kvs) == 1
}

func files(nameContent ...string) api.ApplyRequest {
	var req api.ApplyRequest
	for i := 0; i+1 < len(nameContent); i += 2 {
		req.Files = append(req.Files, api.File{Name: nameContent[i], Content: nameContent[i+1]})
	}
	return req
}

const (
	alphaYAML = `name: alpha
schedule: "0 3 * * *"
command: echo alpha
`
	betaGammaYAML = `jobs:
  - name: beta
    schedule: manual
    command: echo beta
  - name: gamma
    parents: [alpha]
    command: echo gamma
`
	betaYAML = `name: beta
schedule: manual
command: echo beta
`
)

func equal(got, want []string) bool { return slices.Equal(got, want) || len(got)+len(want) == 0 }

func checkResult(t *testing.T, got api.ApplyResponse, created, updated, unchanged, deleted []string) {
	t.Helper()
	if !equal(got.Created, created) || !equal(got.Updated, updated) || !equal(got.Unchanged, unchanged) || !equal(got.Deleted, deleted) {
		t.Errorf("apply result: got created %q updated %q unchanged %q deleted %q; want %q %q %q %q",
			got.Created, got.Updated, got.Unchanged, got.Deleted, created, updated, unchanged, deleted)
	}
}

func TestAPI_ApplyCreatesThenReportsUnchanged(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	set := files("jobs/alpha.yaml", alphaYAML, "jobs/more.yaml", betaGammaYAML)

	res := callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", set, http.StatusOK)
	checkResult(t, res, []string{"alpha", "beta", "gamma"}, nil, nil, nil)
	for _, name := range []string{"alpha", "beta", "gamma"} {
		if !keyExists(t, c, c.Keys.Job(name)) || !keyExists(t, c, c.Keys.State(name)) {
			t.Errorf("job %s: definition or state not stored", name)
		}
	}

	before := snapshot(t, c)
	res = callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", set, http.StatusOK)
	checkResult(t, res, nil, nil, []string{"alpha", "beta", "gamma"}, nil)
	assertUnchanged(t, c, before, "applying the same set again")

	changed := files("jobs/alpha.yaml", strings.Replace(alphaYAML, "echo alpha", "echo ALPHA", 1), "jobs/more.yaml", betaGammaYAML)
	res = callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", changed, http.StatusOK)
	checkResult(t, res, nil, []string{"alpha"}, []string{"beta", "gamma"}, nil)
}

// invalidCases returns, for every golden file in testdata/invalid, the
// files of the case and the golden problem lines. The working directory
// must be the repository root.
func invalidCases(t *testing.T) map[string]struct {
	req  api.ApplyRequest
	want []string
} {
	t.Helper()
	goldens, err := filepath.Glob("testdata/invalid/*.golden")
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no golden files in testdata/invalid: %v", err)
	}
	cases := make(map[string]struct {
		req  api.ApplyRequest
		want []string
	})
	for _, golden := range goldens {
		base := strings.TrimSuffix(golden, ".golden")
		var paths []string
		if info, err := os.Stat(base); err == nil && info.IsDir() {
			err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					paths = append(paths, p)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		} else {
			paths = []string{base + ".yaml"}
		}
		var req api.ApplyRequest
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			req.Files = append(req.Files, api.File{Name: p, Content: string(data)})
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		cases[filepath.Base(base)] = struct {
			req  api.ApplyRequest
			want []string
		}{req, strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")}
	}
	return cases
}

func TestAPI_ApplyWithProblemsAnswers400WithEveryProblemAndWritesNothing(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("alpha.yaml", alphaYAML, "more.yaml", betaGammaYAML), http.StatusOK)
	before := snapshot(t, c)
	t.Chdir("../..")

	for name, tc := range invalidCases(t) {
		t.Run(name, func(t *testing.T) {
			// With prune and a valid file next to the bad ones: still nothing is written.
			req := tc.req
			req.Files = append([]api.File{{Name: "valid.yaml", Content: betaYAML}}, req.Files...)
			got := callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/apply?prune=true", req, http.StatusBadRequest)
			if !slices.Equal(got.Problems, tc.want) {
				t.Errorf("problems:\ngot\n%s\nwant\n%s", strings.Join(got.Problems, "\n"), strings.Join(tc.want, "\n"))
			}
			if want := fmt.Sprintf("%s in the job files, nothing applied", problemCount(len(tc.want))); got.Error != want {
				t.Errorf("error: got %q, want %q", got.Error, want)
			}
			assertUnchanged(t, c, before, "a rejected apply")
		})
	}
}

func TestAPI_ApplyPruneDeletesExactlyTheJobsThatLeftTheFiles(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", withSet("test", files("alpha.yaml", alphaYAML, "more.yaml", betaGammaYAML)), http.StatusOK)

	// Without prune, jobs missing from the files stay.
	before := snapshot(t, c)
	res := callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", withSet("test", files("alpha.yaml", alphaYAML)), http.StatusOK)
	checkResult(t, res, nil, nil, []string{"alpha"}, nil)
	assertUnchanged(t, c, before, "an apply without prune")

	// With prune, gamma (gone from the files) goes, with its state; beta and alpha stay.
	res = callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply?prune=true", withSet("test", files("alpha.yaml", alphaYAML, "beta.yaml", betaYAML)), http.StatusOK)
	checkResult(t, res, nil, nil, []string{"alpha", "beta"}, []string{"gamma"})
	if keyExists(t, c, c.Keys.Job("gamma")) || keyExists(t, c, c.Keys.State("gamma")) {
		t.Error("gamma's definition or state is still stored after prune")
	}
	for _, name := range []string{"alpha", "beta"} {
		if !keyExists(t, c, c.Keys.Job(name)) || !keyExists(t, c, c.Keys.State(name)) {
			t.Errorf("%s was removed by prune, but it is in the files", name)
		}
	}
}

func TestAPI_DryRunReportsButWritesNothing(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", withSet("test", files("alpha.yaml", alphaYAML, "more.yaml", betaGammaYAML)), http.StatusOK)
	before := snapshot(t, c)
	newJob := "name: delta\nschedule: manual\ncommand: echo delta\n"
	res := callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply?prune=true&dry_run=true",
		withSet("test", files("alpha.yaml", strings.Replace(alphaYAML, "0 3", "0 4", 1), "delta.yaml", newJob)), http.StatusOK)
	checkResult(t, res, []string{"delta"}, []string{"alpha"}, nil, []string{"beta", "gamma"})
	if !res.DryRun || !res.Prune {
		t.Errorf("dry_run %v prune %v, want both true", res.DryRun, res.Prune)
	}
	assertUnchanged(t, c, before, "a dry run")
}

func TestAPI_BadRequestBodiesAre400AndChangeNothing(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("alpha.yaml", alphaYAML, "more.yaml", betaGammaYAML), http.StatusOK)
	before := snapshot(t, c)

	valid, err := json.Marshal(files("delta.yaml", "name: delta\nschedule: manual\ncommand: echo delta\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, body string
		status           int
	}{
		{"empty", "/v1/apply", "", 400},
		{"null", "/v1/apply", "null", 400},
		{"array", "/v1/apply", "[]", 400},
		{"string", "/v1/apply", `"files"`, 400},
		{"files not a list", "/v1/apply", `{"files":"x"}`, 400},
		{"name not a string", "/v1/apply", `{"files":[{"name":1,"content":""}]}`, 400},
		{"unknown field", "/v1/apply", `{"files":[],"force":true}`, 400},
		{"unknown file field", "/v1/apply", `{"files":[{"name":"a.yaml","content":"","mode":420}]}`, 400},
		{"no files", "/v1/apply", `{"files":[]}`, 400},
		{"empty file name", "/v1/apply", `{"files":[{"name":"","content":"name: x\nschedule: manual\ncommand: x\n"}]}`, 400},
		{"only comments", "/v1/apply?prune=true", `{"files":[{"name":"a.yaml","content":"# nothing\n"}]}`, 400},
		{"two values", "/v1/apply", string(valid) + string(valid), 400},
		{"trailing garbage", "/v1/apply", string(valid) + "x", 400},
		{"bad prune", "/v1/apply?prune=maybe", string(valid), 400},
		{"bad dry_run", "/v1/apply?dry_run=2", string(valid), 400},
		{"too large", "/v1/apply", `{"files":[{"name":"a.yaml","content":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}]}`, 413},
		{"run: env not a map", "/v1/jobs/beta/run", `{"env":"x"}`, 400},
		{"run: unknown field", "/v1/jobs/beta/run", `{"environment":{}}`, 400},
		{"run: array", "/v1/jobs/beta/run", `[1]`, 400},
		{"run: bad env name", "/v1/jobs/beta/run", `{"env":{"1X":"v"}}`, 400},
		{"run: dash in env name", "/v1/jobs/beta/run", `{"env":{"A-B":"v"}}`, 400},
		{"run: AION_ env", "/v1/jobs/beta/run", `{"env":{"AION_JOB":"other"}}`, 400},
		{"run: NUL in value", "/v1/jobs/beta/run", `{"env":{"A":"a\u0000b"}}`, 400},
		{"run: by (the token says who asks)", "/v1/jobs/beta/run", `{"by":"someone"}`, 400},
		{"run: bad job name", "/v1/jobs/Beta/run", `{}`, 400},
		{"run: unknown job", "/v1/jobs/nope/run", `{}`, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, tok, "POST", base+tt.path, tt.body)
			if status != tt.status {
				t.Errorf("status %d, want %d; body %.300s", status, tt.status, body)
			}
			var e api.ErrorResponse
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("body %.300s is not an error answer: %v", body, err)
			}
		})
	}
	// Every truncation of a valid body is malformed JSON.
	for i := range len(valid) {
		if status, body := call(t, tok, "POST", base+"/v1/apply?prune=true", valid[:i]); status != http.StatusBadRequest {
			t.Errorf("body truncated to %d bytes: status %d, want 400; body %s", i, status, body)
		}
	}
	assertUnchanged(t, c, before, "bad request bodies")
}

// FuzzDecodeBody checks that no body makes the decoder panic or accept
// something that is not exactly one api.ApplyRequest.
func FuzzDecodeBody(f *testing.F) {
	f.Add([]byte(`{"files":[{"name":"a.yaml","content":"name: a"}]}`))
	f.Add([]byte(`{"files":[]} {}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/apply", bytes.NewReader(body))
		var req api.ApplyRequest
		err := decodeBody(httptest.NewRecorder(), r, &req, false)
		if err == nil {
			var strict api.ApplyRequest
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if derr := dec.Decode(&strict); derr != nil {
				t.Errorf("accepted %q, which does not decode: %v", body, derr)
			}
		}
	})
}

func TestAPI_JobsListAndDetailShowNextRunsWithDST(t *testing.T) {
	c := clustertest.Start(t)
	now := time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC)
	base, tok := serve(t, c, fixedClock(now))
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("jobs.yaml", `jobs:
  - name: backup
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
    command: backup.sh
  - name: after-backup
    parents: [backup]
    command: verify.sh
  - name: reindex
    schedule: manual
    command: reindex.sh
  - name: paused
    schedule: "@hourly"
    disabled: true
    command: "true"
`), http.StatusOK)

	list := callJSON[api.JobList](t, tok, "GET", base+"/v1/jobs", nil, http.StatusOK)
	type row struct {
		name, schedule, zone, next string
		disabled                   bool
	}
	var got []row
	for _, j := range list.Jobs {
		next := ""
		if !j.Next.IsZero() {
			next = j.Next.Format(time.RFC3339)
		}
		got = append(got, row{j.Name, j.Schedule, j.Timezone, next, j.Disabled})
	}
	want := []row{
		{"after-backup", "after backup", "UTC", "", false},
		{"backup", "30 2 * * *", "Europe/Berlin", "2026-03-28T02:30:00+01:00", false},
		{"paused", "@hourly", "UTC", "", true},
		{"reindex", "manual", "UTC", "", false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("jobs:\ngot  %+v\nwant %+v", got, want)
	}

	detail := callJSON[api.JobDetail](t, tok, "GET", base+"/v1/jobs/backup", nil, http.StatusOK)
	if detail.Job.Name != "backup" || detail.Job.Command != "backup.sh" || !detail.State.AppliedAt.Equal(now) {
		t.Errorf("detail: job %+v state %+v", detail.Job, detail.State)
	}
	var next []string
	for _, n := range detail.Next {
		next = append(next, strings.TrimSpace(n.Time.Format(time.RFC3339)+" "+n.Wall+" "+n.Shift))
	}
	wantNext := []string{
		"2026-03-28T02:30:00+01:00 2026-03-28T02:30:00",
		"2026-03-29T03:00:00+02:00 2026-03-29T02:30:00 gap",
		"2026-03-30T02:30:00+02:00 2026-03-30T02:30:00",
		"2026-03-31T02:30:00+02:00 2026-03-31T02:30:00",
		"2026-04-01T02:30:00+02:00 2026-04-01T02:30:00",
	}
	if !slices.Equal(next, wantNext) {
		t.Errorf("next runs:\ngot  %q\nwant %q", next, wantNext)
	}
	if detail.Next[1].Note == "" {
		t.Error("the DST-shifted run has no note")
	}
	if detail.Fires == nil || len(detail.Fires) != 0 {
		t.Errorf("fires: got %v, want an empty list", detail.Fires)
	}
	if d := callJSON[api.JobDetail](t, tok, "GET", base+"/v1/jobs/reindex", nil, http.StatusOK); len(d.Next) != 0 {
		t.Errorf("manual job has next runs %v", d.Next)
	}
	callJSON[api.ErrorResponse](t, tok, "GET", base+"/v1/jobs/nope", nil, http.StatusNotFound)
	callJSON[api.ErrorResponse](t, tok, "GET", base+"/v1/jobs/Not_A_Name", nil, http.StatusBadRequest)
	callJSON[api.ErrorResponse](t, tok, "GET", base+"/v1/jobs/nope/fires", nil, http.StatusNotFound)
	callJSON[api.ErrorResponse](t, tok, "GET", base+"/v1/jobs/backup/fires?limit=0", nil, http.StatusBadRequest)
	if fl := callJSON[api.FireList](t, tok, "GET", base+"/v1/jobs/backup/fires", nil, http.StatusOK); fl.Fires == nil || len(fl.Fires) != 0 {
		t.Errorf("fires of a job never run: got %v, want an empty list", fl.Fires)
	}
}

func TestAPI_EnableAndDisable(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("alpha.yaml", alphaYAML), http.StatusOK)

	steps := []struct {
		action        string
		wantDisabled  bool
		wantChanged   bool
		wantListedOff bool
	}{
		{"disable", true, true, true},
		{"disable", true, false, true},
		{"enable", false, true, false},
		{"enable", false, false, false},
	}
	for _, s := range steps {
		res := callJSON[api.EnableResponse](t, tok, "POST", base+"/v1/jobs/alpha/"+s.action, nil, http.StatusOK)
		if res.Disabled != s.wantDisabled || res.Changed != s.wantChanged {
			t.Errorf("%s: got disabled %v changed %v, want %v %v", s.action, res.Disabled, res.Changed, s.wantDisabled, s.wantChanged)
		}
		detail := callJSON[api.JobDetail](t, tok, "GET", base+"/v1/jobs/alpha", nil, http.StatusOK)
		if detail.Job.Disabled != s.wantListedOff || detail.Job.Command != "echo alpha" {
			t.Errorf("after %s: stored job disabled %v, command %q", s.action, detail.Job.Disabled, detail.Job.Command)
		}
		list := callJSON[api.JobList](t, tok, "GET", base+"/v1/jobs", nil, http.StatusOK)
		if j := list.Jobs[0]; j.Disabled != s.wantListedOff || j.Next.IsZero() != s.wantListedOff {
			t.Errorf("after %s: listed disabled %v next %v", s.action, j.Disabled, j.Next)
		}
	}
	// Applying the file again restores what it says.
	callJSON[api.EnableResponse](t, tok, "POST", base+"/v1/jobs/alpha/disable", nil, http.StatusOK)
	res := callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("alpha.yaml", alphaYAML), http.StatusOK)
	checkResult(t, res, nil, []string{"alpha"}, nil, nil)
	callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/jobs/nope/enable", nil, http.StatusNotFound)
	callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/jobs/nope/disable", nil, http.StatusNotFound)
}

func TestAPI_DeleteIsRefusedWhileOtherJobsListItAsParent(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("jobs.yaml", `jobs:
  - name: extract
    schedule: manual
    command: "true"
  - name: clean-a
    parents: [extract]
    command: "true"
  - name: clean-b
    parents: [extract]
    command: "true"
`), http.StatusOK)
	before := snapshot(t, c)
	refused := callJSON[api.ErrorResponse](t, tok, "DELETE", base+"/v1/jobs/extract", nil, http.StatusConflict)
	if !strings.Contains(refused.Error, "clean-a, clean-b") {
		t.Errorf("error %q does not name the children clean-a, clean-b", refused.Error)
	}
	wantProblems := []string{"job clean-a lists extract in its parents", "job clean-b lists extract in its parents"}
	if !slices.Equal(refused.Problems, wantProblems) {
		t.Errorf("problems: got %q, want %q", refused.Problems, wantProblems)
	}
	assertUnchanged(t, c, before, "a refused delete")

	for _, name := range []string{"clean-a", "clean-b", "extract"} {
		res := callJSON[api.DeleteResponse](t, tok, "DELETE", base+"/v1/jobs/"+name, nil, http.StatusOK)
		if res.Deleted != name {
			t.Errorf("deleted %q, want %q", res.Deleted, name)
		}
		if keyExists(t, c, c.Keys.Job(name)) || keyExists(t, c, c.Keys.State(name)) || keyExists(t, c, c.Keys.ApplySet(name)) {
			t.Errorf("%s: definition, state or apply set still stored", name)
		}
	}
	callJSON[api.ErrorResponse](t, tok, "DELETE", base+"/v1/jobs/extract", nil, http.StatusNotFound)
}

func TestAPI_DeleteWithCascadeRemovesEveryDescendant(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("jobs.yaml", `jobs:
  - name: extract
    schedule: manual
    command: "true"
  - name: clean
    parents: [extract]
    command: "true"
  - name: report
    parents: [clean]
    command: "true"
  - name: other
    schedule: manual
    command: "true"
`), http.StatusOK)
	res := callJSON[api.DeleteResponse](t, tok, "DELETE", base+"/v1/jobs/extract?cascade=true", nil, http.StatusOK)
	if res.Deleted != "extract" || !slices.Equal(res.Cascaded, []string{"clean", "report"}) {
		t.Errorf("deleted %q with %q, want extract with [clean report]", res.Deleted, res.Cascaded)
	}
	for _, name := range []string{"extract", "clean", "report"} {
		if keyExists(t, c, c.Keys.Job(name)) || keyExists(t, c, c.Keys.State(name)) || keyExists(t, c, c.Keys.ApplySet(name)) {
			t.Errorf("%s: definition, state or apply set still stored", name)
		}
	}
	if !keyExists(t, c, c.Keys.Job("other")) {
		t.Error("an unrelated job was deleted")
	}
}

// waitFinal polls the fire until it is final and returns it.
func waitFinal(t *testing.T, tok, base, fire string) store.Fire {
	t.Helper()
	id, err := store.ParseFireID(fire)
	if err != nil {
		t.Fatal(err)
	}
	var f store.Fire
	clustertest.WaitFor(t, 20*time.Second, "fire "+fire+" to end", func() bool {
		status, body := call(t, tok, "GET", fireURL(base, id), nil)
		if status == http.StatusNotFound {
			return false // not planned yet
		}
		if status != http.StatusOK {
			t.Fatalf("GET fire %s: status %d: %s", fire, status, body)
		}
		if err := json.Unmarshal(body, &f); err != nil {
			t.Fatal(err)
		}
		return f.State.Final()
	})
	return f
}

func fireURL(base string, id store.FireID) string {
	return base + "/v1/fires/" + url.PathEscape(id.Job) + "/" + url.PathEscape(id.Suffix)
}

func TestAPI_RunReachesSucceededAndItsLogHasTheOutput(t *testing.T) {
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, map[string]string{"zone": "eu"})
	base, _ := serve(t, c, time.Now)
	tok := c.Token(t, "tester", "operator")
	admin := c.AdminToken(t)
	callJSON[api.ApplyResponse](t, admin, "POST", base+"/v1/apply", files("greet.yaml", `name: greet
schedule: manual
env:
  GREETING: from-job
command: echo "hello $GREETING"; echo "fire $AION_FIRE_ID"
`), http.StatusOK)

	run := callJSON[api.RunResponse](t, tok, "POST", base+"/v1/jobs/greet/run", api.RunRequest{}, http.StatusAccepted)
	id, err := store.ParseFireID(run.Fire)
	if err != nil || id.Job != "greet" || !strings.HasPrefix(id.Suffix, "manual-") || !strings.Contains(id.Suffix, ":") {
		t.Fatalf("fire ID %q: %v", run.Fire, err)
	}
	f := waitFinal(t, tok, base, run.Fire)
	if f.State != store.FireSucceeded || f.Node != "x1" || f.RequestedBy != "tester" || f.Trigger != store.TriggerManual {
		t.Errorf("fire: state %s node %q by %q trigger %s (%s)", f.State, f.Node, f.RequestedBy, f.Trigger, f.Reason)
	}
	wantOut := "hello from-job\nfire " + run.Fire + "\n"
	chunk := callJSON[api.LogChunk](t, tok, "GET", fireURL(base, id)+"/log", nil, http.StatusOK)
	if string(chunk.Data) != wantOut || chunk.Size != int64(len(wantOut)) || !chunk.Final || chunk.State != api.FireSucceeded {
		t.Errorf("log: data %q size %d final %v state %s; want %q", chunk.Data, chunk.Size, chunk.Final, chunk.State, wantOut)
	}
	chunk = callJSON[api.LogChunk](t, tok, "GET", fireURL(base, id)+"/log?offset=6", nil, http.StatusOK)
	if got, want := string(chunk.Data), wantOut[6:]; got != want || chunk.Offset != 6 {
		t.Errorf("log from offset 6: got %q at %d, want %q", got, chunk.Offset, want)
	}
	callJSON[api.ErrorResponse](t, tok, "GET", fireURL(base, id)+"/log?offset=-1", nil, http.StatusBadRequest)

	// The environment override reaches the command.
	run2 := callJSON[api.RunResponse](t, tok, "POST", base+"/v1/jobs/greet/run", api.RunRequest{Env: map[string]string{"GREETING": "from-override"}}, http.StatusAccepted)
	id2, _ := store.ParseFireID(run2.Fire)
	if f := waitFinal(t, tok, base, run2.Fire); f.State != store.FireSucceeded || f.RequestedBy != "tester" {
		t.Errorf("second fire: state %s by %q", f.State, f.RequestedBy)
	}
	chunk = callJSON[api.LogChunk](t, tok, "GET", fireURL(base, id2)+"/log", nil, http.StatusOK)
	if !strings.HasPrefix(string(chunk.Data), "hello from-override\n") {
		t.Errorf("log with the override: %q", chunk.Data)
	}

	// History, newest first; the job's state records the last result.
	clustertest.WaitFor(t, 10*time.Second, "the job state to record the last run", func() bool {
		d := callJSON[api.JobDetail](t, tok, "GET", base+"/v1/jobs/greet", nil, http.StatusOK)
		return d.State.LastFire == run2.Fire && d.State.LastResult == api.FireSucceeded
	})
	hist := callJSON[api.FireList](t, tok, "GET", base+"/v1/jobs/greet/fires?limit=5", nil, http.StatusOK)
	if len(hist.Fires) != 2 || hist.Fires[0].ID.String() != id2.String() || hist.Fires[1].ID.String() != id.String() {
		t.Errorf("history: got %+v, want %s then %s", hist.Fires, id2, id)
	}
	if one := callJSON[api.FireList](t, tok, "GET", base+"/v1/jobs/greet/fires?limit=1", nil, http.StatusOK); len(one.Fires) != 1 || one.Fires[0].ID.String() != id2.String() {
		t.Errorf("history limited to 1: %+v", one.Fires)
	}
	if got := callJSON[store.Fire](t, tok, "GET", fireURL(base, id), nil, http.StatusOK); got.ID != id {
		t.Errorf("GET fire: got %s, want %s", got.ID, id)
	}

	// The executor shows up with its load.
	clustertest.WaitFor(t, 5*time.Second, "x1's load report", func() bool {
		nodes := callJSON[api.NodeList](t, tok, "GET", base+"/v1/nodes", nil, http.StatusOK)
		return len(nodes.Nodes) == 1 && nodes.Nodes[0].ID == "x1" && nodes.Nodes[0].Slots == 4 &&
			nodes.Nodes[0].Labels["zone"] == "eu" && !nodes.Nodes[0].LastReport.IsZero()
	})

	callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/jobs/nope/run", api.RunRequest{}, http.StatusNotFound)
	callJSON[api.ErrorResponse](t, tok, "GET", base+"/v1/fires/greet/manual-1999-01-01T00:00:00Z", nil, http.StatusNotFound)
	callJSON[api.ErrorResponse](t, tok, "GET", base+"/v1/fires/greet/manual-1999-01-01T00:00:00Z/log", nil, http.StatusNotFound)
}

func TestAPI_RunOfAFailingJobRecordsItsExitCode(t *testing.T) {
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 2, nil)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("fail.yaml", "name: fail\nschedule: manual\ncommand: echo oops >&2; exit 7\n"), http.StatusOK)
	run := callJSON[api.RunResponse](t, tok, "POST", base+"/v1/jobs/fail/run", nil, http.StatusAccepted)
	f := waitFinal(t, tok, base, run.Fire)
	if f.State != store.FireFailed || f.ExitCode == nil || *f.ExitCode != 7 {
		t.Errorf("fire: state %s exit code %v, want failed with 7", f.State, f.ExitCode)
	}
	id, _ := store.ParseFireID(run.Fire)
	if chunk := callJSON[api.LogChunk](t, tok, "GET", fireURL(base, id)+"/log", nil, http.StatusOK); string(chunk.Data) != "oops\n" {
		t.Errorf("log: %q, want the command's stderr", chunk.Data)
	}
}

// putFire writes a fire record directly, as the leader would.
func putFire(t *testing.T, c *clustertest.Cluster, f store.Fire) {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Etcd.Put(context.Background(), c.Keys.Fire(f.ID), string(data)); err != nil {
		t.Fatal(err)
	}
}

func TestAPI_LogAnswersWhenThereIsNoOutputToFetch(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	now := time.Now().UTC()
	unplaced := store.Fire{ID: store.FireID{Job: "j", Suffix: "2026-11-24T02:00:00Z"}, State: store.FirePlanned, Reason: "no executor satisfies zone=mars", PlannedAt: now}
	ghost := store.Fire{ID: store.FireID{Job: "j", Suffix: "2026-11-24T03:00:00.5Z"}, State: store.FireRunning, Node: "ghost", PlannedAt: now, StartedAt: now}
	waiting := store.Fire{ID: store.FireID{Job: "j", Suffix: "2026-11-24T04:00:00Z"}, State: store.FirePlanned, Node: "ghost", PlannedAt: now}
	skipped := store.Fire{ID: store.FireID{Job: "j", Suffix: "2026-11-24T05:00:00Z"}, State: store.FireSkipped, Processed: true, Reason: "skipped: the previous run is still running", PlannedAt: now}
	silent := store.Fire{ID: store.FireID{Job: "j", Suffix: "2026-11-24T06:00:00Z"}, State: store.FireSucceeded, Processed: true, Node: "ghost", PID: 4242, PlannedAt: now, StartedAt: now, EndedAt: now}
	for _, f := range []store.Fire{unplaced, ghost, waiting, skipped, silent} {
		putFire(t, c, f)
	}

	e := callJSON[api.ErrorResponse](t, tok, "GET", fireURL(base, unplaced.ID)+"/log", nil, http.StatusConflict)
	if !strings.Contains(e.Error, "no executor yet") || !strings.Contains(e.Error, "zone=mars") {
		t.Errorf("unplaced fire: error %q", e.Error)
	}
	e = callJSON[api.ErrorResponse](t, tok, "GET", fireURL(base, ghost.ID)+"/log", nil, http.StatusBadGateway)
	if !strings.Contains(e.Error, "executor ghost") || !strings.Contains(e.Error, "not running") {
		t.Errorf("fire on a dead node: error %q", e.Error)
	}
	if chunk := callJSON[api.LogChunk](t, tok, "GET", fireURL(base, waiting.ID)+"/log", nil, http.StatusOK); len(chunk.Data) != 0 || chunk.Final || chunk.Note == "" {
		t.Errorf("fire not started: chunk %+v", chunk)
	}
	if chunk := callJSON[api.LogChunk](t, tok, "GET", fireURL(base, skipped.ID)+"/log", nil, http.StatusOK); len(chunk.Data) != 0 || !chunk.Final || !strings.Contains(chunk.Note, "previous run") {
		t.Errorf("skipped fire: chunk %+v", chunk)
	}
	// A run that wrote nothing has no output file (and its executor need not be asked).
	if chunk := callJSON[api.LogChunk](t, tok, "GET", fireURL(base, silent.ID)+"/log", nil, http.StatusOK); len(chunk.Data) != 0 || !chunk.Final || chunk.Note != "the run wrote no output" {
		t.Errorf("silent run: chunk %+v", chunk)
	}
	// The fire ID in the path keeps its ':' and '.' whether escaped or not.
	raw := base + "/v1/fires/j/2026-11-24T03:00:00.5Z"
	if got := callJSON[store.Fire](t, tok, "GET", raw, nil, http.StatusOK); got.ID != ghost.ID {
		t.Errorf("GET %s: fire %s", raw, got.ID)
	}
	if got := callJSON[api.FireList](t, tok, "GET", base+"/v1/jobs/j/fires", nil, http.StatusOK); len(got.Fires) != 5 {
		t.Errorf("history of a job that does not exist (any more): %d fires, want 5", len(got.Fires))
	}
}

func TestAPI_HealthAndUnknownRoutes(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	if status, body := call(t, tok, "GET", base+"/healthz", nil); status != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("healthz: %d %q", status, body)
	}
	if status, _ := call(t, tok, "GET", base+"/v1/nope", nil); status != http.StatusNotFound {
		t.Errorf("unknown route: %d, want 404", status)
	}
	if status, _ := call(t, tok, "PUT", base+"/v1/jobs", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("wrong method: %d, want 405", status)
	}
	if nodes := callJSON[api.NodeList](t, tok, "GET", base+"/v1/nodes", nil, http.StatusOK); nodes.Nodes == nil || len(nodes.Nodes) != 0 {
		t.Errorf("nodes of an empty cluster: %+v", nodes)
	}
}

func TestAPI_BackfillDryRunListsTimesAndWritesNothing(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("jobs.yaml", `name: report
schedule: "0 6 * * *"
command: "true"
`), http.StatusOK)
	// One of the seven days ran already: a backfill leaves it alone.
	putFire(t, c, store.Fire{ID: store.ScheduledFireID("report", time.Date(2026, 11, 3, 6, 0, 0, 0, time.UTC)), State: store.FireSucceeded, Processed: true})
	before := snapshot(t, c)
	req := api.BackfillRequest{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 7, 23, 59, 0, 0, time.UTC), DryRun: true}
	res := callJSON[api.BackfillResponse](t, tok, "POST", base+"/v1/jobs/report/backfill", req, http.StatusOK)
	if len(res.Times) != 7 || res.New != 6 || res.Request != "" {
		t.Errorf("dry run: %d times, %d new, request %q; want 7, 6 and none", len(res.Times), res.New, res.Request)
	}
	if res.Times[2].Fire != "report@2026-11-03T06:00:00Z" || !res.Times[2].Exists {
		t.Errorf("third time %+v, want the existing report@2026-11-03T06:00:00Z", res.Times[2])
	}
	assertUnchanged(t, c, before, "a dry-run backfill")
	req.DryRun = false
	req.To = req.From.Add(-time.Hour)
	callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/jobs/report/backfill", req, http.StatusBadRequest)
	assertUnchanged(t, c, before, "a backfill with to before from")
}
