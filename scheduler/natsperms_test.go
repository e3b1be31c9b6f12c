package scheduler_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/scheduler/store"
)

// TestNATSPermissions starts a real NATS server with the users and
// permissions of configs/nats-permissions.conf, a scheduler and an
// executor connected as their users: jobs run, are killed and have their
// output read end to end, while the outsider (the events watcher) and the
// executor cannot publish dispatches or kills, nor subscribe to what is
// not theirs.
func TestNATSPermissions(t *testing.T) {
	passwords := map[string]string{
		"scheduler": "scheduler-pass", "executor-node-1": "executor-pass", "watcher": "watcher-pass",
	}
	t.Setenv("AION_NATS_SCHEDULER_PASSWORD", passwords["scheduler"])
	t.Setenv("AION_NATS_EXECUTOR_PASSWORD", passwords["executor-node-1"])
	t.Setenv("AION_NATS_WATCHER_PASSWORD", passwords["watcher"])
	opts, err := natsserver.ProcessConfigFile("../configs/nats-permissions.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: t.TempDir(), MaxTxnOps: 10_000, Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })

	violations := &asyncErrors{}
	connect := func(user string) *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user, passwords[user]),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations.add(user, err) }))
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	keys := store.Keys{Prefix: store.DefaultPrefix}
	sched := &clustertest.Cluster{Etcd: cli, NATS: connect("scheduler"), Keys: keys, Log: log}
	exec := &clustertest.Cluster{Etcd: cli, NATS: connect("executor-node-1"), Keys: keys, Log: log}
	outsider := connect("watcher")
	if _, err := nats.Connect(srv.ClientURL(), nats.UserInfo("scheduler", "wrong")); err == nil {
		t.Error("connected as scheduler with a wrong password")
	}

	sched.StartScheduler(t, "s1")
	exec.StartExecutor(t, "node-1", 4, nil)
	sched.Apply(t, `
jobs:
  - name: hello
    schedule: manual
    command: echo hello through permissions
  - name: long
    schedule: manual
    command: sleep 60
`)
	events, err := outsider.SubscribeSync(store.EventsWildcard("aion."))
	if err != nil {
		t.Fatal(err)
	}

	// A job runs end to end; its output is read by the scheduler's user.
	id := sched.RequestRun(t, "hello", store.Request{})
	f := sched.WaitFire(t, id, 15*time.Second, "final and processed", processed)
	if f.State != store.FireSucceeded || f.Node != "node-1" {
		t.Fatalf("run: %s (%s) on %q, want succeeded on node-1", f.State, f.Reason, f.Node)
	}
	if chunk := sched.AskLog(t, "node-1", store.LogRequest{Fire: id, Attempt: 1}); string(chunk.Data) != "hello through permissions\n" {
		t.Errorf("output read as the scheduler: %q (error %q)", chunk.Data, chunk.Error)
	}
	if _, err := events.NextMsg(5 * time.Second); err != nil {
		t.Errorf("the watcher got no run event: %v", err)
	}

	// A kill goes through.
	long := sched.RequestRun(t, "long", store.Request{})
	running := sched.WaitFire(t, long, 15*time.Second, "running", func(f store.Fire) bool { return f.State == store.FireRunning })

	// Nobody else may publish dispatches or kills, or listen to them.
	dispatch := clustertest.JSON(t, store.Dispatch{Fire: long, Attempt: 1})
	kill := clustertest.JSON(t, store.Kill{Fire: long, Attempt: running.Attempt})
	for _, p := range []struct {
		user    string
		nc      *nats.Conn
		subject string
		data    []byte
	}{
		{"watcher", outsider, store.DispatchSubject("aion.", "node-1"), dispatch},
		{"watcher", outsider, store.KillSubject("aion.", "node-1"), kill},
		{"watcher", outsider, store.LogSubject("aion.", "node-1"), []byte("{}")},
		{"executor-node-1", exec.NATS, store.KillSubject("aion.", "node-1"), kill},
		{"executor-node-1", exec.NATS, store.DispatchSubject("aion.", "node-2"), dispatch},
	} {
		if err := p.nc.Publish(p.subject, p.data); err != nil {
			t.Fatal(err)
		}
		violations.wait(t, p.user, "Publish to \""+p.subject+"\"")
	}
	for _, subject := range []string{store.DispatchSubject("aion.", "node-1"), store.KillSubject("aion.", "node-1"),
		store.LogSubject("aion.", "node-1"), store.LoadSubject("aion."), ">"} {
		if _, err := outsider.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		violations.wait(t, "watcher", "Subscription to \""+subject+"\"")
	}
	if f := sched.MustFire(t, long); f.State != store.FireRunning {
		t.Errorf("after the refused messages the run is %s (%s), want still running", f.State, f.Reason)
	}
	if err := store.RequestKill(context.Background(), cli, keys, long, "tester", time.Now()); err != nil {
		t.Fatal(err)
	}
	if f := sched.WaitFire(t, long, 15*time.Second, "final and processed", processed); f.State != store.FireCancelled {
		t.Errorf("killed run: %s (%s), want cancelled", f.State, f.Reason)
	}
}

// asyncErrors collects the asynchronous errors (permission violations)
// the NATS server sent each user.
type asyncErrors struct {
	mu     sync.Mutex
	byUser map[string][]string
}

func (a *asyncErrors) add(user string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byUser == nil {
		a.byUser = make(map[string][]string)
	}
	a.byUser[user] = append(a.byUser[user], err.Error())
}

// wait waits for a permissions violation of user that mentions what.
func (a *asyncErrors) wait(t *testing.T, user, what string) {
	t.Helper()
	clustertest.WaitFor(t, 5*time.Second, user+": a permissions violation for "+what, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, e := range a.byUser[user] {
			if strings.Contains(e, "Permissions Violation") && strings.Contains(e, what) {
				return true
			}
		}
		return false
	})
}
