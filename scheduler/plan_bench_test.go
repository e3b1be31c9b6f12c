package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
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

// testLeader is a leader on a real etcd and NATS whose clock the caller
// moves, loaded (as after an election) with n every-second jobs and the
// given executor nodes.
func testLeader(tb testing.TB, n int, nodes ...store.Node) (*leader, *atomic.Int64) {
	tb.Helper()
	return testLeaderWith(tb, n, func(int) string { return "schedule: \"* * * * * *\"\n    cron_seconds: true\n    concurrency: allow" }, nodes...)
}

// testLeaderWith is testLeader with n jobs whose schedule and policy lines
// (YAML, indented as a job's fields) come from fields(i).
func testLeaderWith(tb testing.TB, n int, fields func(i int) string, nodes ...store.Node) (*leader, *atomic.Int64) {
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
		if _, err := store.Apply(ctx, cli, store.Keys{Prefix: store.DefaultPrefix}, jobs, false, false, time.Now()); err != nil {
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
	l := newLeader(s, "/bench/leader", fence.Header.Revision)
	if _, err := l.loadSnapshot(ctx, 0); err != nil {
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
	l, _ := testLeader(t, 50)
	ctx := t.Context()
	head, err := l.s.etcd.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	standby := newLeader(l.s, l.leaseKey, l.leaseRev)
	if err := standby.loadJobs(ctx, head.Header.Revision); err != nil {
		t.Fatal(err)
	}
	marker, err := l.s.etcd.Put(ctx, "compact-marker", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.etcd.Compact(ctx, marker.Header.Revision); err != nil {
		t.Fatal(err)
	}
	rev, err := standby.loadSnapshot(ctx, head.Header.Revision)
	if err != nil {
		t.Fatalf("load after compaction: %v", err)
	}
	if rev < marker.Header.Revision || len(standby.jobs) != 50 || standby.queue.Len() != 50 {
		t.Errorf("loaded at revision %d (compacted at %d) with %d jobs, %d queued; want a fresh load of 50",
			rev, marker.Header.Revision, len(standby.jobs), standby.queue.Len())
	}
}

// TestPlanDue_OneTransactionSpreadsFiresOverNodes plans 100 jobs due at
// once: they are written together, and their fires are spread evenly over
// four nodes of equal size, not all given to the one with the lowest load
// average (the fires of a transaction count while it is built).
func TestPlanDue_OneTransactionSpreadsFiresOverNodes(t *testing.T) {
	var nodes []store.Node
	for i := range 4 {
		nodes = append(nodes, store.Node{ID: fmt.Sprintf("x%d", i), Slots: 100})
	}
	l, clock := testLeader(t, 100, nodes...)
	for i, n := range nodes {
		l.nodes.report(store.LoadReport{Node: n.ID, Load1: float64(i)})
	}
	clock.Add(int64(1500 * time.Millisecond))
	if err := l.planDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	perNode := make(map[string]int)
	revs := make(map[int64]bool)
	for _, of := range l.open {
		perNode[of.fire.Node]++
		revs[of.rev] = true
	}
	if len(l.open) < 100 {
		t.Fatalf("%d fires planned, want at least 100 (one per job)", len(l.open))
	}
	for _, n := range nodes {
		if got, want := perNode[n.ID], len(l.open)/4; got < want-1 || got > want+1 {
			t.Errorf("node %s got %d of %d fires, want about %d: %v", n.ID, got, len(l.open), want, perNode)
		}
	}
	// 100 jobs, each a fire and a state: two transactions under etcd's 128 operations.
	if len(revs) > 4 {
		t.Errorf("fires written in %d transactions, want a few", len(revs))
	}
}

// BenchmarkPlanDue measures planning: each iteration moves the clock one
// second, so each of the 1,000 every-second jobs is due once, and plans
// them all (fenced transactions on a real etcd, dispatches on NATS).
func BenchmarkPlanDue(b *testing.B) {
	l, clock := testLeader(b, 1000, store.Node{ID: "x1", Slots: 1 << 30})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		clock.Add(int64(time.Second))
		if err := l.planDue(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "fires/s")
}

// BenchmarkQueue measures the due-time heap: take the job due first and
// queue it at a later time, among 100,000 jobs.
func BenchmarkQueue(b *testing.B) {
	var q fireQueue
	base := time.Now()
	for i := range 100_000 {
		q.set(&jobEntry{index: -1, name: fmt.Sprintf("j%06d", i)}, base.Add(time.Duration(rand.IntN(3600))*time.Second))
	}
	b.ResetTimer()
	for b.Loop() {
		e := q.peek()
		q.set(e, e.next.Add(time.Duration(1+rand.IntN(3600))*time.Second))
	}
}

// BenchmarkPlacementChoose measures choosing a node among 100, half of
// which match the job's constraint.
func BenchmarkPlacementChoose(b *testing.B) {
	p := newPlacement()
	for i := range 100 {
		zone := "eu"
		if i%2 == 1 {
			zone = "us"
		}
		p.register(store.Node{ID: fmt.Sprintf("x%03d", i), Slots: 1 << 20, Labels: map[string]string{"zone": zone}})
	}
	job := &jobPolicy{}
	sels, err := jobspec.ParseSelectors([]string{"zone=eu"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		node, _ := p.choose(job, sels)
		p.assigned[node]++
	}
}

// BenchmarkLoadSnapshot measures what a new leader does before it plans:
// read and decode 20,000 jobs with their states, in pages, and queue them.
func BenchmarkLoadSnapshot(b *testing.B) {
	l, _ := testLeader(b, 20_000)
	ctx := context.Background()
	for b.Loop() {
		fresh := newLeader(l.s, l.leaseKey, l.leaseRev)
		if _, err := fresh.loadSnapshot(ctx, 0); err != nil {
			b.Fatal(err)
		}
		if len(fresh.jobs) != 20_000 {
			b.Fatalf("%d jobs loaded", len(fresh.jobs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/20_000, "µs/job")
}

// TestOnNode_IgnoresRegistrationsWithBadNodeIDs: a node ID goes into NATS
// subjects, so a registration written by hand with a dot or a wildcard, or
// whose body names another node than its key, is never used.
func TestOnNode_IgnoresRegistrationsWithBadNodeIDs(t *testing.T) {
	l, _ := testLeader(t, 0)
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
		data, _ := json.Marshal(store.Node{ID: tc.id, Slots: 1})
		l.onNode(&mvccpb.KeyValue{Key: []byte(l.keys.Node(tc.key)), Value: data}, false)
		if got := l.nodes.live(tc.key); got != tc.live {
			t.Errorf("registration %q with id %q: live %v, want %v", tc.key, tc.id, got, tc.live)
		}
	}
}

// BenchmarkLeaderHeapPerJob measures the live heap a leader holds per job:
// 20,000 jobs firing once a year (most of a large installation) in four
// time zones, loaded as after an election, with 1,440 distinct schedules
// (a time of day each: jobs share schedules, as crontabs do) and with
// 20,000 (no two jobs alike: the worst case). It reports bytes of live
// heap per job, after a collection, not counting what etcd and the
// clients hold.
func BenchmarkLeaderHeapPerJob(b *testing.B) {
	const n = 20_000
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"}
	for _, distinct := range []int{1440, n} {
		b.Run(fmt.Sprintf("schedules=%d", distinct), func(b *testing.B) {
			l, _ := testLeaderWith(b, n, func(i int) string {
				k := i % distinct
				return fmt.Sprintf("schedule: \"%d %d %d 1 *\"\n    timezone: %s\n    concurrency: forbid", k%60, k/60%24, 1+k/1440%28, zones[i%4])
			})
			var perJob float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				fresh := newLeader(l.s, l.leaseKey, l.leaseRev)
				if _, err := fresh.loadSnapshot(context.Background(), 0); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if len(fresh.jobs) != n {
					b.Fatalf("%d jobs loaded", len(fresh.jobs))
				}
				perJob = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(fresh)
			}
			b.ReportMetric(perJob, "heap-B/job")
		})
	}
}
