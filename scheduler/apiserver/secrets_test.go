package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// natsRecorder keeps every message published on the cluster's NATS.
type natsRecorder struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

func (r *natsRecorder) all() []*nats.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*nats.Msg(nil), r.msgs...)
}

// recordNATS subscribes to every subject until the test ends.
func recordNATS(t *testing.T, c *clustertest.Cluster) *natsRecorder {
	t.Helper()
	r := &natsRecorder{}
	sub, err := c.NATS.Subscribe(">", func(m *nats.Msg) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := c.NATS.Flush(); err != nil { // subscribed before anything is published
		t.Fatal(err)
	}
	return r
}

// captureLogs makes c.Log also write every entry, debug and up, as JSON
// to the returned buffer: the scheduler, executors and API server started
// after it log there.
func captureLogs(c *clustertest.Cluster) *clustertest.Buffer {
	buf := &clustertest.Buffer{}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(buf), zap.DebugLevel)
	c.Log = zap.New(zapcore.NewTee(c.Log.Core(), core))
	return buf
}

func uniqueValue(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + "-" + hex.EncodeToString(b)
}

// TestSecrets_ValuesAppearInNoAnswerMessageLogOrRecord runs a job that has
// a secret at every place a job can have one (an env value whose name looks
// secret, one named in secret_env, an env_from file, an env_from variable
// of the executor and a manual run's override), through the API, a
// scheduler and an executor, and proves the run got them. Then no answer
// of any read route but the log, no NATS message, no log line holds one of
// them, and etcd holds only what it must: the job's env values in the
// job's definition and the override in the fire record's env, which the
// executor reads it from (docs/security.md, "Secrets"); the env_from
// values never enter etcd.
//
// The job prints the values, then more than the 4 KiB of the end of its
// output that the fire record keeps (output_tail): output is the job's to
// show, by the log route and that tail. What it prints last would be in
// the record and its answers; what is tested here is that nothing else
// carries the values.
func TestSecrets_ValuesAppearInNoAnswerMessageLogOrRecord(t *testing.T) {
	secrets := map[string]string{
		"DB_PASSWORD":   uniqueValue(t, "db-password"),   // looks secret: hidden
		"CONN":          uniqueValue(t, "conn"),          // named in secret_env
		"FILE_SECRET":   uniqueValue(t, "file-secret"),   // env_from file
		"PASSED_SECRET": uniqueValue(t, "passed-secret"), // env_from env
		"RUN_OVERRIDE":  uniqueValue(t, "override"),      // the run's --env
	}
	names := []string{"DB_PASSWORD", "CONN", "FILE_SECRET", "PASSED_SECRET", "RUN_OVERRIDE"}
	secretsDir, proof := t.TempDir(), filepath.Join(t.TempDir(), "proof")
	if err := os.WriteFile(filepath.Join(secretsDir, "app.env"), []byte("# for the job\nFILE_SECRET="+secrets["FILE_SECRET"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PASSED_SECRET", secrets["PASSED_SECRET"])

	c := clustertest.Start(t)
	msgs := recordNATS(t, c)
	logs := captureLogs(c)
	c.StartScheduler(t, "s1")
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.OutputDir, cfg.Grace = "x1", t.TempDir(), time.Second
	cfg.SecretsDir, cfg.PassEnv = secretsDir, []string{"PASSED_SECRET"}
	c.StartExecutorWith(t, cfg)
	base, tok := serve(t, c, time.Now)

	var echo strings.Builder
	for _, n := range names {
		echo.WriteString(` "$` + n + `"`)
	}
	job := `name: leaky
schedule: manual
env:
  DB_PASSWORD: ` + secrets["DB_PASSWORD"] + `
  CONN: ` + secrets["CONN"] + `
  PLAIN: x
secret_env: [CONN]
env_from:
  - file: app.env
  - env: PASSED_SECRET
command: |
  printf '%s\n'` + echo.String() + ` > ` + proof + `
  printf '%s\n'` + echo.String() + `
  seq 1 2000
  exit 3
`
	var bodies []string // every answer of the API
	status, body := call(t, tok, "POST", base+"/v1/apply", files("leaky.yaml", job))
	if status != http.StatusOK {
		t.Fatalf("apply: %d %s", status, body)
	}
	bodies = append(bodies, string(body))
	status, body = call(t, tok, "POST", base+"/v1/jobs/leaky/run", api.RunRequest{Env: map[string]string{"RUN_OVERRIDE": secrets["RUN_OVERRIDE"]}})
	if status != http.StatusAccepted {
		t.Fatalf("run: %d %s", status, body)
	}
	bodies = append(bodies, string(body))
	var run api.RunResponse
	if err := json.Unmarshal(body, &run); err != nil {
		t.Fatal(err)
	}
	id, err := store.ParseFireID(run.Fire)
	if err != nil {
		t.Fatal(err)
	}
	f := waitFinal(t, tok, base, run.Fire)
	if f.State != store.FireFailed || f.Reason != "exit status 3" {
		t.Fatalf("run: %s (%s), want failed with exit status 3", f.State, f.Reason)
	}

	// The run got every value, and printed them to its output.
	var want strings.Builder
	for _, n := range names {
		want.WriteString(secrets[n] + "\n")
	}
	if got, err := os.ReadFile(proof); err != nil || string(got) != want.String() {
		t.Fatalf("the values the run got: %q, %v; want %q", got, err, want.String())
	}
	if out, err := os.ReadFile(f.OutputPath); err != nil || !strings.HasPrefix(string(out), want.String()) {
		t.Fatalf("output file %s: %v; want it to start with the values", f.OutputPath, err)
	}

	// The final event carries the reason, not the output.
	events := store.EventSubject("aion.", "leaky")
	var final store.FireEvent
	clustertest.WaitFor(t, 5*time.Second, "the final event", func() bool {
		for _, m := range msgs.all() {
			var ev store.FireEvent
			if m.Subject == events && json.Unmarshal(m.Data, &ev) == nil && ev.Fire == id && ev.State.Final() {
				final = ev
				return true
			}
		}
		return false
	})
	if final.State != store.FireFailed || final.Summary != "exit status 3" {
		t.Errorf("final event: %s %q, want failed with the reason only", final.State, final.Summary)
	}

	// Every read route but the log, as an admin reads them.
	for _, r := range api.Routes() {
		if r.Method() != http.MethodGet || r == api.RouteGetLog {
			continue
		}
		var values []string
		switch strings.Count(r.Pattern(), "{") {
		case 1:
			values = []string{"leaky"}
		case 2:
			values = []string{id.Job, id.Suffix}
		}
		path, err := r.Path(values...)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		status, body := call(t, tok, "GET", base+path, nil)
		if status != http.StatusOK {
			t.Errorf("%s: status %d: %s", path, status, body)
		}
		bodies = append(bodies, string(body))
	}
	for _, q := range []string{"/v1/jobs?name=leak*", "/v1/jobs?state=failed", "/v1/jobs/leaky/fires?limit=1", "/v1/fires?limit=1"} {
		status, body := call(t, tok, "GET", base+q, nil)
		if status != http.StatusOK {
			t.Errorf("%s: status %d: %s", q, status, body)
		}
		bodies = append(bodies, string(body))
	}
	// What the answers show instead: names, and <hidden>.
	detail := callJSON[api.JobDetail](t, tok, "GET", base+"/v1/jobs/leaky", nil, http.StatusOK)
	if e := detail.Job.Env; e["DB_PASSWORD"] != jobspec.SecretPlaceholder || e["CONN"] != jobspec.SecretPlaceholder || e["PLAIN"] != "x" {
		t.Errorf("job detail env: %v, want DB_PASSWORD and CONN hidden, PLAIN shown", e)
	}
	fire := callJSON[api.Fire](t, tok, "GET", fireURL(base, id), nil, http.StatusOK)
	if len(fire.Env) != 1 || fire.Env["RUN_OVERRIDE"] != jobspec.SecretPlaceholder {
		t.Errorf("fire env: %v, want RUN_OVERRIDE hidden", fire.Env)
	}
	for _, b := range bodies {
		for _, n := range names {
			if strings.Contains(b, secrets[n]) {
				t.Errorf("an API answer holds the value of %s: %s", n, b)
			}
		}
	}

	// NATS: no message holds a value; the dispatch had no record copy.
	var dispatches int
	for _, m := range msgs.all() {
		for _, n := range names {
			if strings.Contains(m.Subject, secrets[n]) || strings.Contains(string(m.Data), secrets[n]) {
				t.Errorf("NATS message on %s holds the value of %s: %s", m.Subject, n, m.Data)
			}
		}
		var d store.Dispatch
		if m.Subject == store.DispatchSubject("aion.", "x1") && json.Unmarshal(m.Data, &d) == nil && d.Fire == id {
			dispatches++
			if len(d.Record) != 0 {
				t.Errorf("the dispatch of a fire with overrides carries its record: %s", m.Data)
			}
		}
	}
	if dispatches == 0 {
		t.Error("no dispatch of the fire was seen on NATS")
	}

	// Logs: none holds a value (and the capture saw all three parts).
	text := logs.String()
	for _, line := range strings.Split(text, "\n") {
		for _, n := range names {
			if strings.Contains(line, secrets[n]) {
				t.Errorf("a log line holds the value of %s: %s", n, line)
			}
		}
	}
	for _, line := range []string{`"run requested"`, `"run finished"`} {
		if !strings.Contains(text, line) {
			t.Errorf("no %s log line was captured: the capture does not work", line)
		}
	}

	// etcd: the job's own env values in its definition, the override in
	// the fire record's env; nothing else, and no env_from value at all.
	resp, err := c.Etcd.Get(t.Context(), c.Keys.Prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{"DB_PASSWORD": c.Keys.Job("leaky"), "CONN": c.Keys.Job("leaky"), "RUN_OVERRIDE": c.Keys.Fire(id)}
	for _, kv := range resp.Kvs {
		key, value := string(kv.Key), string(kv.Value)
		if key == c.Keys.Fire(id) { // all but the override in the record's env
			var rec store.Fire
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Env["RUN_OVERRIDE"] != secrets["RUN_OVERRIDE"] {
				t.Errorf("fire record env: %v, want the override the executor reads", rec.Env)
			}
			delete(rec.Env, "RUN_OVERRIDE") // the rest is scanned
			value = string(clustertest.JSON(t, rec))
		}
		for _, n := range names {
			if (strings.Contains(key, secrets[n]) || strings.Contains(value, secrets[n])) && where[n] != key {
				t.Errorf("etcd key %s holds the value of %s: %s", key, n, value)
			}
		}
	}
}
