package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/scheduler/store"
)

// SkipShort skips a long test under -short, saying what kind of test it is
// ("fault scenario", "soak", "end-to-end, 12 s of schedule"): the fast
// tests stay in -short, the full suite runs everything.
func SkipShort(t testing.TB, kind string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: skipped with -short", kind)
	}
}

// WaitRegistered waits up to 10 s for node's registration and returns it.
func (c *Cluster) WaitRegistered(t testing.TB, node string) store.Node {
	t.Helper()
	var n store.Node
	WaitFor(t, 10*time.Second, node+" to register", func() bool {
		resp, err := c.Etcd.Get(context.Background(), c.Keys.Node(node))
		return err == nil && len(resp.Kvs) == 1 && json.Unmarshal(resp.Kvs[0].Value, &n) == nil
	})
	return n
}

// RevokeRegistration ends node's registration lease, as etcd does when the
// node's process dies or cannot reach etcd for longer than the TTL, and
// returns the lease it revoked.
func (c *Cluster) RevokeRegistration(t testing.TB, node string) clientv3.LeaseID {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Node(node))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("registration of %s: %d keys, %v", node, len(resp.Kvs), err)
	}
	lease := clientv3.LeaseID(resp.Kvs[0].Lease)
	if _, err := c.Etcd.Revoke(context.Background(), lease); err != nil {
		t.Fatalf("revoke the lease of %s: %v", node, err)
	}
	return lease
}

// Fire reads one fire record; ok is false when it does not exist.
func (c *Cluster) Fire(t testing.TB, id store.FireID) (f store.Fire, ok bool) {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Fire(id))
	if err != nil {
		t.Fatalf("read fire %s: %v", id, err)
	}
	if len(resp.Kvs) == 0 {
		return store.Fire{}, false
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &f); err != nil {
		t.Fatalf("decode fire %s: %v", id, err)
	}
	return f, true
}

// MustFire reads one fire record and fails the test when it does not exist.
func (c *Cluster) MustFire(t testing.TB, id store.FireID) store.Fire {
	t.Helper()
	f, ok := c.Fire(t, id)
	if !ok {
		t.Fatalf("fire %s: no record", id)
	}
	return f
}

// WaitFire polls the record of id until it exists and cond holds, and
// returns it.
func (c *Cluster) WaitFire(t testing.TB, id store.FireID, timeout time.Duration, what string, cond func(store.Fire) bool) store.Fire {
	t.Helper()
	var last store.Fire
	WaitFor(t, timeout, fmt.Sprintf("%s: %s", id, what), func() bool {
		f, ok := c.Fire(t, id)
		last = f
		return ok && cond(f)
	})
	return last
}

// WaitFinal waits for the record of id to reach a final state.
func (c *Cluster) WaitFinal(t testing.TB, id store.FireID, timeout time.Duration) store.Fire {
	t.Helper()
	return c.WaitFire(t, id, timeout, "to end", func(f store.Fire) bool { return f.State.Final() })
}

// RequestRun asks the leader for a manual run of job, at now and by
// "tester" unless req says otherwise, and returns the fire's ID.
func (c *Cluster) RequestRun(t testing.TB, job string, req store.Request) store.FireID {
	t.Helper()
	if req.At.IsZero() {
		req.At = time.Now()
	}
	if req.By == "" {
		req.By = "tester"
	}
	id, err := store.RequestRun(context.Background(), c.Etcd, c.Keys, job, req)
	if err != nil {
		t.Fatalf("request a run of %s: %v", job, err)
	}
	return id
}

// PlanFire writes f as a leader plans a fire, for tests of executors
// without a scheduler. Unset fields take a manual first attempt's values:
// planned now, trigger manual, attempt 1.
func (c *Cluster) PlanFire(t testing.TB, f store.Fire) store.Fire {
	t.Helper()
	now := time.Now().UTC()
	if f.Trigger == "" {
		f.Trigger = store.TriggerManual
	}
	if f.State == "" {
		f.State = store.FirePlanned
	}
	if f.Attempt == 0 {
		f.Attempt = 1
	}
	if f.Nominal.IsZero() {
		f.Nominal = now
	}
	if f.PlannedAt.IsZero() {
		f.PlannedAt = now
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Etcd.Put(context.Background(), c.Keys.Fire(f.ID), string(data)); err != nil {
		t.Fatalf("plan fire %s: %v", f.ID, err)
	}
	return f
}

// Dispatch publishes d to node's executor, as a leader does.
func (c *Cluster) Dispatch(t testing.TB, node string, d store.Dispatch) {
	t.Helper()
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.NATS.Publish(store.DispatchSubject("aion.", node), data); err != nil {
		t.Fatalf("dispatch %s to %s: %v", d.Fire, node, err)
	}
}

// StartFire plans a manual fire of job on node with args and dispatches
// it, as a leader would.
func (c *Cluster) StartFire(t testing.TB, job, node string, args []string) store.FireID {
	t.Helper()
	id := store.ManualFireID(job, time.Now())
	c.PlanFire(t, store.Fire{ID: id, Node: node, Args: args})
	c.Dispatch(t, node, store.Dispatch{Fire: id, Attempt: 1})
	return id
}

// RunFire is StartFire, then waits up to 20 s for the fire to end and
// returns its final record.
func (c *Cluster) RunFire(t testing.TB, job, node string, args []string) store.Fire {
	t.Helper()
	return c.WaitFinal(t, c.StartFire(t, job, node, args), 20*time.Second)
}

// Clock is a scheduler clock for tests (scheduler.Config.Now) that waits
// only for time to pass: it starts at the wall clock shifted by Shift and
// runs Rate times as fast. Timers of the scheduler (reconcile, compaction)
// still tick on the wall clock, and runs are real processes.
type Clock struct {
	Shift time.Duration
	Rate  float64 // 0 means 1
	start time.Time
}

// NewClock starts a clock at the wall clock shifted by shift, running rate
// times as fast as it.
func NewClock(shift time.Duration, rate float64) *Clock {
	return &Clock{Shift: shift, Rate: rate, start: time.Now()}
}

// Now is the clock's time: give it to scheduler.Config.Now.
func (c *Clock) Now() time.Time {
	rate := c.Rate
	if rate == 0 {
		rate = 1
	}
	wall := time.Now()
	return c.start.Add(c.Shift + time.Duration(float64(wall.Sub(c.start))*rate)).Round(0)
}

// WallFor is how long the wall clock takes for d of this clock to pass.
func (c *Clock) WallFor(d time.Duration) time.Duration {
	if c.Rate == 0 {
		return d
	}
	return time.Duration(float64(d) / c.Rate)
}

// JSON encodes v for a record or message a test writes, failing the test
// if it cannot.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return data
}

// FreeAddr returns a loopback host:port nothing listened on a moment ago,
// for a process the test starts with an address of its own.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := embedded.FreeAddr()
	if err != nil {
		t.Fatalf("free address: %v", err)
	}
	return addr
}

// RecordKill writes a kill for the running attempt of id into its record
// (compared on the record's revision), as the leader does, without the
// hint that follows (SendKillHint).
func (c *Cluster) RecordKill(t testing.TB, id store.FireID, reason string) store.Fire {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Fire(id))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read fire %s: %d keys, %v", id, len(resp.Kvs), err)
	}
	var f store.Fire
	if err := json.Unmarshal(resp.Kvs[0].Value, &f); err != nil {
		t.Fatalf("decode fire %s: %v", id, err)
	}
	if f.State != store.FireRunning {
		t.Fatalf("record a kill on %s: it is %s, not running", id, f.State)
	}
	f.Kill = &store.FireKill{Attempt: f.Attempt, Reason: reason, At: time.Now().UTC()}
	key := c.Keys.Fire(id)
	txn, err := c.Etcd.Txn(context.Background()).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpPut(key, string(JSON(t, f)))).Commit()
	if err != nil || !txn.Succeeded {
		t.Fatalf("record a kill on %s: succeeded %v, %v", id, txn != nil && txn.Succeeded, err)
	}
	return f
}

// SendKillHint publishes the kill hint for attempt of id to node, as the
// leader does after recording the kill (or as anyone on NATS could).
func (c *Cluster) SendKillHint(t testing.TB, node string, id store.FireID, attempt int) {
	t.Helper()
	if err := c.NATS.Publish(store.KillSubject("aion.", node), JSON(t, store.Kill{Fire: id, Attempt: attempt})); err != nil {
		t.Fatalf("kill hint for %s to %s: %v", id, node, err)
	}
}

// AskLog signs req with the log signing key read from etcd, as a
// scheduler's API server does, and sends it to node's executor
// (SendLogRequest).
func (c *Cluster) AskLog(t testing.TB, node string, req store.LogRequest) store.LogChunk {
	t.Helper()
	key, err := store.LogSigningKey(context.Background(), c.Etcd, c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	req.Sign(key, time.Now().Add(store.LogRequestTTL))
	return c.SendLogRequest(t, node, req)
}

// SendLogRequest sends req as it is to node's executor over NATS and
// returns the answer.
func (c *Cluster) SendLogRequest(t testing.TB, node string, req store.LogRequest) store.LogChunk {
	t.Helper()
	msg, err := c.NATS.Request(store.LogSubject("aion.", node), JSON(t, req), 2*time.Second)
	if err != nil {
		t.Fatalf("log request to %s: %v", node, err)
	}
	var chunk store.LogChunk
	if err := json.Unmarshal(msg.Data, &chunk); err != nil {
		t.Fatalf("log answer of %s: %v", node, err)
	}
	return chunk
}
