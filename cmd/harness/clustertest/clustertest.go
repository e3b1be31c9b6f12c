// Package clustertest starts a real etcd and a real NATS server in the test
// process (package embedded) and connects clients to them, for integration
// tests of schedulers and executors.
package clustertest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

// Cluster is one etcd and one NATS server with a client of each.
type Cluster struct {
	Etcd    *clientv3.Client
	NATS    *nats.Conn
	EtcdURL string
	NATSURL string
	Keys    store.Keys
	Log     *zap.Logger

	natsSrv *embedded.NATS
}

// Option changes how Start starts the servers.
type Option func(*options)

type options struct {
	host string // the IP address the servers listen on; empty is 127.0.0.1
}

// ListenOn makes etcd and NATS listen on ip (and the clients' URLs name
// it) instead of 127.0.0.1: on a Hub address (NewHub), for processes in
// Hosts to reach them.
func ListenOn(ip string) Option { return func(o *options) { o.host = ip } }

// Start starts the servers; they stop when the test ends. They listen on
// 127.0.0.1 unless an option says otherwise.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: t.TempDir(), Host: o.host, MaxTxnOps: 10_000, Log: zap.NewNop()})
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	n, err := embedded.StartNATSWith(embedded.NATSConfig{Host: o.host})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(n.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatalf("nats client: %v", err)
	}
	t.Cleanup(nc.Close)
	return &Cluster{Etcd: cli, NATS: nc, EtcdURL: e.Endpoint(), NATSURL: n.URL(), Keys: store.Keys{Prefix: store.DefaultPrefix}, Log: log, natsSrv: n}
}

// RestartNATS stops the NATS server, waits down, and starts it again on the
// same address; clients reconnect on their own.
func (c *Cluster) RestartNATS(t testing.TB, down time.Duration) {
	t.Helper()
	c.natsSrv.Close()
	time.Sleep(down)
	n, err := embedded.StartNATS(strings.TrimPrefix(c.NATSURL, "nats://"))
	if err != nil {
		t.Fatalf("restart nats: %v", err)
	}
	t.Cleanup(n.Close)
	c.natsSrv = n
}

// Apply parses YAML job definitions and applies them as apply set
// "clustertest" (with prune).
func (c *Cluster) Apply(t testing.TB, yamlText string) store.ApplyResult {
	t.Helper()
	jobs, errs := jobspec.Parse("test.yaml", []byte(yamlText))
	errs = append(errs, jobspec.CheckSet(jobs)...)
	if len(errs) > 0 {
		t.Fatalf("bad test jobs:\n%v", errs)
	}
	res, err := store.Apply(context.Background(), c.Etcd, c.Keys, jobs, store.ApplyOptions{Set: "clustertest", Prune: true}, time.Now())
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

// Fires reads every fire record of a job (all jobs when job is empty).
func (c *Cluster) Fires(t testing.TB, job string) []store.Fire {
	t.Helper()
	prefix := c.Keys.Fires()
	if job != "" {
		prefix = c.Keys.JobFires(job)
	}
	resp, err := c.Etcd.Get(context.Background(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("read fires: %v", err)
	}
	fires := make([]store.Fire, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var f store.Fire
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			t.Fatalf("decode %s: %v", kv.Key, err)
		}
		fires = append(fires, f)
	}
	return fires
}

// WaitFor polls cond until it holds or the timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Final returns the fires of job in a final state.
func Final(fires []store.Fire) []store.Fire {
	var out []store.Fire
	for _, f := range fires {
		if f.State.Final() {
			out = append(out, f)
		}
	}
	return out
}

// StartScheduler runs a scheduler with test-friendly timings until the test
// ends; tune adjusts its configuration further.
func (c *Cluster) StartScheduler(t testing.TB, id string, tune ...func(*scheduler.Config)) {
	t.Helper()
	cfg := scheduler.DefaultConfig()
	cfg.ID = id
	cfg.ReconcileEvery = 200 * time.Millisecond
	cfg.RedispatchAfter = time.Second
	for _, f := range tune {
		f(&cfg)
	}
	RunUntilCleanup(t, scheduler.New(cfg, c.Etcd, c.NATS, c.Log).Run, "")
}

// StartExecutor runs an executor until the test ends; it keeps run output
// in a temporary directory and gives running jobs 2 s on stop.
func (c *Cluster) StartExecutor(t testing.TB, id string, slots int, labels map[string]string) {
	t.Helper()
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.Slots, cfg.Labels = id, slots, labels
	cfg.OutputDir = t.TempDir()
	cfg.Grace = 2 * time.Second
	RunUntilCleanup(t, executor.New(cfg, c.Etcd, c.NATS, c.Log).Run, "")
}

// StartExecutorWith runs an executor configured by cfg until the test ends
// and returns its registration once it is there.
func (c *Cluster) StartExecutorWith(t testing.TB, cfg executor.Config) store.Node {
	t.Helper()
	RunUntilCleanup(t, executor.New(cfg, c.Etcd, c.NATS, c.Log).Run, "")
	return c.WaitRegistered(t, cfg.NodeID)
}

// RunUntilCleanup runs run in a goroutine until the test ends, then cancels
// its context and waits for it. An error fails the test unless it contains
// expectedErr (when that is not empty).
func RunUntilCleanup(t testing.TB, run func(context.Context) error, expectedErr string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(ctx); err != nil && (expectedErr == "" || !strings.Contains(err.Error(), expectedErr)) {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// Token makes an API token with name and role (viewer, operator or
// admin) straight in etcd, as `aion token create --etcd` does, and returns
// its secret, for a Bearer header or api.WithToken.
func (c *Cluster) Token(t testing.TB, name, role string) string {
	t.Helper()
	secret, err := store.NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	tok := store.Token{Name: name, Role: role, CreatedAt: time.Now(), CreatedBy: "clustertest"}
	if err := store.CreateToken(context.Background(), c.Etcd, c.Keys, tok, secret); err != nil {
		t.Fatalf("create token %s: %v", name, err)
	}
	return secret
}

// AdminToken makes an admin token, named admin- and a part of its hash
// so that every call makes another, and returns its secret.
func (c *Cluster) AdminToken(t testing.TB) string {
	t.Helper()
	secret, err := store.NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	name := "admin-" + store.HashToken(secret)[:12]
	tok := store.Token{Name: name, Role: "admin", CreatedAt: time.Now(), CreatedBy: "clustertest"}
	if err := store.CreateToken(context.Background(), c.Etcd, c.Keys, tok, secret); err != nil {
		t.Fatalf("create token %s: %v", name, err)
	}
	return secret
}
