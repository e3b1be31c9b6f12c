package scheduler_test

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

// startStoppable runs a scheduler until the returned stop is called.
func startStoppable(t *testing.T, c *clustertest.Cluster, id string, log *zap.Logger) (stop func()) {
	cfg := scheduler.DefaultConfig()
	cfg.ID, cfg.SessionTTL, cfg.ReconcileEvery = id, 2*time.Second, 200*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := scheduler.New(cfg, c.Etcd, c.NATS, log).Run(ctx); err != nil {
			t.Errorf("scheduler %s: %v", id, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// TestStandby_FollowsChangesAndTakesOver: the standby keeps its copy of the
// jobs while another leads — a job applied then is planned by the standby
// once it leads — and takes over from that copy without reading the jobs
// again.
func TestStandby_FollowsChangesAndTakesOver(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (leader hand-over)")
	c := clustertest.Start(t)
	c.StartExecutor(t, "x1", 4, nil)
	stopA := startStoppable(t, c, "a", zap.NewNop())
	clustertest.WaitFor(t, 10*time.Second, "a to lead", func() bool { return c.Leader(t) == "a" })
	core, logs := observer.New(zap.InfoLevel)
	startStoppable(t, c, "b", zap.New(core))
	time.Sleep(time.Second) // b has loaded its copy and follows
	c.Apply(t, `
name: late
schedule: "* * * * * *"
cron_seconds: true
concurrency: allow
command: "true"
`)
	time.Sleep(time.Second)
	stopA() // resigns: b leads at once
	clustertest.WaitFor(t, 10*time.Second, "b to lead", func() bool { return c.Leader(t) == "b" })
	clustertest.WaitFor(t, 10*time.Second, "a run of the late job planned by b", func() bool {
		for _, f := range c.Fires(t, "late") {
			if f.PlannedBy == "b" && f.State == store.FireSucceeded {
				return true
			}
		}
		return false
	})
	if logs.FilterMessageSnippet("reading everything again").Len() > 0 {
		t.Error("b read everything again; want it to lead from its copy")
	}
	if logs.FilterMessage("leading").Len() != 1 {
		t.Errorf("b logged %d times that it leads, want 1", logs.FilterMessage("leading").Len())
	}
}

// TestStandby_WhoseSessionEndsCampaignsAgain: a standby whose etcd session
// ends (its lease revoked here, as etcd does once the standby has been
// cut off for the TTL) is no candidate any more, its election key gone
// with the lease; it starts a new session and campaigns again at once,
// rather than waiting, a candidate no longer, for the leader to go.
func TestStandby_WhoseSessionEndsCampaignsAgain(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (a standby's session ends)")
	c := clustertest.Start(t)
	startStoppable(t, c, "a", zap.NewNop())
	clustertest.WaitFor(t, 10*time.Second, "a to lead", func() bool { return c.Leader(t) == "a" })
	startStoppable(t, c, "b", zap.NewNop())
	candidacy := func() clientv3.LeaseID {
		resp, err := c.Etcd.Get(t.Context(), c.Keys.Election(), clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			if string(kv.Value) == "b" {
				return clientv3.LeaseID(kv.Lease)
			}
		}
		return 0
	}
	var first clientv3.LeaseID
	clustertest.WaitFor(t, 10*time.Second, "b to campaign", func() bool { first = candidacy(); return first != 0 })
	if _, err := c.Etcd.Revoke(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	clustertest.WaitFor(t, 5*time.Second, "b to campaign again on a new session", func() bool {
		l := candidacy()
		return l != 0 && l != first
	})
	t.Logf("b campaigned again %s after its session's lease was revoked", time.Since(revokedAt).Round(time.Millisecond))
	if leader := c.Leader(t); leader != "a" {
		t.Errorf("leader %q, want a to lead throughout", leader)
	}
}
