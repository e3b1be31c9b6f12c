// Package bench measures Aion end to end: it starts a stack (embedded etcd
// and NATS, one scheduler and several executors, all in this process),
// loads synthetic jobs and reports what the fire records show — how late
// runs start at a given rate of fires per second, the highest rate that
// stays on time, and how long a manual trigger takes to start.
//
// It backs the `aion bench` command; BENCHMARKS.md holds its figures.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

// Stack is a running Aion: etcd, NATS, one scheduler and the executors.
type Stack struct {
	Etcd    *clientv3.Client
	NATS    *nats.Conn
	Keys    store.Keys
	EtcdURL string
	NATSURL string

	stop []func()
	wg   sync.WaitGroup
	errs chan error
}

// StackConfig sizes the stack.
type StackConfig struct {
	Dir       string // etcd data and run output; a temporary directory when empty
	Executors int
	Slots     int // per executor
	// NoScheduler leaves scheduling to scheduler processes the caller
	// starts (StartScheduler).
	NoScheduler bool
	// ExecutorBinary, when set, runs the executors as processes of that
	// aion binary, as in production (a run's fork and exec then happen
	// outside the process holding etcd); else they run in this process.
	ExecutorBinary string
	Log            *zap.Logger
}

// Start starts a stack; Close stops it.
func Start(ctx context.Context, cfg StackConfig) (*Stack, error) {
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	s := &Stack{Keys: store.Keys{Prefix: store.DefaultPrefix}, errs: make(chan error, 16)}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "aion-bench-")
		if err != nil {
			return nil, err
		}
		dir = tmp
		s.stop = append(s.stop, func() { _ = os.RemoveAll(tmp) })
	}
	etcdSrv, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: dir + "/etcd", MaxTxnOps: 10_000, Log: zap.NewNop()})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.stop = append(s.stop, etcdSrv.Close)
	s.EtcdURL = etcdSrv.Endpoint()
	natsSrv, err := embedded.StartNATS("")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.stop = append(s.stop, natsSrv.Close)
	s.NATSURL = natsSrv.URL()
	if s.Etcd, err = clientv3.New(clientv3.Config{Endpoints: []string{etcdSrv.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}); err != nil {
		s.Close()
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	s.stop = append(s.stop, func() { _ = s.Etcd.Close() })
	if s.NATS, err = nats.Connect(natsSrv.URL()); err != nil {
		s.Close()
		return nil, fmt.Errorf("nats client: %w", err)
	}
	s.stop = append(s.stop, s.NATS.Close)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = append(s.stop, func() { cancel(); s.wg.Wait() })
	if !cfg.NoScheduler {
		scfg := scheduler.DefaultConfig()
		scfg.ID = "bench"
		s.run(runCtx, scheduler.New(scfg, s.Etcd, s.NATS, log).Run)
	}
	for i := range cfg.Executors {
		if cfg.ExecutorBinary != "" {
			id := fmt.Sprintf("x%d", i+1)
			p, err := s.startProcess(ctx, cfg.ExecutorBinary, nil, "executor", "--node-id", id, "--slots", fmt.Sprint(cfg.Slots),
				"--output-dir", fmt.Sprintf("%s/output/%s", dir, id), "--grace", "1s", "--docker", "off")
			if err != nil {
				s.Close()
				return nil, err
			}
			s.stop = append(s.stop, p.kill)
			continue
		}
		xcfg := executor.DefaultConfig()
		xcfg.NodeID = fmt.Sprintf("x%d", i+1)
		xcfg.Slots = cfg.Slots
		xcfg.OutputDir = fmt.Sprintf("%s/output/%s", dir, xcfg.NodeID)
		xcfg.Grace = time.Second
		s.run(runCtx, executor.New(xcfg, s.Etcd, s.NATS, log).Run)
	}
	if err := s.waitReady(ctx, !cfg.NoScheduler, cfg.Executors); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) run(ctx context.Context, f func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(ctx); err != nil {
			s.errs <- err
		}
	}()
}

// waitReady waits for a leader (if wanted) and every executor's registration.
func (s *Stack) waitReady(ctx context.Context, leader bool, executors int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		leaders, err := s.Etcd.Get(ctx, s.Keys.Election(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		nodes, err := s.Etcd.Get(ctx, s.Keys.Nodes(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if (!leader || leaders.Count > 0) && nodes.Count == int64(executors) {
			return nil
		}
		select {
		case err := <-s.errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("bench: no leader or not every executor registered within 30 s")
}

// Close stops everything, last started first.
func (s *Stack) Close() {
	for i := len(s.stop) - 1; i >= 0; i-- {
		s.stop[i]()
	}
	s.stop = nil
}

// Apply stores jobs as `aion apply` does (without prune).
func (s *Stack) Apply(ctx context.Context, jobs []*jobspec.Job) error {
	if _, err := store.Apply(ctx, s.Etcd, s.Keys, jobs, store.ApplyOptions{Set: "bench"}, time.Now()); err != nil {
		return fmt.Errorf("apply %d jobs: %w", len(jobs), err)
	}
	return nil
}

// Fires reads every fire record.
func (s *Stack) Fires(ctx context.Context) ([]store.Fire, error) {
	resp, err := s.Etcd.Get(ctx, s.Keys.Fires(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read fires: %w", err)
	}
	fires := make([]store.Fire, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var f store.Fire
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		fires = append(fires, f)
	}
	return fires, nil
}

// Durations summarises a sample.
type Durations struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Summarise sorts d and returns its percentiles.
func Summarise(d []time.Duration) Durations {
	if len(d) == 0 {
		return Durations{}
	}
	slices.Sort(d)
	at := func(p int) time.Duration { return d[min(len(d)-1, len(d)*p/100)] }
	return Durations{N: len(d), P50: at(50), P90: at(90), P99: at(99), Max: d[len(d)-1]}
}

func (d Durations) String() string {
	r := func(x time.Duration) time.Duration {
		if x > 10*time.Millisecond {
			return x.Round(time.Millisecond)
		}
		return x.Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (n=%d)", r(d.P50), r(d.P90), r(d.P99), r(d.Max), d.N)
}
