// Package scheduler owns the leader side of Aion: etcd leader election, the
// hot standby (a campaigning scheduler keeps the jobs loaded), and the
// leader's term, which plans every due nominal time in fenced etcd
// transactions, places each run on the least-loaded eligible executor,
// dispatches it over NATS, records results (retries, dependent jobs),
// carries out user requests and repairs what messages lose. Several
// schedulers run; only the elected leader plans.
//
//	s := scheduler.New(cfg, etcdClient, natsConn, logger)
//	err := s.Run(ctx) // campaigns, leads while elected, campaigns again; returns when ctx ends
//
// The run protocol is described in docs/architecture.md; the parts of a
// term and a fire's walk through them in scheduler/README.md.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// Config tunes a scheduler. DefaultConfig gives working values.
type Config struct {
	// ID names this scheduler in the election and in logs.
	ID string
	// Prefix is the etcd key prefix (default /aion/); NATS subjects for
	// dispatch use SubjectPrefix (default "aion.").
	Prefix        string
	SubjectPrefix string
	// SessionTTL is the etcd session (leader lease) TTL: a dead leader is
	// replaced within about this long.
	SessionTTL time.Duration
	// ReconcileEvery is how often the leader repairs fires: re-dispatches
	// unclaimed ones, marks lost ones, processes unprocessed results.
	ReconcileEvery time.Duration
	// RedispatchAfter is how long a dispatched fire may stay unclaimed
	// before it is dispatched again.
	RedispatchAfter time.Duration
	// MisfireGrace is how late a nominal time may be planned as a normal
	// run; later ones follow the job's misfire policy.
	MisfireGrace time.Duration
	// HistoryKeep is how many fire records each job keeps; older final
	// ones are deleted (running and unprocessed ones never). 0 keeps all.
	HistoryKeep int
	// CompactEvery is how often the leader trims fire history.
	CompactEvery time.Duration
	// Now is the clock; tests inject one.
	Now func() time.Time
}

// DefaultConfig returns the defaults: TTL 5 s, reconcile every second,
// misfire grace one minute.
func DefaultConfig() Config {
	return Config{
		ID:              "scheduler",
		Prefix:          store.DefaultPrefix,
		SubjectPrefix:   "aion.",
		SessionTTL:      5 * time.Second,
		ReconcileEvery:  time.Second,
		RedispatchAfter: 5 * time.Second,
		MisfireGrace:    time.Minute,
		HistoryKeep:     100,
		CompactEvery:    time.Minute,
		Now:             time.Now,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("scheduler: empty ID")
	case !store.ValidSubjectPrefix(c.SubjectPrefix):
		return fmt.Errorf("scheduler: NATS subject prefix %q: want tokens of letters, digits, '-' or '_', each ending in '.', e.g. \"aion.\"", c.SubjectPrefix)
	case c.SessionTTL < time.Second:
		return fmt.Errorf("scheduler: session TTL %s is below etcd's 1s minimum", c.SessionTTL)
	case c.ReconcileEvery <= 0 || c.RedispatchAfter <= 0 || c.MisfireGrace < 0 || c.CompactEvery <= 0:
		return errors.New("scheduler: reconcile, redispatch, compaction and misfire intervals must be positive")
	case c.HistoryKeep < 0:
		return errors.New("scheduler: history keep must not be negative")
	case c.Now == nil:
		return errors.New("scheduler: nil clock")
	}
	return nil
}

// Scheduler campaigns for leadership and, while leader, plans and dispatches runs.
type Scheduler struct {
	cfg     Config
	etcd    *clientv3.Client
	nats    *nats.Conn
	log     *zap.Logger
	keys    store.Keys
	metrics *Metrics
}

// New builds a scheduler; it does nothing until Run. Without WithMetrics its
// metrics go to a private registry nobody reads.
func New(cfg Config, etcd *clientv3.Client, nc *nats.Conn, log *zap.Logger, opts ...Option) *Scheduler {
	s := &Scheduler{cfg: cfg, etcd: etcd, nats: nc, log: log.Named("scheduler").With(zap.String("id", cfg.ID)), keys: store.Keys{Prefix: cfg.Prefix}}
	for _, opt := range opts {
		opt(s)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(prometheus.NewRegistry())
	}
	return s
}

// Run campaigns for leadership until ctx ends. Each time it wins, it leads
// until its session ends (it is then no longer leader and stops at once) or
// ctx ends (it resigns so another scheduler takes over without waiting for
// the TTL).
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	for ctx.Err() == nil {
		if err := s.campaign(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("leadership term ended", zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}
