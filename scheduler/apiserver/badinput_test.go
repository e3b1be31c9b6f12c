package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// fuzzMethods are the methods FuzzAPI picks from by index.
var fuzzMethods = []string{"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"}

// fuzzNow is the API's clock in FuzzAPI: answers and written values do not
// depend on when the input runs.
var fuzzNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// fuzzRuns are the lengths FuzzAPI's run argument picks from: "@@" in
// the path, query or body stands for that many 'x', so the inputs that
// cross a limit stay small (large inputs make the fuzzer slow).
var fuzzRuns = []int{0, 201, 257, jobspec.MaxTextBytes + 1, jobspec.MaxCommandBytes + 1, 100_000, jobspec.MaxFileSize + 1, api.MaxBodyBytes + 1}

// expand replaces the first "@@" with a run of 'x' of the chosen length.
func expand(s string, run uint8) string {
	return strings.Replace(s, "@@", strings.Repeat("x", fuzzRuns[int(run)%len(fuzzRuns)]), 1)
}

// serveDirect sends one request straight to the handler with an admin
// token's secret, its body as JSON; req is nil when the input is no
// request a client could send (bad URL or method).
func serveDirect(h http.Handler, token, method, target string, body io.Reader) (rec *httptest.ResponseRecorder, req *http.Request) {
	req, err := http.NewRequestWithContext(context.Background(), method, "http://aion.test"+target, body)
	if err != nil {
		return nil, nil
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "192.0.2.7:4711"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, req
}

// revision is etcd's current revision: any write moves it.
func revision(tb testing.TB, c *clustertest.Cluster) int64 {
	tb.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		tb.Fatal(err)
	}
	return resp.Header.Revision
}

// mustServe sends a request the test needs to succeed with want.
func mustServe(tb testing.TB, h http.Handler, token, method, target string, body any, want int) []byte {
	tb.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	rec, req := serveDirect(h, token, method, target, bytes.NewReader(data))
	if req == nil || rec.Code != want {
		tb.Fatalf("%s %s: status %v, want %d", method, target, rec, want)
	}
	return rec.Body.Bytes()
}

// etcdState reads every key under the prefix: value only (contents), or
// with create and mod revisions (any write shows).
func etcdState(tb testing.TB, c *clustertest.Cluster, revisions bool) map[string]string {
	tb.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Prefix, clientv3.WithPrefix())
	if err != nil {
		tb.Fatal(err)
	}
	m := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m[string(kv.Key)] = string(kv.Value)
		if revisions {
			m[string(kv.Key)] = fmt.Sprintf("%d/%d %s", kv.CreateRevision, kv.ModRevision, kv.Value)
		}
	}
	return m
}

// restoreState puts the contents back in one transaction.
func restoreState(tb testing.TB, c *clustertest.Cluster, contents map[string]string) {
	tb.Helper()
	now := etcdState(tb, c, false)
	var ops []clientv3.Op
	for k := range now {
		if _, ok := contents[k]; !ok {
			ops = append(ops, clientv3.OpDelete(k))
		}
	}
	for k, v := range contents {
		if old, ok := now[k]; !ok || old != v {
			ops = append(ops, clientv3.OpPut(k, v))
		}
	}
	if _, err := c.Etcd.Txn(context.Background()).Then(ops...).Commit(); err != nil {
		tb.Fatal(err)
	}
}

// seedFuzzState applies a small job set and writes fire records in each
// state the fire routes treat differently, plus one executor registration.
func seedFuzzState(tb testing.TB, c *clustertest.Cluster, h http.Handler, token string) {
	tb.Helper()
	mustServe(tb, h, token, "POST", "/v1/apply", files("jobs.yaml", `jobs:
  - name: alpha
    schedule: "0 3 * * *"
    command: echo alpha
  - name: beta
    schedule: manual
    args: [echo, beta]
  - name: gamma
    parents: [alpha]
    command: echo gamma
  - name: tick
    schedule: "@hourly"
    timezone: Europe/Berlin
    command: "true"
`), http.StatusOK)
	exit1 := 1
	fires := []store.Fire{
		{ID: store.ScheduledFireID("alpha", time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)), State: store.FireSucceeded, Processed: true, Node: "ghost"},
		{ID: store.ScheduledFireID("alpha", time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)), State: store.FireRunning, Node: "ghost", Attempt: 1},
		{ID: store.ScheduledFireID("alpha", time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)), State: store.FirePlanned, Reason: "no executor satisfies zone=mars"},
		{ID: store.ScheduledFireID("tick", time.Date(2026, 11, 24, 10, 0, 0, 500_000_000, time.UTC)), State: store.FirePlanned, Node: "ghost"},
		{ID: store.FireID{Job: "gamma", Suffix: "after-alpha@2026-11-23T03:00:00Z"}, State: store.FireFailed, Processed: true, Node: "ghost", ExitCode: &exit1, OutputPath: "/var/lib/aion/out/gamma"},
		// A record no executor could have written: its node is no subject token.
		{ID: store.ScheduledFireID("alpha", time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)), State: store.FireRunning, Node: "x.>"},
		// The history of a deleted job stays.
		{ID: store.ScheduledFireID("gone", time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)), State: store.FirePlanned, Node: "ghost"},
	}
	for _, f := range fires {
		f.PlannedAt = fuzzNow
		data, err := json.Marshal(f)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := c.Etcd.Put(context.Background(), c.Keys.Fire(f.ID), string(data)); err != nil {
			tb.Fatal(err)
		}
	}
	node := clustertest.JSON(tb, store.Node{ID: "ghost", Slots: 2, StartedAt: fuzzNow})
	if _, err := c.Etcd.Put(context.Background(), c.Keys.Node("ghost"), string(node)); err != nil {
		tb.Fatal(err)
	}
}

type fuzzSeed struct {
	method string
	path   string
	query  string
	body   string
	run    uint8 // index into fuzzRuns
}

// fuzzSeeds are hostile (and some valid) requests for every route; run by
// plain `go test`, they are the regression suite of FuzzAPI.
func fuzzSeeds(tb testing.TB) []fuzzSeed {
	validApply := clustertest.JSON(tb, files("jobs.yaml", "name: delta\nschedule: manual\ncommand: echo delta\n"))
	prunedApply := clustertest.JSON(tb, files("jobs.yaml", "name: alpha\nschedule: \"0 3 * * *\"\ncommand: echo alpha\n"))
	badYAML := clustertest.JSON(tb, files("a.yaml", "name: ok\nschedule: manual\ncommand: x\n", "b.yaml", "jobs:\n  - name: \"orders.>\"\n    schedule: manual\n    command: x\n  - name: c\n    parents: [c]\n    command: \"unclosed\n"))
	cycle := clustertest.JSON(tb, files("a.yaml", "name: a\nparents: [b]\ncommand: x\n", "b.yaml", "name: b\nparents: [a]\ncommand: x\n"))
	unknownField := clustertest.JSON(tb, files("a.yaml", "name: a\nschedule: manual\ncommand: x\ntimout: 5m\n"))
	bigCommand := clustertest.JSON(tb, files("a.yaml", "name: a\nschedule: manual\ncommand: @@\n"))
	var bombYAML strings.Builder // 300 copies of a job with 500 variables, in 12 KB
	bombYAML.WriteString("jobs:\n  - &j {name: a, schedule: manual, command: x, env: {")
	for i := range 500 {
		fmt.Fprintf(&bombYAML, "V%d: x, ", i)
	}
	bombYAML.WriteString("}}\n" + strings.Repeat("  - *j\n", 300))
	bomb := clustertest.JSON(tb, files("bomb.yaml", bombYAML.String()))
	const huge = "99999999999999999999"

	seeds := []fuzzSeed{
		{"GET", "/healthz", "", "", 0},
		{"GET", "/v1/nope", "", "", 0},
		{"PUT", "/v1/jobs", "", "", 0},
		{"OPTIONS", "/v1/apply", "", "", 0},
		{"GET", "/v1/jobs/alpha/../../healthz", "", "", 0},
		{"GET", "/v1/nodes", "x=@@", "", 5},
		// tokens
		{"GET", "/v1/tokens", "", "", 0},
		{"POST", "/v1/tokens", "", `{"name":"ci","role":"viewer"}`, 0},
		{"POST", "/v1/tokens", "", `{"name":"ci","role":"root"}`, 0},
		{"POST", "/v1/tokens", "", `{"name":"@@","role":"admin"}`, 1},
		{"POST", "/v1/tokens", "", `{"name":"a/b","role":"admin"}`, 0},
		{"POST", "/v1/tokens", "", `{"name":"ci","role":"viewer","secret":"aion_x"}`, 0},
		{"POST", "/v1/tokens", "", "", 0},
		{"DELETE", "/v1/tokens/nobody", "", "", 0},
		{"DELETE", "/v1/tokens/%3E", "", "", 0},
		{"DELETE", "/v1/tokens/@@", "", "", 1},
		// apply
		{"POST", "/v1/apply", "", string(validApply), 0},
		{"POST", "/v1/apply", "prune=true", string(prunedApply), 0},
		{"POST", "/v1/apply", "prune=true&dry_run=true", string(prunedApply), 0},
		{"POST", "/v1/apply", "prune=maybe", string(validApply), 0},
		{"POST", "/v1/apply", "dry_run=@@", string(validApply), 5},
		{"POST", "/v1/apply", "prune=true", string(badYAML), 0},
		{"POST", "/v1/apply", "prune=true", string(cycle), 0},
		{"POST", "/v1/apply", "", string(unknownField), 0},
		{"POST", "/v1/apply", "", string(bigCommand), 4},
		{"POST", "/v1/apply", "", `{"files":[{"name":"a.yaml","content":"name: a\nschedule: manual\ncommand: x\ndescription: @@"}]}`, 3},
		{"POST", "/v1/apply", "", `{"files":[{"name":"big.yaml","content":"@@"}]}`, 6},
		{"POST", "/v1/apply", "", string(bomb), 0},
		{"POST", "/v1/apply", "", `{"files":[{"name":"a.yaml","content":"name: a\nschedule: manual\nargs: &x [*x]\n"}]}`, 0},
		{"POST", "/v1/apply", "", `{"files":[{"name":"a.yaml","content":"name: a"}],"force":true}`, 0},
		{"POST", "/v1/apply", "", `{"files":[{"name":"","content":"name: a"}]}`, 0},
		{"POST", "/v1/apply", "", `{"files":[{"name":"a.yaml","content":"\u0000\ufffe"}]}`, 0},
		{"POST", "/v1/apply", "", `{"files":`, 0},
		{"POST", "/v1/apply", "", `[]`, 0},
		{"POST", "/v1/apply", "", "", 0},
		{"POST", "/v1/apply", "prune=true", `{"files":[{"name":"a.yaml","content":"@@"}]}`, 7},
		// jobs
		{"GET", "/v1/jobs", "", "", 0},
		{"GET", "/v1/jobs/alpha", "", "", 0},
		{"GET", "/v1/jobs/orders.>", "", "", 0},
		{"GET", "/v1/jobs/orders.*", "", "", 0},
		{"GET", "/v1/jobs/a%20b", "", "", 0},
		{"GET", "/v1/jobs/a%2Fb", "", "", 0},
		{"GET", "/v1/jobs/%2E%2E", "", "", 0},
		{"GET", "/v1/jobs/a%00b", "", "", 0},
		{"GET", "/v1/jobs/@@", "", "", 2},
		{"DELETE", "/v1/jobs/alpha", "", "", 0},
		{"DELETE", "/v1/jobs/alpha", "cascade=maybe", "", 0},
		{"DELETE", "/v1/jobs/alpha", "cascade=true", "", 0},
		{"DELETE", "/v1/jobs/gamma", "", "", 0},
		{"DELETE", "/v1/jobs/nope", "", "", 0},
		{"DELETE", "/v1/jobs/a.b", "", "", 0},
		{"POST", "/v1/jobs/alpha/enable", "", "", 0},
		{"POST", "/v1/jobs/alpha/disable", "", "", 0},
		{"POST", "/v1/jobs/nope/disable", "", "", 0},
		{"POST", "/v1/jobs/%3E/disable", "", "", 0},
		// run
		{"POST", "/v1/jobs/beta/run", "", "", 0},
		{"POST", "/v1/jobs/beta/run", "", `{"env":{"GREETING":"hi"},"args":["x"],"downstream":true}`, 0},
		{"POST", "/v1/jobs/nope/run", "", `{}`, 0},
		{"POST", "/v1/jobs/beta.%3E/run", "", `{}`, 0},
		{"POST", "/v1/jobs/beta%2A/run", "", `{}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{"env":{"A":"a\u0000b"}}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{"env":{"A=B":"x"}}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{"env":{"A.B":"x","A B":"y","":"z"}}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{"env":{"AION_FIRE_ID":"x"}}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{"env":{"A":"@@"}}`, 4},
		{"POST", "/v1/jobs/beta/run", "", `{"args":["@@"]}`, 4},
		{"POST", "/v1/jobs/beta/run", "", `{"args":["a\u0000"]}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{"args":["@@"]}`, 2},
		{"POST", "/v1/jobs/beta/run", "", `{"environment":{}}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{"env":"x"}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{} {}`, 0},
		{"POST", "/v1/jobs/beta/run", "", `{"args":["@@"]}`, 7},
		// fires of a job
		{"GET", "/v1/jobs/alpha/fires", "", "", 0},
		{"GET", "/v1/jobs/alpha/fires", "limit=-1", "", 0},
		{"GET", "/v1/jobs/alpha/fires", "limit=0", "", 0},
		{"GET", "/v1/jobs/alpha/fires", "limit=1001", "", 0},
		{"GET", "/v1/jobs/alpha/fires", "limit=" + huge, "", 0},
		{"GET", "/v1/jobs/alpha/fires", "limit=@@", "", 5},
		{"GET", "/v1/jobs/alpha/fires", "limit=1&limit=x", "", 0},
		{"GET", "/v1/jobs/alpha/fires", "limit=%00", "", 0},
		{"GET", "/v1/jobs/deleted-long-ago/fires", "", "", 0},
		// backfill
		{"POST", "/v1/jobs/alpha/backfill", "", `{"from":"2026-11-01T00:00:00Z","to":"2026-11-07T00:00:00Z","dry_run":true}`, 0},
		{"POST", "/v1/jobs/alpha/backfill", "", `{"from":"2026-11-01T00:00:00Z","to":"2026-11-07T00:00:00Z","parallel":2}`, 0},
		{"POST", "/v1/jobs/alpha/backfill", "", `{"from":"2026-11-07T00:00:00Z","to":"2026-11-01T00:00:00Z"}`, 0},
		{"POST", "/v1/jobs/alpha/backfill", "", `{"from":"0001-01-01T00:00:01Z","to":"9999-12-31T23:59:59Z"}`, 0},
		{"POST", "/v1/jobs/tick/backfill", "", `{"from":"2000-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z","dry_run":true}`, 0},
		{"POST", "/v1/jobs/alpha/backfill", "", `{"from":"2026-11-01T00:00:00Z"}`, 0},
		{"POST", "/v1/jobs/alpha/backfill", "", `{"from":"2026-11-01","to":"2026-11-02"}`, 0},
		{"POST", "/v1/jobs/alpha/backfill", "", `{"from":"2026-11-01T00:00:00Z","to":"2026-11-02T00:00:00Z","parallel":-1}`, 0},
		{"POST", "/v1/jobs/beta/backfill", "", `{"from":"2026-11-01T00:00:00Z","to":"2026-11-02T00:00:00Z"}`, 0},
		{"POST", "/v1/jobs/nope/backfill", "", `{"from":"2026-11-01T00:00:00Z","to":"2026-11-02T00:00:00Z"}`, 0},
		{"POST", "/v1/jobs/alpha/backfill", "", "", 0},
		// pause and resume
		{"POST", "/v1/jobs/alpha/pause", "", `{"note":"maintenance"}`, 0},
		{"POST", "/v1/jobs/alpha/pause", "", `{"note":"@@"}`, 2},
		{"POST", "/v1/jobs/alpha/resume", "", `{"catchup":true}`, 0},
		{"POST", "/v1/jobs/nope/pause", "", "", 0},
		{"POST", "/v1/jobs/alpha/pause", "", `{"note":1}`, 0},
		// fires
		{"GET", "/v1/fires/alpha/2026-11-23T03:00:00Z", "", "", 0},
		{"GET", "/v1/fires/tick/2026-11-24T10:00:00.5Z", "", "", 0},
		{"GET", "/v1/fires/alpha/..%2F..%2Fjobs%2Falpha", "", "", 0},
		{"GET", "/v1/fires/alpha/%2E%2E", "", "", 0},
		{"GET", "/v1/fires/alpha/.hidden", "", "", 0},
		{"GET", "/v1/fires/alpha/a%00b", "", "", 0},
		{"GET", "/v1/fires/alpha/*", "", "", 0},
		{"GET", "/v1/fires/alpha/%3E", "", "", 0},
		{"GET", "/v1/fires/alpha/a%20b.c", "", "", 0},
		{"GET", "/v1/fires/alpha/@@", "", "", 1},
		{"GET", "/v1/fires/alpha.%3E/2026-11-23T03:00:00Z", "", "", 0},
		{"GET", "/v1/fires/alpha/2026-11-23T03:00:00Z/log", "", "", 0},
		{"GET", "/v1/fires/alpha/2026-11-24T03:00:00Z/log", "offset=5", "", 0},
		{"GET", "/v1/fires/alpha/2026-11-25T03:00:00Z/log", "", "", 0},
		{"GET", "/v1/fires/tick/2026-11-24T10:00:00.5Z/log", "", "", 0},
		{"GET", "/v1/fires/gamma/after-alpha@2026-11-23T03:00:00Z/log", "", "", 0},
		{"GET", "/v1/fires/alpha/2026-11-22T03:00:00Z/log", "", "", 0},
		{"GET", "/v1/fires/alpha/2026-11-23T03:00:00Z/log", "offset=-1", "", 0},
		{"GET", "/v1/fires/alpha/2026-11-23T03:00:00Z/log", "offset=" + huge, "", 0},
		{"POST", "/v1/fires/alpha/2026-11-25T03:00:00Z/kill", "", `{}`, 0},
		{"POST", "/v1/fires/alpha/2026-11-23T03:00:00Z/kill", "", "", 0},
		{"POST", "/v1/fires/alpha/1999-01-01T00:00:00Z/kill", "", "", 0},
		{"POST", "/v1/fires/alpha/2026-11-25T03:00:00Z/kill", "", `{"args":["@@"]}`, 2},
		{"POST", "/v1/fires/alpha/2026-11-25T03:00:00Z/kill", "", `{"args":`, 0},
		{"POST", "/v1/fires/alpha/*/kill", "", "", 0},
		{"POST", "/v1/fires/%2A/x/kill", "", "", 0},
		{"POST", "/v1/fires/gone/2026-11-24T03:00:00Z/kill", "", "", 0},
		{"GET", "/v1/jobs/gone/fires", "", "", 0},
		{"DELETE", "/v1/fires/alpha/2026-11-25T03:00:00Z", "", "", 0},
	}
	return seeds
}

// FuzzAPI sends arbitrary requests to the real handler on a real etcd.
// For every input: no panic; no 5xx but a 502 from an executor that does
// not answer for a log and a 503 from etcd not answering; every answer
// from 400 up is a JSON api.ErrorResponse; every 2xx answer is JSON; and an
// answer from 400 up changed nothing in etcd (any write would change a
// revision). State changed by a 2xx answer is put back, so inputs do not
// depend on each other.
func FuzzAPI(f *testing.F) {
	c := clustertest.Start(f)
	if _, err := store.LogSigningKey(context.Background(), c.Etcd, c.Keys); err != nil { // as an executor's start does
		f.Fatal(err)
	}
	h := New(c.Etcd, c.NATS, c.Keys, "aion.", zap.NewNop(), fixedClock(fuzzNow)).Handler()
	token := c.AdminToken(f)
	seedFuzzState(f, c, h, token)
	// Between inputs etcd holds contents at revision rev (with revisions:
	// state); nothing else writes to it.
	contents, state, rev := etcdState(f, c, false), etcdState(f, c, true), revision(f, c)
	for _, s := range fuzzSeeds(f) {
		f.Add(uint8(slices.Index(fuzzMethods, s.method)), s.path, s.query, []byte(s.body), s.run)
	}
	f.Fuzz(func(t *testing.T, method uint8, path, query string, body []byte, run uint8) {
		path, query = expand(path, run), expand(query, run)
		if !strings.HasPrefix(path, "/") {
			path = "/v1/" + path
		}
		target := path
		if query != "" {
			target += "?" + query
		}
		if bytes.Contains(body, []byte("@@")) {
			body = []byte(expand(string(body), run))
		}
		defer func() { // put back what a 2xx answer (or a failure) changed
			if revision(t, c) != rev {
				restoreState(t, c, contents)
				state, rev = etcdState(t, c, true), revision(t, c)
			}
		}()
		rec, req := serveDirect(h, token, fuzzMethods[int(method)%len(fuzzMethods)], target, bytes.NewReader(body))
		if req == nil {
			return
		}
		status, answer := rec.Code, rec.Body.Bytes()
		what := fmt.Sprintf("%s %.200q (body %d bytes)", fuzzMethods[int(method)%len(fuzzMethods)], target, len(body))
		if status >= 400 {
			var e api.ErrorResponse
			dec := json.NewDecoder(bytes.NewReader(answer))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil || e.Error == "" || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s: status %d with a body that is no error answer (%v, %s): %.300q", what, status, err, rec.Header().Get("Content-Type"), answer)
			}
			isLog := strings.HasSuffix(req.URL.Path, "/log")
			switch {
			case status < 500:
			case status == http.StatusBadGateway && isLog && (strings.HasPrefix(e.Error, "executor ") || strings.Contains(e.Error, "not a valid node ID")):
			case status == http.StatusServiceUnavailable && strings.HasPrefix(e.Error, "etcd did not answer in time"):
			default:
				t.Fatalf("%s: status %d: %s", what, status, e.Error)
			}
		} else if status >= 200 && status < 300 && req.URL.Path != "/healthz" && !json.Valid(answer) {
			t.Fatalf("%s: status %d with a body that is not JSON: %.300q", what, status, answer)
		}
		if status >= 400 && revision(t, c) != rev {
			after := etcdState(t, c, true)
			for k, v := range after {
				if state[k] != v {
					t.Errorf("%s: status %d, but key %s changed: %.200q -> %.200q", what, status, k, state[k], v)
				}
			}
			for k := range state {
				if _, ok := after[k]; !ok {
					t.Errorf("%s: status %d, but key %s was deleted", what, status, k)
				}
			}
			t.Fatalf("%s: status %d, but etcd was written to", what, status)
		}
	})
}

// oversizeCase is one oversized input and the exact answer to it.
type oversizeCase struct {
	name         string
	method, path string
	body         any
	status       int
	err          string
	problems     []string
}

// TestAPI_OversizedInputsAreRefusedWithTheirLimitAndChangeNothing: each
// limit, through the API, with the exact answer; etcd is unchanged after
// every refusal. Then the values exactly at a limit are accepted.
func TestAPI_OversizedInputsAreRefusedWithTheirLimitAndChangeNothing(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("alpha.yaml", alphaYAML, "more.yaml", betaGammaYAML), http.StatusOK)
	before := snapshot(t, c)

	job := "name: big\nschedule: manual\ncommand: "
	command := func(n int) string { return job + strings.Repeat("x", n) + "\n" }
	var parents strings.Builder
	parents.WriteString("jobs:\n")
	var names []string
	for i := range jobspec.MaxParents + 1 {
		fmt.Fprintf(&parents, "  - name: p%d\n    schedule: manual\n    command: \"true\"\n", i)
		names = append(names, fmt.Sprintf("p%d", i))
	}
	parents.WriteString("  - name: child\n    command: \"true\"\n    parents: [" + strings.Join(names, ", ") + "]\n")
	notRun := "nothing run"
	tests := []oversizeCase{
		{"command", "POST", "/v1/apply?prune=true", files("big.yaml", command(jobspec.MaxCommandBytes+1)), 400,
			"1 problem in the job files, nothing applied", []string{"big.yaml:3:10: command: too long: 65537 bytes, the limit is 65536"}},
		{"env", "POST", "/v1/apply", files("big.yaml", "name: big\nschedule: manual\ncommand: env\nenv:\n  A: "+strings.Repeat("a", 40_000)+"\n  B: "+strings.Repeat("b", 25_535)+"\n"), 400,
			"1 problem in the job files, nothing applied", []string{"big.yaml:5:3: env: too large: 65537 bytes, the limit is 65536"}},
		{"description", "POST", "/v1/apply", files("big.yaml", "name: big\nschedule: manual\ncommand: x\ndescription: "+strings.Repeat("d", jobspec.MaxTextBytes+1)+"\n"), 400,
			"1 problem in the job files, nothing applied", []string{"big.yaml:4:14: description: too long: 4097 bytes, the limit is 4096"}},
		{"parents", "POST", "/v1/apply", files("dag.yaml", parents.String()), 400,
			"1 problem in the job files, nothing applied", []string{"dag.yaml:199:14: parents: too many parents: 65, the limit is 64"}},
		{"file", "POST", "/v1/apply", files("ok.yaml", betaYAML, "huge.yaml", job+"x\n#"+strings.Repeat(" ", jobspec.MaxFileSize)), 400,
			"1 problem in the job files, nothing applied", []string{"huge.yaml: file larger than 4194304 bytes"}},
		{"body", "POST", "/v1/apply", `{"files":[{"name":"a.yaml","content":"` + strings.Repeat(" ", api.MaxBodyBytes) + `"}]}`, 413,
			"request body larger than 8388608 bytes", nil},
		{"run: env", "POST", "/v1/jobs/beta/run", api.RunRequest{Env: map[string]string{"A": strings.Repeat("x", jobspec.MaxEnvBytes)}}, 400,
			"bad environment overrides, " + notRun, []string{"env: too large: 65537 bytes, the limit is 65536"}},
		{"run: args", "POST", "/v1/jobs/beta/run", api.RunRequest{Args: []string{strings.Repeat("x", jobspec.MaxCommandBytes)}}, 400,
			"bad arguments, " + notRun, []string{"args: too long: 65537 bytes (one more per argument), the limit is 65536"}},
		{"run: a flood of empty args", "POST", "/v1/jobs/beta/run", api.RunRequest{Args: make([]string, 1_000_000)}, 400,
			"bad arguments, " + notRun, []string{"args: too long: 1000000 bytes (one more per argument), the limit is 65536"}},
		{"run: by is no field", "POST", "/v1/jobs/beta/run", `{"by":"someone else"}`, 400, `bad request body: json: unknown field "by"`, nil},
		{"kill: by is no field", "POST", "/v1/fires/beta/manual-2026-01-01T00:00:00Z/kill", `{"by":"someone else"}`, 400, `bad request body: json: unknown field "by"`, nil},
		{"pause: note", "POST", "/v1/jobs/alpha/pause", api.PauseRequest{Note: strings.Repeat("n", 257)}, 400, "note: longer than 256 bytes", nil},
		{"backfill: range", "POST", "/v1/jobs/alpha/backfill", api.BackfillRequest{From: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), DryRun: true}, 400,
			"the range holds more than 10000 nominal times; backfill it in parts", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := callJSON[api.ErrorResponse](t, tok, tt.method, base+tt.path, tt.body, tt.status)
			if got.Error != tt.err || !slices.Equal(got.Problems, tt.problems) {
				t.Errorf("answer:\n%q %q\nwant\n%q %q", got.Error, got.Problems, tt.err, tt.problems)
			}
			assertUnchanged(t, c, before, tt.name)
		})
	}

	// Fields without a limit of their own that add up: the whole job is
	// too large as stored.
	huge := callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/apply", files("huge.yaml", "name: huge\nschedule: manual\ncontainer:\n  image: "+strings.Repeat("i", jobspec.MaxJobBytes)+"\n"), http.StatusBadRequest)
	if len(huge.Problems) != 1 || !strings.HasPrefix(huge.Problems[0], "huge.yaml:1:1: job huge is too large: ") || !strings.HasSuffix(huge.Problems[0], " bytes as stored, the limit is 1048576 (shorten its long values and lists)") {
		t.Errorf("answer to a job too large as stored: %q %q", huge.Error, huge.Problems)
	}
	assertUnchanged(t, c, before, "a job too large as stored")

	// A file of 200000 problems (800 KB): the answer lists the first 1000.
	flood := callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/apply", files("flood.yaml", "jobs:\n"+strings.Repeat("- 1\n", 200_000)), http.StatusBadRequest)
	if flood.Error != "200000 problems in the job files, nothing applied" || len(flood.Problems) != maxProblems+1 ||
		flood.Problems[0] != `flood.yaml:2:3: jobs[0]: want a job (a mapping with name, schedule, command...), got "1"` ||
		flood.Problems[maxProblems] != "... and 199000 more" {
		t.Errorf("answer to 200000 problems: %q with %d lines, last %q", flood.Error, len(flood.Problems), flood.Problems[len(flood.Problems)-1])
	}
	assertUnchanged(t, c, before, "a file of 200000 problems")

	// Exactly at the limits: accepted.
	res := callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("big.yaml", command(jobspec.MaxCommandBytes)), http.StatusOK)
	checkResult(t, res, []string{"big"}, nil, nil, nil)
	d := callJSON[api.JobDetail](t, tok, "GET", base+"/v1/jobs/big", nil, http.StatusOK)
	if len(d.Job.Command) != jobspec.MaxCommandBytes {
		t.Errorf("stored command of %d bytes, want %d", len(d.Job.Command), jobspec.MaxCommandBytes)
	}
	env := map[string]string{"A": strings.Repeat("x", jobspec.MaxEnvBytes-1)}
	args := []string{strings.Repeat("y", jobspec.MaxCommandBytes-1)}
	callJSON[api.RunResponse](t, tok, "POST", base+"/v1/jobs/beta/run", api.RunRequest{Env: env, Args: args}, http.StatusAccepted)
}

// TestAPI_NamesThatWouldChangeASubjectOrKeyAreRefusedOnEveryRoute: a job
// name is an etcd key segment and a NATS subject token (aion.events.<job>),
// so no route may take one with a wildcard, dot, space or slash.
func TestAPI_NamesThatWouldChangeASubjectOrKeyAreRefusedOnEveryRoute(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("alpha.yaml", alphaYAML, "more.yaml", betaGammaYAML), http.StatusOK)
	ghostFire := store.Fire{ID: store.ScheduledFireID("alpha", time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)), State: store.FireRunning, Node: "ghost", Attempt: 1}
	badFire := store.Fire{ID: store.ScheduledFireID("alpha", time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)), State: store.FireRunning, Node: "x.>", Attempt: 1}
	putFire(t, c, ghostFire)
	putFire(t, c, badFire)
	before := snapshot(t, c)

	routes := []struct{ method, path string }{
		{"GET", "/v1/jobs/%s"}, {"DELETE", "/v1/jobs/%s"}, {"POST", "/v1/jobs/%s/run"},
		{"POST", "/v1/jobs/%s/enable"}, {"POST", "/v1/jobs/%s/disable"}, {"GET", "/v1/jobs/%s/fires"},
		{"POST", "/v1/jobs/%s/backfill"}, {"POST", "/v1/jobs/%s/pause"}, {"POST", "/v1/jobs/%s/resume"},
		{"GET", "/v1/fires/%s/2026-11-24T03:00:00Z"}, {"GET", "/v1/fires/%s/2026-11-24T03:00:00Z/log"},
		{"POST", "/v1/fires/%s/2026-11-24T03:00:00Z/kill"},
	}
	for _, raw := range []string{"orders.%3E", "%3E", "%2A", "alpha%2A", "alpha.beta", "alpha%20beta", "alpha%09", "alpha%2Fbeta", "%2E%2E", "alpha%00", "Alpha"} {
		name, err := url.PathUnescape(raw)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%q is not a job name: job names are 1-63 lower-case letters, digits, '-' or '_'", name)
		for _, rt := range routes {
			path := fmt.Sprintf(rt.path, raw)
			if got := callJSON[api.ErrorResponse](t, tok, rt.method, base+path, nil, http.StatusBadRequest); got.Error != want {
				t.Errorf("%s %s: error %q, want %q", rt.method, path, got.Error, want)
			}
		}
	}

	// A fire suffix names a key below fires/<job>/ and never a subject: it
	// may not leave that prefix, and '*', '>', spaces and control
	// characters are refused too (no fire ID of Aion's has them).
	for raw, status := range map[string]int{
		"..%2F..%2Fjobs%2Falpha": 400, "%2E%2E": 400, ".x": 400, "a%00b": 400, strings.Repeat("s", 201): 400,
		"%2A": 400, "%3E": 400, "a%20b": 400, "2026-11-24T03:00:00Z.%3E": 400, "a%09b": 400,
		"2030-01-01T00:00:00Z": 404, "manual-2030-01-01T00:00:00.5Z": 404,
	} {
		for _, suffix := range []string{"", "/log", "/kill"} {
			method := map[string]string{"": "GET", "/log": "GET", "/kill": "POST"}[suffix]
			path := "/v1/fires/alpha/" + raw + suffix
			got := callJSON[api.ErrorResponse](t, tok, method, base+path, nil, status)
			if !strings.HasPrefix(got.Error, map[int]string{400: `fire ID "alpha@`, 404: `no fire alpha@`}[status]) {
				t.Errorf("%s %s: error %q", method, path, got.Error)
			}
		}
	}

	// Apply: names and parents with wildcards, dots, spaces, slashes.
	got := callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/apply?prune=true", files("bad.yaml", `jobs:
  - {name: "orders.*", schedule: manual, command: x}
  - {name: "a b", schedule: manual, command: x}
  - {name: "a/b", schedule: manual, command: x}
  - {name: ok, parents: ["alpha.>", "x y"], command: x}
`), http.StatusBadRequest)
	wantProblems := []string{
		`bad.yaml:2:12: name: "orders.*" is not a valid name: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit`,
		`bad.yaml:3:12: name: "a b" is not a valid name: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit`,
		`bad.yaml:4:12: name: "a/b" is not a valid name: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit`,
		`bad.yaml:5:26: parents[0]: "alpha.>" is not a valid job name`,
		`bad.yaml:5:37: parents[1]: "x y" is not a valid job name`,
	}
	if !slices.Equal(got.Problems, wantProblems) {
		t.Errorf("apply problems:\n%s\nwant\n%s", strings.Join(got.Problems, "\n"), strings.Join(wantProblems, "\n"))
	}

	// Environment overrides: names a shell or env(1) would read otherwise.
	got = callJSON[api.ErrorResponse](t, tok, "POST", base+"/v1/jobs/beta/run", api.RunRequest{Env: map[string]string{"A.B": "1", "A B": "2", "A=B": "3", "A*": "4"}}, http.StatusBadRequest)
	wantProblems = []string{
		`env.A B: "A B" is not a valid variable name: use letters, digits and '_', not starting with a digit`,
		`env.A*: "A*" is not a valid variable name: use letters, digits and '_', not starting with a digit`,
		`env.A.B: "A.B" is not a valid variable name: use letters, digits and '_', not starting with a digit`,
		`env.A=B: "A=B" is not a valid variable name: use letters, digits and '_', not starting with a digit`,
	}
	if !slices.Equal(got.Problems, wantProblems) {
		t.Errorf("env problems:\n%s\nwant\n%s", strings.Join(got.Problems, "\n"), strings.Join(wantProblems, "\n"))
	}
	assertUnchanged(t, c, before, "requests with bad names")

	// A log request goes to aion.logs.<node>: a stored node that is no
	// subject token is refused before anything is sent. An executor
	// answering on its subject shows that the probe hears requests.
	heard := make(chan string, 10)
	sub, err := c.NATS.Subscribe("aion.logs.>", func(m *nats.Msg) {
		heard <- m.Subject
		data := clustertest.JSON(t, store.LogChunk{Data: []byte("hi"), Size: 2})
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := c.NATS.Flush(); err != nil {
		t.Fatal(err)
	}
	e := callJSON[api.ErrorResponse](t, tok, "GET", fireURL(base, badFire.ID)+"/log", nil, http.StatusBadGateway)
	if want := `fire alpha@2026-11-25T03:00:00Z names executor "x.>", which is not a valid node ID: its output cannot be asked for`; e.Error != want {
		t.Errorf("log of a fire on node x.>: %q, want %q", e.Error, want)
	}
	if chunk := callJSON[api.LogChunk](t, tok, "GET", fireURL(base, ghostFire.ID)+"/log", nil, http.StatusOK); string(chunk.Data) != "hi" {
		t.Errorf("log from the answering executor: %q", chunk.Data)
	}
	if subj := <-heard; subj != "aion.logs.ghost" {
		t.Errorf("log request sent on %s, want aion.logs.ghost", subj)
	}
	select {
	case subj := <-heard:
		t.Errorf("another log request was sent, on %s", subj)
	default:
	}
}

// TestExecutor_NodeIDsThatWouldChangeSubjectsAreRefused: an executor's node
// ID becomes the last token of aion.dispatch.<node>, aion.kill.<node> and
// aion.logs.<node>, and a key segment under nodes/. (Here because the
// executor package is being changed elsewhere; it only uses its Config.)
func TestExecutor_NodeIDsThatWouldChangeSubjectsAreRefused(t *testing.T) {
	for _, id := range []string{"x.>", ">", "*", "x*", "a.b", "a b", "a\tb", "a/b", "..", "", "-x", strings.Repeat("n", 64)} {
		cfg := executor.DefaultConfig()
		cfg.NodeID = id
		err := cfg.Validate()
		if want := fmt.Sprintf("executor: node ID %q: use letters, digits, '-' and '_' (it is part of NATS subjects)", id); err == nil || err.Error() != want {
			t.Errorf("node ID %q: %v, want %q", id, err, want)
		}
	}
	cfg := executor.DefaultConfig()
	cfg.NodeID = "node-1_A"
	if err := cfg.Validate(); err != nil {
		t.Errorf("node ID node-1_A: %v", err)
	}
}

// TestAPI_KillOfAFireOfADeletedJobIs404: the fire history of a deleted job
// stays and can be read, but a kill is a request under the job, which is
// gone. This was a 500 ("store: no such job") until FuzzAPI found it.
func TestAPI_KillOfAFireOfADeletedJobIs404(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	orphan := store.Fire{ID: store.ScheduledFireID("gone", time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)), State: store.FirePlanned, Node: "x1"}
	putFire(t, c, orphan)
	before := snapshot(t, c)
	callJSON[store.Fire](t, tok, "GET", fireURL(base, orphan.ID), nil, http.StatusOK)
	if e := callJSON[api.ErrorResponse](t, tok, "POST", fireURL(base, orphan.ID)+"/kill", api.KillRequest{}, http.StatusNotFound); e.Error != `no job named "gone"` {
		t.Errorf("kill: %q", e.Error)
	}
	assertUnchanged(t, c, before, "a refused kill")
}

// TestAPI_EtcdSizeRefusalsAre413: requests are bounded well below etcd's
// limits, but a cluster may be set up with lower ones: etcd's refusals (and
// the client's, for messages over 2 MiB), as a real etcd gives them, are
// answered 413 naming the limit, not 500.
func TestAPI_EtcdSizeRefusalsAre413(t *testing.T) {
	c := clustertest.Start(t)
	ctx := context.Background()
	_, serverRefused := c.Etcd.Put(ctx, c.Keys.Prefix+"big", strings.Repeat("x", 1600<<10))
	_, clientRefused := c.Etcd.Put(ctx, c.Keys.Prefix+"big", strings.Repeat("x", 3<<20))
	ops := make([]clientv3.Op, 10_001) // the test cluster's --max-txn-ops is 10000
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprintf("%sop/%d", c.Keys.Prefix, i), "x")
	}
	_, tooManyOps := c.Etcd.Txn(ctx).Then(ops...).Commit()
	size := "the change is larger than etcd accepts in one request (etcd's --max-request-bytes, 1.5 MiB by default), nothing written"
	for err, want := range map[error]string{
		serverRefused: size,
		clientRefused: size,
		tooManyOps:    "the change needs more operations than etcd allows in one transaction (etcd's --max-txn-ops, 128 by default), nothing written",
	} {
		he := etcdRefusedSize(fmt.Errorf("request run of x: %w", err))
		if he == nil || he.status != http.StatusRequestEntityTooLarge || he.msg != want {
			t.Errorf("etcd error %v: answer %+v, want 413 %q", err, he, want)
		}
	}
	if he := etcdRefusedSize(context.DeadlineExceeded); he != nil {
		t.Errorf("a timeout: answer %+v, want none", he)
	}
	if got := etcdState(t, c, false); len(got) != 0 {
		t.Errorf("refused writes left %d keys", len(got))
	}
}
