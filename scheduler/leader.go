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
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// errNotLeader means a fenced transaction failed on the leadership compare:
// another scheduler leads now, so this one stops acting at once.
var errNotLeader = errors.New("scheduler: not leader")

// maxFiresPerTxn keeps a planning transaction under etcd's default limit of
// 128 operations (each fire is one put, plus the state put).
const maxFiresPerTxn = 60

// maxCatchupScan bounds how many missed nominal times are enumerated after
// an outage; times beyond it are skipped in bulk.
const maxCatchupScan = 100_000

// leader is one leadership term. Its run loop is the only goroutine that
// touches its fields.
type leader struct {
	s        *Scheduler
	keys     store.Keys
	log      *zap.Logger
	fence    clientv3.Cmp
	leaseKey string
	leaseRev int64

	jobs      map[string]*jobEntry
	children  map[string][]string // parent name → child names
	queue     fireQueue
	open      map[store.FireID]*openFire
	openByJob map[string]map[store.FireID]*openFire
	pending   map[store.FireID]bool // final fires whose effects are not recorded yet
	nodes     *placement
	loads     chan store.LoadReport
	requests  []*mvccpb.KeyValue // run requests found at election, planned first
	// requestsDirty says a request could not be applied (a conflicting
	// write); reconcile reads the pending requests again.
	requestsDirty bool
}

// jobEntry is the leader's view of one job.
type jobEntry struct {
	job      *jobspec.Job
	sched    jobspec.Schedule // nil for manual and dependent jobs
	sels     []jobspec.Selector
	state    store.JobState
	stateRev int64 // mod revision of the state key; 0 when missing
	next     time.Time
	index    int
}

// openFire is a planned or running fire.
type openFire struct {
	fire         store.Fire
	rev          int64
	dispatchedAt time.Time
}

func newLeader(s *Scheduler, key string, rev int64) *leader {
	return &leader{
		s:         s,
		keys:      s.keys,
		log:       s.log,
		fence:     clientv3.Compare(clientv3.CreateRevision(key), "=", rev),
		leaseKey:  key,
		leaseRev:  rev,
		jobs:      make(map[string]*jobEntry),
		children:  make(map[string][]string),
		open:      make(map[store.FireID]*openFire),
		openByJob: make(map[string]map[store.FireID]*openFire),
		pending:   make(map[store.FireID]bool),
		nodes:     newPlacement(),
		loads:     make(chan store.LoadReport, 256),
	}
}

func (l *leader) now() time.Time { return l.s.cfg.Now() }

// run leads until ctx ends or leadership is lost.
func (l *leader) run(ctx context.Context) error {
	sub, err := l.s.nats.Subscribe(store.SubjectLoad, func(m *nats.Msg) {
		var r store.LoadReport
		if json.Unmarshal(m.Data, &r) == nil {
			select {
			case l.loads <- r:
			default: // the loop is busy; the next report comes in a second
			}
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to load reports: %w", err)
	}
	defer sub.Unsubscribe()

	rev, err := l.loadSnapshot(ctx)
	if err != nil {
		return err
	}
	watch := l.s.etcd.Watch(clientv3.WithRequireLeader(ctx), l.keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for id := range l.pending {
		if err := l.process(ctx, id); err != nil {
			return err
		}
	}
	for _, kv := range l.requests {
		if err := l.planRequest(ctx, kv); err != nil {
			return err
		}
	}
	l.requests = nil
	reconcile := time.NewTicker(l.s.cfg.ReconcileEvery)
	defer reconcile.Stop()
	compact := time.NewTicker(l.s.cfg.CompactEvery)
	defer compact.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := l.planDue(ctx); err != nil {
			return err
		}
		wait := time.Hour
		if e := l.queue.peek(); e != nil {
			wait = max(e.next.Sub(l.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case resp, ok := <-watch:
			if !ok {
				return errors.New("etcd watch closed")
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("etcd watch: %w", err)
			}
			for _, ev := range resp.Events {
				if err := l.onEvent(ctx, ev); err != nil {
					return err
				}
			}
		case r := <-l.loads:
			l.nodes.report(r)
		case <-reconcile.C:
			if err := l.reconcile(ctx); err != nil {
				return err
			}
		case <-compact.C:
			if err := l.compact(ctx); err != nil {
				return err
			}
		case <-timer.C:
		}
	}
}

// loadSnapshot reads everything the leader needs at one revision and
// returns that revision, from which the watch continues.
func (l *leader) loadSnapshot(ctx context.Context) (int64, error) {
	resp, err := l.s.etcd.Get(ctx, l.keys.Prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("read state: %w", err)
	}
	states := make(map[string]*mvccpb.KeyValue)
	var jobs, fires, requests []*mvccpb.KeyValue
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		switch {
		case strings.HasPrefix(key, l.keys.Jobs()):
			jobs = append(jobs, kv)
		case strings.HasPrefix(key, l.keys.States()):
			states[strings.TrimPrefix(key, l.keys.States())] = kv
		case strings.HasPrefix(key, l.keys.Fires()):
			fires = append(fires, kv)
		case strings.HasPrefix(key, l.keys.Nodes()):
			l.onNode(kv, false)
		case strings.HasPrefix(key, l.keys.Requests()):
			requests = append(requests, kv)
		}
	}
	for _, kv := range jobs {
		name := strings.TrimPrefix(string(kv.Key), l.keys.Jobs())
		l.putJob(name, kv.Value, states[name])
	}
	for _, kv := range fires {
		l.onFire(kv, false)
	}
	l.requests = requests
	l.log.Info("leading", zap.Int("jobs", len(l.jobs)), zap.Int("open_fires", len(l.open)),
		zap.Int("executors", len(l.nodes.nodes)), zap.Int64("revision", resp.Header.Revision))
	return resp.Header.Revision, nil
}

// onEvent applies one watched change.
func (l *leader) onEvent(ctx context.Context, ev *clientv3.Event) error {
	key := string(ev.Kv.Key)
	deleted := ev.Type == clientv3.EventTypeDelete
	switch {
	case strings.HasPrefix(key, l.keys.Jobs()):
		name := strings.TrimPrefix(key, l.keys.Jobs())
		if deleted {
			l.removeJob(name)
			return nil
		}
		if e, ok := l.jobs[name]; ok {
			l.updateJob(e, ev.Kv.Value)
			return nil
		}
		state, err := l.s.etcd.Get(ctx, l.keys.State(name))
		if err != nil {
			return fmt.Errorf("read state of %s: %w", name, err)
		}
		var kv *mvccpb.KeyValue
		if len(state.Kvs) > 0 {
			kv = state.Kvs[0]
		}
		l.putJob(name, ev.Kv.Value, kv)
	case strings.HasPrefix(key, l.keys.States()):
		e, ok := l.jobs[strings.TrimPrefix(key, l.keys.States())]
		if !ok {
			return nil
		}
		if deleted {
			e.state, e.stateRev = store.JobState{}, 0
			return nil
		}
		if ev.Kv.ModRevision > e.stateRev {
			l.setState(e, ev.Kv)
		}
	case strings.HasPrefix(key, l.keys.Fires()):
		if ev.IsCreate() {
			l.countFire(ev.Kv.Value)
		}
		if id := l.onFire(ev.Kv, deleted); id != nil {
			return l.process(ctx, *id)
		}
	case strings.HasPrefix(key, l.keys.Nodes()):
		l.onNode(ev.Kv, deleted)
	case strings.HasPrefix(key, l.keys.Requests()):
		if !deleted {
			return l.planRequest(ctx, ev.Kv)
		}
	}
	return nil
}

func (l *leader) onNode(kv *mvccpb.KeyValue, deleted bool) {
	id := strings.TrimPrefix(string(kv.Key), l.keys.Nodes())
	if deleted {
		l.nodes.unregister(id)
		l.log.Info("executor gone", zap.String("node", id))
		return
	}
	var n store.Node
	if err := json.Unmarshal(kv.Value, &n); err != nil {
		l.log.Warn("bad executor registration", zap.String("key", string(kv.Key)), zap.Error(err))
		return
	}
	if !l.nodes.live(n.ID) {
		l.log.Info("executor registered", zap.String("node", n.ID), zap.Any("labels", n.Labels), zap.Int("slots", n.Slots))
	}
	l.nodes.register(n)
}

// onFire tracks a fire record; it returns the fire's ID when the fire is
// final and its effects still have to be recorded.
func (l *leader) onFire(kv *mvccpb.KeyValue, deleted bool) *store.FireID {
	id, ok := l.keys.FireIDFromKey(string(kv.Key))
	if !ok {
		return nil
	}
	if deleted {
		l.closeFire(id)
		return nil
	}
	var f store.Fire
	if err := json.Unmarshal(kv.Value, &f); err != nil {
		l.log.Warn("bad fire record", zap.String("key", string(kv.Key)), zap.Error(err))
		return nil
	}
	if !f.State.Final() {
		l.openFire(&openFire{fire: f, rev: kv.ModRevision})
		return nil
	}
	l.closeFire(id)
	if f.Processed {
		delete(l.pending, id)
		return nil
	}
	l.pending[id] = true
	return &id
}

// openFire records an open fire, keeping the per-node counts right.
func (l *leader) openFire(of *openFire) {
	if old, ok := l.open[of.fire.ID]; ok {
		if old.rev > of.rev {
			return // a stale event; the newer record is known
		}
		l.nodes.assigned[old.fire.Node]--
		of.dispatchedAt = old.dispatchedAt
	}
	l.open[of.fire.ID] = of
	l.nodes.assigned[of.fire.Node]++
	if l.openByJob[of.fire.ID.Job] == nil {
		l.openByJob[of.fire.ID.Job] = make(map[store.FireID]*openFire)
	}
	l.openByJob[of.fire.ID.Job][of.fire.ID] = of
}

func (l *leader) closeFire(id store.FireID) {
	if old, ok := l.open[id]; ok {
		l.nodes.assigned[old.fire.Node]--
		delete(l.openByJob[id.Job], id)
		if len(l.openByJob[id.Job]) == 0 {
			delete(l.openByJob, id.Job)
		}
		delete(l.open, id)
	}
}

func (l *leader) putJob(name string, data []byte, state *mvccpb.KeyValue) {
	e := &jobEntry{index: -1}
	if state != nil {
		l.setState(e, state)
	}
	if !l.decodeJob(e, name, data) {
		return
	}
	l.jobs[name] = e
	l.rebuildChildren()
	l.queue.set(e, l.firstNext(e))
}

func (l *leader) updateJob(e *jobEntry, data []byte) {
	if !l.decodeJob(e, e.job.Name, data) {
		return
	}
	l.rebuildChildren()
	l.queue.set(e, l.firstNext(e))
}

func (l *leader) decodeJob(e *jobEntry, name string, data []byte) bool {
	var j jobspec.Job
	if err := json.Unmarshal(data, &j); err != nil {
		l.log.Error("bad job definition in etcd", zap.String("job", name), zap.Error(err))
		return false
	}
	sched, err := j.ParsedSchedule(e.state.AppliedAt)
	if err != nil {
		l.log.Error("bad schedule in etcd", zap.String("job", name), zap.Error(err))
		return false
	}
	sels, err := jobspec.ParseSelectors(j.Constraints)
	if err != nil {
		l.log.Error("bad constraints in etcd", zap.String("job", name), zap.Error(err))
		return false
	}
	e.job, e.sched, e.sels = &j, sched, sels
	return true
}

func (l *leader) removeJob(name string) {
	if e, ok := l.jobs[name]; ok {
		l.queue.remove(e)
		delete(l.jobs, name)
		l.rebuildChildren()
	}
}

func (l *leader) setState(e *jobEntry, kv *mvccpb.KeyValue) {
	var st store.JobState
	if err := json.Unmarshal(kv.Value, &st); err != nil {
		l.log.Error("bad job state in etcd", zap.String("key", string(kv.Key)), zap.Error(err))
		return
	}
	e.state, e.stateRev = st, kv.ModRevision
}

func (l *leader) rebuildChildren() {
	clear(l.children)
	for name, e := range l.jobs {
		for _, p := range e.job.Parents {
			l.children[p] = append(l.children[p], name)
		}
	}
}

// firstNext is the job's next nominal time after its high-water mark (or
// after it was applied, for a job never planned).
func (l *leader) firstNext(e *jobEntry) time.Time {
	if e.sched == nil {
		return time.Time{}
	}
	from := e.state.HighWater
	if from.IsZero() {
		from = e.state.AppliedAt
	}
	if from.IsZero() {
		from = l.now()
	}
	return e.sched.Next(from)
}

// countFire counts a newly created fire record in the metrics.
func (l *leader) countFire(value []byte) {
	var f store.Fire
	if json.Unmarshal(value, &f) != nil {
		return
	}
	if f.State == store.FireSkipped {
		l.s.metrics.skipped.WithLabelValues(skipReason(f.Reason)).Inc()
		return
	}
	l.s.metrics.planned.Inc()
}
