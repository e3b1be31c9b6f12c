// Package apitest runs the processes of an Aion cluster inside a test, on a
// clustertest cluster (real etcd and NATS): schedulers and executors with
// test-friendly timings. Tests of the API and of the CLI use it to drive
// real runs end to end.
package apitest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/clustertest"
)

// StartScheduler runs a scheduler until the test ends.
func StartScheduler(t testing.TB, c *clustertest.Cluster, id string) {
	t.Helper()
	cfg := scheduler.DefaultConfig()
	cfg.ID = id
	cfg.ReconcileEvery = 200 * time.Millisecond
	cfg.RedispatchAfter = time.Second
	runUntilCleanup(t, scheduler.New(cfg, c.Etcd, c.NATS, c.Log).Run)
}

// StartExecutor runs an executor until the test ends; it keeps run output
// in a temporary directory.
func StartExecutor(t testing.TB, c *clustertest.Cluster, id string, slots int, labels map[string]string) {
	t.Helper()
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.Slots, cfg.Labels = id, slots, labels
	cfg.OutputDir = t.TempDir()
	cfg.Grace = 2 * time.Second
	runUntilCleanup(t, executor.New(cfg, c.Etcd, c.NATS, c.Log).Run)
}

// runUntilCleanup runs run in a goroutine; when the test ends it cancels
// the context and waits for run to return.
func runUntilCleanup(t testing.TB, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}
