package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// campaign is one etcd session of this scheduler: it campaigns (keeping
// the jobs warm as a standby meanwhile), leads one term while elected, and
// steps down when its session ends or ctx ends.
func (s *Scheduler) campaign(ctx context.Context) error {
	ttl := int((s.cfg.SessionTTL + time.Second - 1) / time.Second)
	session, err := concurrency.NewSession(s.etcd, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer session.Close()
	election := concurrency.NewElection(session, s.keys.Election())
	campaignCtx, stopCampaign := context.WithCancel(ctx)
	defer stopCampaign()
	won := make(chan error, 1)
	go func() { won <- election.Campaign(campaignCtx, s.cfg.ID) }()
	sb := &standby{etcd: s.etcd, keys: s.keys, log: s.log, jobs: s.newJobTable()}
	jobsRev, err := sb.follow(ctx, won, session.Done())
	if err != nil {
		stopCampaign()
		return fmt.Errorf("campaign: %w", err)
	}
	select {
	case <-session.Done():
		return fmt.Errorf("campaign: %w", errSessionEnded)
	default:
	}
	termCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-session.Done():
			s.log.Warn("etcd session lost: stepping down")
			cancel()
		case <-termCtx.Done():
		}
	}()
	s.log.Info("elected leader", zap.String("key", election.Key()), zap.Int64("rev", election.Rev()))
	t := newTerm(s, sb.jobs, election.Key(), election.Rev())
	s.metrics.leader.Set(1)
	err = t.run(termCtx, jobsRev)
	s.metrics.leader.Set(0)
	if ctx.Err() != nil {
		// Shutting down: hand leadership over now rather than after the TTL.
		resignCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
		defer done()
		if rerr := election.Resign(resignCtx); rerr != nil {
			s.log.Warn("resign", zap.Error(rerr))
		}
	}
	return err
}

// errSessionEnded is why a campaign ends when its session does: it
// starts again with a new one.
var errSessionEnded = errors.New("etcd session expired while campaigning")

func (s *Scheduler) newJobTable() *jobTable {
	return newJobTable(s.etcd, s.keys, s.log, s.metrics, s.cfg.Now)
}

// term is one leadership term: it owns the event loop, the only goroutine
// that touches the term's parts, and routes to them what etcd's watch, NATS
// and the clock bring. Each part owns its state:
//
//	jobs        the jobs, their states and the due heap (inherited from the standby)
//	planner     due times → fire records (misfire and concurrency policies)
//	nodes       placement: live executors and the open fires counted against each
//	fires       the open fires (planned or running)
//	waiting     planned fires without a node, placed as slots free
//	send        dispatch and kill over NATS
//	finisher    results: retries, last results, dependent fires
//	intents     user requests: manual runs, kills, pauses, backfills
//	reconciler  once a second: lost runs, unclaimed fires, leftovers
//	compactor   fire history per job
//
// Every write goes through fence, which proves the term still leads.
type term struct {
	s          *Scheduler
	fence      *fence
	jobs       *jobTable
	nodes      *placement
	fires      *openFires
	waiting    *waitingQueue
	send       *dispatcher
	planner    *planner
	finisher   *finisher
	intents    *intents
	reconciler *reconciler
	compactor  *compactor
	loads      chan store.LoadReport
	requests   []*mvccpb.KeyValue // requests found at election, acted on first
}

// newTerm wires a term's parts around the jobs a standby loaded; the term
// writes fenced on the election key it won (key, created at rev).
func newTerm(s *Scheduler, jobs *jobTable, key string, rev int64) *term {
	cfg, log, keys := s.cfg, s.log, s.keys
	fence := &fence{etcd: s.etcd, key: key, rev: rev, timeout: cfg.SessionTTL}
	nodes := newPlacement()
	waiting := &waitingQueue{keys: keys, log: log, metrics: s.metrics, jobs: jobs, nodes: nodes, fence: fence,
		waiting: make(map[store.FireID]*openFire)}
	fires := newOpenFires(keys, log, s.metrics, nodes, waiting)
	send := &dispatcher{nats: s.nats, prefix: cfg.SubjectPrefix, etcd: s.etcd, keys: keys, fence: fence, fires: fires, log: log, now: cfg.Now}
	waiting.fires, waiting.send = fires, send
	fin := &finisher{id: cfg.ID, etcd: s.etcd, keys: keys, log: log, metrics: s.metrics, now: cfg.Now,
		jobs: jobs, fires: fires, nodes: nodes, fence: fence, send: send, pending: make(map[store.FireID]bool)}
	in := &intents{id: cfg.ID, etcd: s.etcd, keys: keys, log: log, now: cfg.Now,
		jobs: jobs, fires: fires, nodes: nodes, fence: fence, send: send}
	return &term{
		s: s, fence: fence, jobs: jobs, nodes: nodes, fires: fires, waiting: waiting, send: send,
		planner: &planner{id: cfg.ID, misfireGrace: cfg.MisfireGrace, log: log, metrics: s.metrics, keys: keys,
			jobs: jobs, fires: fires, nodes: nodes, fence: fence, send: send},
		finisher: fin,
		intents:  in,
		reconciler: &reconciler{keys: keys, log: log, redispatchAfter: cfg.RedispatchAfter, jobs: jobs, fires: fires,
			nodes: nodes, waiting: waiting, finisher: fin, intents: in, fence: fence, send: send},
		compactor: &compactor{keep: cfg.HistoryKeep, etcd: s.etcd, keys: keys, log: log, jobs: jobs, fence: fence,
			records: make(map[string]int)},
		loads: make(chan store.LoadReport, 256),
	}
}

func (t *term) now() time.Time { return t.s.cfg.Now() }

// run leads until ctx ends or leadership is lost. jobsRev is the revision
// the standby's jobs are at (0: none loaded yet).
func (t *term) run(ctx context.Context, jobsRev int64) error {
	rev, err := t.load(ctx, jobsRev)
	if err != nil {
		return err
	}
	// Subscribed once loaded (load may replace the term's parts); reports
	// come every second, so none is missed for long.
	sub, err := t.s.nats.Subscribe(store.LoadSubject(t.s.cfg.SubjectPrefix), t.onLoad)
	if err != nil {
		return fmt.Errorf("subscribe to load reports: %w", err)
	}
	defer sub.Unsubscribe()
	watch := t.s.etcd.Watch(clientv3.WithRequireLeader(ctx), t.s.keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	if err := t.catchUp(ctx); err != nil {
		return err
	}
	reconcile := time.NewTicker(t.s.cfg.ReconcileEvery)
	defer reconcile.Stop()
	compact := time.NewTicker(t.s.cfg.CompactEvery)
	defer compact.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := t.planner.planDue(ctx, t.now()); err != nil {
			return err
		}
		timer.Reset(t.untilDue())
		select {
		case <-ctx.Done():
			return nil
		case resp, ok := <-watch:
			if !ok {
				return errors.New("etcd watch closed")
			}
			if err := t.onWatch(ctx, resp); err != nil {
				return err
			}
		case r := <-t.loads:
			t.nodes.report(r)
		case <-reconcile.C:
			if err := t.reconciler.reconcile(ctx, t.now()); err != nil {
				return err
			}
		case <-compact.C:
			if err := t.compactor.compact(ctx); err != nil {
				return err
			}
		case <-timer.C:
		}
	}
}

// onLoad hands a load report to the loop (NATS calls it on its own
// goroutine); a busy loop drops it, the next comes in a second.
func (t *term) onLoad(m *nats.Msg) {
	var r store.LoadReport
	if json.Unmarshal(m.Data, &r) != nil {
		return
	}
	select {
	case t.loads <- r:
	default:
	}
}

// untilDue is how long the loop may sleep before the next job is due.
func (t *term) untilDue() time.Duration {
	if e := t.jobs.firstDue(); e != nil {
		return max(e.next.Sub(t.now()), t.planner.backoffUntil.Sub(t.now()), 0)
	}
	return time.Hour
}

// catchUp finishes what the previous leader left: results not processed,
// requests not acted on.
func (t *term) catchUp(ctx context.Context) error {
	if err := t.finisher.processPending(ctx); err != nil {
		return err
	}
	for _, kv := range t.requests {
		if err := t.intents.handle(ctx, kv); err != nil {
			return err
		}
	}
	t.requests = nil
	return nil
}

// onWatch applies one watch response: each change, then the effects of
// the fires that ended in it, then the placement of waiting fires on the
// slots those freed.
func (t *term) onWatch(ctx context.Context, resp clientv3.WatchResponse) error {
	if err := resp.Err(); err != nil {
		return fmt.Errorf("etcd watch: %w", err)
	}
	for _, ev := range resp.Events {
		if err := t.onEvent(ctx, ev); err != nil {
			return err
		}
	}
	if err := t.finisher.processFinished(ctx); err != nil {
		return err
	}
	return t.waiting.place(ctx, t.now(), false)
}

// load reads everything the term needs at one revision and returns that
// revision, from which the watch continues. When the standby has loaded the
// jobs already (at jobsRev), the rest is read at that same revision; if
// etcd has compacted it meanwhile, everything is read afresh.
func (t *term) load(ctx context.Context, jobsRev int64) (int64, error) {
	if jobsRev > 0 {
		err := t.loadRest(ctx, jobsRev)
		if err == nil {
			return jobsRev, nil
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return 0, err
		}
		t.s.log.Info("the standby copy of the jobs is older than etcd's history: reading everything again", zap.Int64("revision", jobsRev))
		*t = *newTerm(t.s, t.s.newJobTable(), t.fence.key, t.fence.rev)
	}
	rev, err := t.jobs.loadNow(ctx)
	if err != nil {
		return 0, err
	}
	return rev, t.loadRest(ctx, rev)
}

// loadRest reads the executors, the fires and the requests at rev.
func (t *term) loadRest(ctx context.Context, rev int64) error {
	keys := t.s.keys
	if err := newPager(t.s.etcd, keys.Nodes(), rev).each(ctx, func(kv *mvccpb.KeyValue) { t.onNode(kv, false) }); err != nil {
		return err
	}
	if err := newPager(t.s.etcd, keys.Fires(), rev).each(ctx, func(kv *mvccpb.KeyValue) {
		t.compactor.count(kv, +1)
		if f, unprocessed := t.fires.observe(kv, false, false); unprocessed {
			t.finisher.ended(f, nil)
		}
	}); err != nil {
		return err
	}
	if err := newPager(t.s.etcd, keys.Requests(), rev).each(ctx, func(kv *mvccpb.KeyValue) { t.requests = append(t.requests, kv) }); err != nil {
		return err
	}
	t.s.log.Info("leading", zap.Int("jobs", t.jobs.len()), zap.Int("open_fires", t.fires.len()),
		zap.Int("executors", t.nodes.count()), zap.Int64("revision", rev))
	return nil
}

// onEvent routes one watched change to the part that owns it.
func (t *term) onEvent(ctx context.Context, ev *clientv3.Event) error {
	keys := t.s.keys
	key := string(ev.Kv.Key)
	deleted := ev.Type == clientv3.EventTypeDelete
	switch {
	case strings.HasPrefix(key, keys.Jobs()):
		return t.jobs.onJobEvent(ctx, ev)
	case strings.HasPrefix(key, keys.States()):
		t.jobs.onStateEvent(ev)
	case strings.HasPrefix(key, keys.Fires()):
		t.onFireEvent(ev)
	case strings.HasPrefix(key, keys.Nodes()):
		t.onNode(ev.Kv, deleted)
	case strings.HasPrefix(key, keys.Requests()):
		if !deleted {
			return t.intents.handle(ctx, ev.Kv)
		}
	}
	return nil
}

// onFireEvent tracks a changed fire record; one that ended unprocessed
// goes to the finisher.
func (t *term) onFireEvent(ev *clientv3.Event) {
	deleted := ev.Type == clientv3.EventTypeDelete
	switch {
	case ev.IsCreate():
		t.compactor.count(ev.Kv, +1)
	case deleted:
		t.compactor.count(ev.Kv, -1)
	}
	f, unprocessed := t.fires.observe(ev.Kv, deleted, ev.IsCreate())
	switch {
	case unprocessed:
		t.finisher.ended(f, ev.Kv)
	case f.State.Final():
		t.finisher.forget(f.ID) // processed, by this term or an earlier one
	}
}

// onNode tracks an executor registration.
func (t *term) onNode(kv *mvccpb.KeyValue, deleted bool) {
	id := strings.TrimPrefix(string(kv.Key), t.s.keys.Nodes())
	if deleted {
		t.nodes.unregister(id)
		t.s.log.Info("executor gone", zap.String("node", id))
		return
	}
	var n store.Node
	if err := json.Unmarshal(kv.Value, &n); err != nil {
		t.s.log.Warn("bad executor registration", zap.String("key", string(kv.Key)), zap.Error(err))
		return
	}
	if n.ID != id || !store.ValidNodeID(id) {
		// Its ID would go into NATS subjects: a dot or a wildcard there
		// would reach other nodes.
		t.s.log.Warn("executor registration with a bad node ID: ignored", zap.String("key", string(kv.Key)), zap.String("id", n.ID))
		return
	}
	if !t.nodes.live(n.ID) {
		t.s.log.Info("executor registered", zap.String("node", n.ID), zap.Any("labels", n.Labels), zap.Int("slots", n.Slots))
	}
	t.waiting.slotFreed() // a new node, or more slots: waiting fires may fit
	t.nodes.register(n)
}
