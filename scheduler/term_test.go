package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// testTerm is a leader term on a real etcd and NATS whose clock the caller
// moves, loaded (as after an election) with n every-second jobs and the
// given executor nodes.
func testTerm(tb testing.TB, n int, nodes ...store.Node) (*term, *atomic.Int64) {
	tb.Helper()
	return testTermWith(tb, n, func(int) string { return "schedule: \"* * * * * *\"\n    cron_seconds: true\n    concurrency: allow" }, nodes...)
}

// testTermWith is testTerm with n jobs whose schedule and policy lines
// (YAML, indented as a job's fields) come from fields(i).
func testTermWith(tb testing.TB, n int, fields func(i int) string, nodes ...store.Node) (*term, *atomic.Int64) {
	tb.Helper()
	ctx := context.Background()
	etcdSrv, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: tb.TempDir(), MaxTxnOps: 10_000})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(etcdSrv.Close)
	natsSrv, err := embedded.StartNATS("")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(natsSrv.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdSrv.Endpoint()}, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cli.Close() })
	nc, err := nats.Connect(natsSrv.URL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	var yaml strings.Builder
	yaml.WriteString("jobs:\n")
	for i := range n {
		fmt.Fprintf(&yaml, "  - name: j%05d\n    %s\n    args: [\"/bin/true\"]\n", i, fields(i))
	}
	if n > 0 {
		jobs, errs := jobspec.Parse("bench.yaml", []byte(yaml.String()))
		if len(errs) > 0 {
			tb.Fatal(errs)
		}
		if _, err := store.Apply(ctx, cli, store.Keys{Prefix: store.DefaultPrefix}, jobs, store.ApplyOptions{Set: "bench"}, time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	cfg := DefaultConfig()
	cfg.ID = "bench"
	cfg.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	s := New(cfg, cli, nc, zap.NewNop())
	fence, err := cli.Put(ctx, "/bench/leader", "bench")
	if err != nil {
		tb.Fatal(err)
	}
	l := newTerm(s, s.newJobTable(), "/bench/leader", fence.Header.Revision)
	if _, err := l.load(ctx, 0); err != nil {
		tb.Fatal(err)
	}
	for _, node := range nodes {
		l.nodes.register(node)
	}
	return l, &clock
}

// TestLoadSnapshot_StandbyCopyOlderThanHistoryReadsAfresh loads the jobs
// at one revision, as a standby does, then lets etcd compact past it: the
// rest cannot be read at that revision, so everything is read afresh at
// the current one, and nothing is lost.
func TestLoadSnapshot_StandbyCopyOlderThanHistoryReadsAfresh(t *testing.T) {
	l, _ := testTerm(t, 50)
	ctx := t.Context()
	head, err := l.s.etcd.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	standby := newTerm(l.s, l.s.newJobTable(), l.fence.key, l.fence.rev)
	if err := standby.jobs.load(ctx, head.Header.Revision); err != nil {
		t.Fatal(err)
	}
	marker, err := l.s.etcd.Put(ctx, "compact-marker", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.etcd.Compact(ctx, marker.Header.Revision); err != nil {
		t.Fatal(err)
	}
	rev, err := standby.load(ctx, head.Header.Revision)
	if err != nil {
		t.Fatalf("load after compaction: %v", err)
	}
	if rev < marker.Header.Revision || standby.jobs.len() != 50 || standby.jobs.due.Len() != 50 {
		t.Errorf("loaded at revision %d (compacted at %d) with %d jobs, %d queued; want a fresh load of 50",
			rev, marker.Header.Revision, standby.jobs.len(), standby.jobs.due.Len())
	}
}

// TestOnNode_IgnoresRegistrationsWithBadNodeIDs: a node ID goes into NATS
// subjects, so a registration written by hand with a dot or a wildcard, or
// whose body names another node than its key, is never used.
func TestOnNode_IgnoresRegistrationsWithBadNodeIDs(t *testing.T) {
	l, _ := testTerm(t, 0)
	for _, tc := range []struct {
		key, id string
		live    bool
	}{
		{"good-1", "good-1", true},
		{"x.>", "x.>", false},
		{"*", "*", false},
		{"a b", "a b", false},
		{"other", "good-1", false},
	} {
		data := encodeJSON(t, store.Node{ID: tc.id, Slots: 1})
		l.onNode(&mvccpb.KeyValue{Key: []byte(l.s.keys.Node(tc.key)), Value: data}, false)
		if got := l.nodes.live(tc.key); got != tc.live {
			t.Errorf("registration %q with id %q: live %v, want %v", tc.key, tc.id, got, tc.live)
		}
	}
}

// encodeJSON encodes v for a record a test writes, failing the test if it
// cannot.
func encodeJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("encode %T: %v", v, err)
	}
	return data
}
