package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// errNotLeader means a fenced transaction failed on the leadership compare:
// another scheduler leads now, so this one stops acting at once.
var errNotLeader = errors.New("scheduler: not leader")

// maxTxnOps is etcd's default limit on the operations, and on the
// compares, of one transaction; planning stays under it, so Aion works
// with an etcd configured as shipped.
const maxTxnOps = 128

// maxFiresPerTxn bounds the fires of one job planned in one transaction:
// a job with more due times (catching up) is planned alone, in batches.
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
	pending   map[store.FireID]bool      // final fires whose effects are not recorded yet
	waiting   map[store.FireID]*openFire // planned fires with no node: all eligible ones were full
	// waitingOrder holds the waiting fires oldest first (sorted lazily,
	// when waitingSorted is false); entries no longer in waiting are stale
	// and skipped.
	waitingOrder  []*openFire
	waitingSorted bool
	freed         bool           // a fire closed since placeWaiting last ran: slots may be free
	records       map[string]int // fire records in etcd per job
	finished      []finishedFire // fires seen ending in the watch response being handled
	nodes         *placement
	schedules     *jobspec.ScheduleCache
	policies      map[jobPolicy]*jobPolicy // one copy of each distinct policy: see sharedPolicy
	loads         chan store.LoadReport
	requests      []*mvccpb.KeyValue // run requests found at election, planned first
	// requestsDirty says a request could not be applied (a conflicting
	// write); reconcile reads the pending requests again.
	requestsDirty bool
}

// jobEntry is the leader's view of one job. A leader may hold a million:
// the policy and the schedule, which most jobs share with many others,
// are shared copies (see sharedPolicy and jobspec.ScheduleCache).
type jobEntry struct {
	name     string
	parents  []string
	policy   *jobPolicy       // shared: never change it in place
	sched    jobspec.Schedule // nil for manual and dependent jobs; shared
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
	record       []byte // the record as stored at rev, when known: dispatches carry it
	dispatchedAt time.Time
}

func newLeader(s *Scheduler, key string, rev int64) *leader {
	l := &leader{
		s:         s,
		keys:      s.keys,
		log:       s.log,
		jobs:      make(map[string]*jobEntry),
		children:  make(map[string][]string),
		open:      make(map[store.FireID]*openFire),
		openByJob: make(map[string]map[store.FireID]*openFire),
		pending:   make(map[store.FireID]bool),
		waiting:   make(map[store.FireID]*openFire),
		records:   make(map[string]int),
		nodes:     newPlacement(),
		schedules: jobspec.NewScheduleCache(maxSharedValues),
		policies:  make(map[jobPolicy]*jobPolicy),
		loads:     make(chan store.LoadReport, 256),
	}
	l.elected(key, rev)
	return l
}

// elected sets the fence: every write of this term compares the creation
// revision of the election key the term won.
func (l *leader) elected(key string, rev int64) {
	l.fence = clientv3.Compare(clientv3.CreateRevision(key), "=", rev)
	l.leaseKey, l.leaseRev = key, rev
}

func (l *leader) now() time.Time { return l.s.cfg.Now() }

// run leads until ctx ends or leadership is lost. jobsRev is the revision
// its jobs were loaded at by follow (0: none loaded yet).
func (l *leader) run(ctx context.Context, jobsRev int64) error {
	sub, err := l.s.nats.Subscribe(store.LoadSubject(l.s.cfg.SubjectPrefix), func(m *nats.Msg) {
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

	rev, err := l.loadSnapshot(ctx, jobsRev)
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
			if err := l.processFinished(ctx); err != nil {
				return err
			}
			if err := l.placeWaiting(ctx, l.now(), false); err != nil {
				return err
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
// returns that revision, from which the watch continues. When follow has
// loaded the jobs already (at jobsRev), the rest is read at that same
// revision; if etcd has compacted it meanwhile, everything is read afresh.
func (l *leader) loadSnapshot(ctx context.Context, jobsRev int64) (int64, error) {
	if jobsRev > 0 {
		err := l.loadRest(ctx, jobsRev)
		if err == nil {
			return jobsRev, nil
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			return 0, err
		}
		l.log.Info("the standby copy of the jobs is older than etcd's history: reading everything again", zap.Int64("revision", jobsRev))
		fresh := newLeader(l.s, l.leaseKey, l.leaseRev)
		*l = *fresh
	}
	rev, err := l.loadJobsNow(ctx)
	if err != nil {
		return 0, err
	}
	return rev, l.loadRest(ctx, rev)
}

// loadJobsNow loads the jobs at etcd's current revision and returns it.
func (l *leader) loadJobsNow(ctx context.Context) (int64, error) {
	head, err := l.s.etcd.Get(ctx, l.keys.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read state: %w", err)
	}
	return head.Header.Revision, l.loadJobs(ctx, head.Header.Revision)
}

// loadJobs reads the jobs with their states at rev, in pages, walking both
// (in name order) side by side so a million jobs need no second copy.
func (l *leader) loadJobs(ctx context.Context, rev int64) error {
	jobs, states := newPager(l.s.etcd, l.keys.Jobs(), rev), newPager(l.s.etcd, l.keys.States(), rev)
	for {
		kv, err := jobs.next(ctx)
		if err != nil || kv == nil {
			return err
		}
		name := strings.TrimPrefix(string(kv.Key), l.keys.Jobs())
		var state *mvccpb.KeyValue
		for {
			st, err := states.peek(ctx)
			if err != nil {
				return err
			}
			if st == nil || strings.TrimPrefix(string(st.Key), l.keys.States()) > name {
				break
			}
			if _, err := states.next(ctx); err != nil {
				return err
			}
			if strings.TrimPrefix(string(st.Key), l.keys.States()) == name {
				state = st
			}
		}
		l.putJob(name, kv.Value, state)
	}
}

// loadRest reads the executors, the fires and the run requests at rev.
func (l *leader) loadRest(ctx context.Context, rev int64) error {
	if err := newPager(l.s.etcd, l.keys.Nodes(), rev).each(ctx, func(kv *mvccpb.KeyValue) { l.onNode(kv, false) }); err != nil {
		return err
	}
	if err := newPager(l.s.etcd, l.keys.Fires(), rev).each(ctx, func(kv *mvccpb.KeyValue) {
		l.countRecord(kv, +1)
		l.onFire(kv, false, false)
	}); err != nil {
		return err
	}
	if err := newPager(l.s.etcd, l.keys.Requests(), rev).each(ctx, func(kv *mvccpb.KeyValue) { l.requests = append(l.requests, kv) }); err != nil {
		return err
	}
	l.log.Info("leading", zap.Int("jobs", len(l.jobs)), zap.Int("open_fires", len(l.open)),
		zap.Int("executors", len(l.nodes.nodes)), zap.Int64("revision", rev))
	return nil
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
		switch {
		case ev.IsCreate():
			l.countRecord(ev.Kv, +1)
		case deleted:
			l.countRecord(ev.Kv, -1)
		}
		if f, ended := l.onFire(ev.Kv, deleted, ev.IsCreate()); ended {
			l.finished = append(l.finished, finishedFire{fire: f, kv: ev.Kv})
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
	if n.ID != id || !store.ValidNodeID(id) {
		// Its ID would go into NATS subjects: a dot or a wildcard there
		// would reach other nodes.
		l.log.Warn("executor registration with a bad node ID: ignored", zap.String("key", string(kv.Key)), zap.String("id", n.ID))
		return
	}
	if !l.nodes.live(n.ID) {
		l.log.Info("executor registered", zap.String("node", n.ID), zap.Any("labels", n.Labels), zap.Int("slots", n.Slots))
	}
	l.freed = true // a new node, or more slots: waiting fires may fit
	l.nodes.register(n)
}

// onFire tracks a fire record; it reports the fire when it is final and
// its effects still have to be recorded.
func (l *leader) onFire(kv *mvccpb.KeyValue, deleted, created bool) (store.Fire, bool) {
	id, ok := l.keys.FireIDFromKey(string(kv.Key))
	if !ok {
		return store.Fire{}, false
	}
	if deleted {
		l.closeFire(id)
		return store.Fire{}, false
	}
	var f store.Fire
	if err := json.Unmarshal(kv.Value, &f); err != nil {
		l.log.Warn("bad fire record", zap.String("key", string(kv.Key)), zap.Error(err))
		return store.Fire{}, false
	}
	if created {
		l.countFire(f)
	}
	if !f.State.Final() {
		l.openFire(&openFire{fire: f, rev: kv.ModRevision, record: kv.Value})
		return store.Fire{}, false
	}
	l.closeFire(id)
	if f.Processed {
		delete(l.pending, id)
		return store.Fire{}, false
	}
	l.pending[id] = true
	return f, true
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
	if of.fire.State == store.FirePlanned && of.fire.Node == "" {
		l.waiting[of.fire.ID] = of
		l.waitingOrder, l.waitingSorted = append(l.waitingOrder, of), false
	} else {
		delete(l.waiting, of.fire.ID)
	}
	if l.openByJob[of.fire.ID.Job] == nil {
		l.openByJob[of.fire.ID.Job] = make(map[store.FireID]*openFire)
	}
	l.openByJob[of.fire.ID.Job][of.fire.ID] = of
}

func (l *leader) closeFire(id store.FireID) {
	if old, ok := l.open[id]; ok {
		l.freed = l.freed || old.fire.Node != "" // its slot is free
		delete(l.waiting, id)
		l.nodes.assigned[old.fire.Node]--
		delete(l.openByJob[id.Job], id)
		if len(l.openByJob[id.Job]) == 0 {
			delete(l.openByJob, id.Job)
		}
		delete(l.open, id)
	}
}

// putJob adds a job and queues it.
func (l *leader) putJob(name string, data []byte, state *mvccpb.KeyValue) {
	e := &jobEntry{name: name, index: -1}
	if state != nil {
		l.setState(e, state)
	}
	if !l.decodeJob(e, data) {
		return
	}
	l.jobs[name] = e
	l.s.metrics.jobs.Set(float64(len(l.jobs)))
	l.link(name, nil, e.parents)
	l.queue.set(e, l.firstNext(e))
}

func (l *leader) updateJob(e *jobEntry, data []byte) {
	parents := e.parents
	if !l.decodeJob(e, data) {
		return
	}
	l.link(e.name, parents, e.parents)
	l.queue.set(e, l.firstNext(e))
}

// link moves child from the children lists of its old parents to those of
// its new ones.
func (l *leader) link(child string, oldParents, newParents []string) {
	for _, p := range oldParents {
		l.children[p] = slices.DeleteFunc(l.children[p], func(c string) bool { return c == child })
		if len(l.children[p]) == 0 {
			delete(l.children, p)
		}
	}
	for _, p := range newParents {
		l.children[p] = append(l.children[p], child)
	}
}

func (l *leader) decodeJob(e *jobEntry, data []byte) bool {
	var j jobspec.Job
	if err := json.Unmarshal(data, &j); err != nil {
		l.log.Error("bad job definition in etcd", zap.String("job", e.name), zap.Error(err))
		return false
	}
	sched, err := l.schedules.Schedule(&j, e.state.AppliedAt)
	if err != nil {
		l.log.Error("bad schedule in etcd", zap.String("job", e.name), zap.Error(err))
		return false
	}
	sels, err := jobspec.ParseSelectors(j.Constraints)
	if err != nil {
		l.log.Error("bad constraints in etcd", zap.String("job", e.name), zap.Error(err))
		return false
	}
	e.parents, e.policy, e.sched, e.sels = j.Parents, l.sharedPolicy(policyOf(&j)), sched, sels
	return true
}

// maxSharedValues bounds the distinct policies and schedules a leader keeps
// for sharing; past it, it starts afresh (jobs keep what they hold).
const maxSharedValues = 100_000

// sharedPolicy returns the one copy of p that jobs with this policy share.
func (l *leader) sharedPolicy(p jobPolicy) *jobPolicy {
	if shared, ok := l.policies[p]; ok {
		return shared
	}
	if len(l.policies) >= maxSharedValues {
		clear(l.policies)
	}
	l.policies[p] = &p
	return &p
}

// jobPolicy is what the leader keeps of a job: what planning, placement,
// retries and dependencies read. The command, environment, descriptions
// and labels are the executor's business (it reads the job from etcd when
// it claims a run); keeping them out, and this struct small, is what lets
// a leader hold a million jobs.
//
// Its fields are all comparable, so that jobs with equal policies share
// one copy.
type jobPolicy struct {
	Disabled    bool
	SoftFail    bool
	Container   bool // runs in a container: only on nodes with Docker
	Concurrency jobspec.Concurrency
	Misfire     jobspec.Misfire
	Retries     jobspec.Retries
}

func policyOf(j *jobspec.Job) jobPolicy {
	return jobPolicy{
		Disabled: j.Disabled, SoftFail: j.SoftFail, Container: j.Container != nil,
		Concurrency: j.Concurrency, Misfire: j.Misfire, Retries: j.Retries,
	}
}

func (l *leader) removeJob(name string) {
	if e, ok := l.jobs[name]; ok {
		l.queue.remove(e)
		delete(l.jobs, name)
		l.s.metrics.jobs.Set(float64(len(l.jobs)))
		l.link(name, e.parents, nil)
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

// countRecord keeps the number of fire records each job has in etcd, so
// that compaction looks only at jobs over their history limit instead of
// asking etcd about every job.
func (l *leader) countRecord(kv *mvccpb.KeyValue, delta int) {
	id, ok := l.keys.FireIDFromKey(string(kv.Key))
	if !ok {
		return
	}
	if n := l.records[id.Job] + delta; n > 0 {
		l.records[id.Job] = n
	} else {
		delete(l.records, id.Job)
	}
}

// countFire counts a newly created fire record in the metrics.
func (l *leader) countFire(f store.Fire) {
	if f.State == store.FireSkipped {
		l.s.metrics.skipped.WithLabelValues(skipReason(f.Reason)).Inc()
		return
	}
	l.s.metrics.planned.Inc()
}
