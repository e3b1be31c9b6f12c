package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// jobTable is the scheduler's copy of the jobs with their states, read
// from etcd and kept current from its watch: by the standby while it
// campaigns, then by the term that inherits it. It owns the due heap
// (which job is due first) and the dependency links (parent → children).
type jobTable struct {
	etcd      *clientv3.Client
	keys      store.Keys
	log       *zap.Logger
	metrics   *Metrics
	now       func() time.Time
	jobs      map[string]*jobEntry
	children  map[string][]string // parent name → child names
	due       dueHeap
	schedules *jobspec.ScheduleCache
	policies  map[jobPolicy]*jobPolicy // one copy of each distinct policy: see sharedPolicy
}

// jobEntry is the scheduler's view of one job. A leader may hold a million:
// the policy and the schedule, which most jobs share with many others,
// are shared copies (see sharedPolicy and jobspec.ScheduleCache).
type jobEntry struct {
	name    string
	parents []string
	policy  *jobPolicy       // shared: never change it in place
	sched   jobspec.Schedule // nil for manual and dependent jobs; shared
	sels    []jobspec.Selector
	// needs is what of the job the nodes' policies check (its user, its
	// container's image, network and volumes); nil for a host job without
	// a user, which every policy allows.
	needs    *jobspec.Job
	state    store.JobState
	stateRev int64     // mod revision of the state key; 0 when missing
	next     time.Time // the next nominal time to plan; zero: none
	index    int       // position in the due heap; -1 when not in it
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

// maxSharedValues bounds the distinct policies and schedules a table keeps
// for sharing; past it, it starts afresh (jobs keep what they hold).
const maxSharedValues = 100_000

func newJobTable(etcd *clientv3.Client, keys store.Keys, log *zap.Logger, metrics *Metrics, now func() time.Time) *jobTable {
	return &jobTable{
		etcd: etcd, keys: keys, log: log, metrics: metrics, now: now,
		jobs:      make(map[string]*jobEntry),
		children:  make(map[string][]string),
		schedules: jobspec.NewScheduleCache(maxSharedValues),
		policies:  make(map[jobPolicy]*jobPolicy),
	}
}

// get returns the job named name, or nil.
func (t *jobTable) get(name string) *jobEntry { return t.jobs[name] }

// len is the number of jobs.
func (t *jobTable) len() int { return len(t.jobs) }

// childrenOf lists the jobs that name parent among their parents.
func (t *jobTable) childrenOf(parent string) []string { return t.children[parent] }

// firstDue returns the job due first, or nil.
func (t *jobTable) firstDue() *jobEntry { return t.due.peek() }

// setNext queues e at its next nominal time (zero: not queued).
func (t *jobTable) setNext(e *jobEntry, next time.Time) { t.due.set(e, next) }

// loadNow loads the jobs at etcd's current revision and returns it.
func (t *jobTable) loadNow(ctx context.Context) (int64, error) {
	head, err := t.etcd.Get(ctx, t.keys.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read state: %w", err)
	}
	return head.Header.Revision, t.load(ctx, head.Header.Revision)
}

// load reads the jobs with their states at rev, in pages, walking both (in
// name order) side by side so a million jobs need no second copy.
func (t *jobTable) load(ctx context.Context, rev int64) error {
	jobs, states := newPager(t.etcd, t.keys.Jobs(), rev), newPager(t.etcd, t.keys.States(), rev)
	for {
		kv, err := jobs.next(ctx)
		if err != nil || kv == nil {
			return err
		}
		name := strings.TrimPrefix(string(kv.Key), t.keys.Jobs())
		var state *mvccpb.KeyValue
		for {
			st, err := states.peek(ctx)
			if err != nil {
				return err
			}
			if st == nil || strings.TrimPrefix(string(st.Key), t.keys.States()) > name {
				break
			}
			if _, err := states.next(ctx); err != nil {
				return err
			}
			if strings.TrimPrefix(string(st.Key), t.keys.States()) == name {
				state = st
			}
		}
		t.put(name, kv.Value, state)
	}
}

// onJobEvent applies a watched change of a job definition. A new job's
// state is read from etcd (it may have one from an earlier life).
func (t *jobTable) onJobEvent(ctx context.Context, ev *clientv3.Event) error {
	name := strings.TrimPrefix(string(ev.Kv.Key), t.keys.Jobs())
	if ev.Type == clientv3.EventTypeDelete {
		t.remove(name)
		return nil
	}
	if e, ok := t.jobs[name]; ok {
		t.update(e, ev.Kv.Value)
		return nil
	}
	state, err := t.etcd.Get(ctx, t.keys.State(name))
	if err != nil {
		return fmt.Errorf("read state of %s: %w", name, err)
	}
	var kv *mvccpb.KeyValue
	if len(state.Kvs) > 0 {
		kv = state.Kvs[0]
	}
	t.put(name, ev.Kv.Value, kv)
	return nil
}

// onStateEvent applies a watched change of a job's state written by
// someone else (a standby follows the leader's writes this way). It
// reports the job whose state changed, or nil when the change was already
// known or the job is unknown.
func (t *jobTable) onStateEvent(ev *clientv3.Event) *jobEntry {
	e, ok := t.jobs[strings.TrimPrefix(string(ev.Kv.Key), t.keys.States())]
	if !ok {
		return nil
	}
	if ev.Type == clientv3.EventTypeDelete {
		e.state, e.stateRev = store.JobState{}, 0
		return e
	}
	if ev.Kv.ModRevision <= e.stateRev {
		return nil
	}
	t.setState(e, ev.Kv)
	return e
}

// put adds a job and queues it.
func (t *jobTable) put(name string, data []byte, state *mvccpb.KeyValue) {
	e := &jobEntry{name: name, index: -1}
	if state != nil {
		t.setState(e, state)
	}
	if !t.decode(e, data) {
		return
	}
	t.jobs[name] = e
	t.metrics.jobs.Set(float64(len(t.jobs)))
	t.link(name, nil, e.parents)
	t.due.set(e, t.firstNext(e))
}

func (t *jobTable) update(e *jobEntry, data []byte) {
	parents := e.parents
	if !t.decode(e, data) {
		return
	}
	t.link(e.name, parents, e.parents)
	t.due.set(e, t.firstNext(e))
}

func (t *jobTable) remove(name string) {
	if e, ok := t.jobs[name]; ok {
		t.due.remove(e)
		delete(t.jobs, name)
		t.metrics.jobs.Set(float64(len(t.jobs)))
		t.link(name, e.parents, nil)
	}
}

// link moves child from the children lists of its old parents to those of
// its new ones.
func (t *jobTable) link(child string, oldParents, newParents []string) {
	for _, p := range oldParents {
		t.children[p] = slices.DeleteFunc(t.children[p], func(c string) bool { return c == child })
		if len(t.children[p]) == 0 {
			delete(t.children, p)
		}
	}
	for _, p := range newParents {
		t.children[p] = append(t.children[p], child)
	}
}

func (t *jobTable) decode(e *jobEntry, data []byte) bool {
	var j jobspec.Job
	if err := json.Unmarshal(data, &j); err != nil {
		t.log.Error("bad job definition in etcd", zap.String("job", e.name), zap.Error(err))
		return false
	}
	sched, err := t.schedules.Schedule(&j, e.state.AppliedAt)
	if err != nil {
		t.log.Error("bad schedule in etcd", zap.String("job", e.name), zap.Error(err))
		return false
	}
	sels, err := jobspec.ParseSelectors(j.Constraints)
	if err != nil {
		t.log.Error("bad constraints in etcd", zap.String("job", e.name), zap.Error(err))
		return false
	}
	e.parents, e.policy, e.sched, e.sels = j.Parents, t.sharedPolicy(policyOf(&j)), sched, sels
	e.needs = policyNeeds(&j)
	return true
}

// policyNeeds keeps of a job what nodes' policies check (NodePolicy.Check
// reads only these fields), or nil when every policy allows it.
func policyNeeds(j *jobspec.Job) *jobspec.Job {
	if j.User == "" && j.Container == nil {
		return nil
	}
	needs := &jobspec.Job{Name: j.Name, User: j.User}
	if ct := j.Container; ct != nil {
		needs.Container = &jobspec.Container{Image: ct.Image, Network: ct.Network, Volumes: ct.Volumes, User: ct.User}
	}
	return needs
}

// sharedPolicy returns the one copy of p that jobs with this policy share.
func (t *jobTable) sharedPolicy(p jobPolicy) *jobPolicy {
	if shared, ok := t.policies[p]; ok {
		return shared
	}
	if len(t.policies) >= maxSharedValues {
		clear(t.policies)
	}
	t.policies[p] = &p
	return &p
}

func (t *jobTable) setState(e *jobEntry, kv *mvccpb.KeyValue) {
	var st store.JobState
	if err := json.Unmarshal(kv.Value, &st); err != nil {
		t.log.Error("bad job state in etcd", zap.String("key", string(kv.Key)), zap.Error(err))
		return
	}
	e.state, e.stateRev = st, kv.ModRevision
}

// stateWritten records the state this scheduler wrote for e at rev.
func (t *jobTable) stateWritten(e *jobEntry, st store.JobState, rev int64) {
	e.state, e.stateRev = st, rev
}

// reload reads e's state from etcd after a conflicting write and queues e
// at the next time that state leaves unplanned.
func (t *jobTable) reload(ctx context.Context, e *jobEntry) error {
	resp, err := t.etcd.Get(ctx, t.keys.State(e.name))
	if err != nil {
		return fmt.Errorf("reload state of %s: %w", e.name, err)
	}
	if len(resp.Kvs) == 0 {
		e.state, e.stateRev = store.JobState{}, 0
	} else {
		t.setState(e, resp.Kvs[0])
	}
	t.due.set(e, t.firstNext(e))
	return nil
}

// requeue queues e at the next time its state leaves unplanned.
func (t *jobTable) requeue(e *jobEntry) { t.due.set(e, t.firstNext(e)) }

// firstNext is the job's next nominal time after its high-water mark or,
// for a job never planned, its first time since it was applied (an ISO 8601
// schedule with an empty start runs first at the apply time itself).
func (t *jobTable) firstNext(e *jobEntry) time.Time {
	if e.sched == nil {
		return time.Time{}
	}
	if !e.state.HighWater.IsZero() {
		return e.sched.Next(e.state.HighWater)
	}
	from := e.state.AppliedAt
	if from.IsZero() {
		from = t.now()
	}
	if occ, ok := jobspec.FirstOccurrence(e.sched, from); ok {
		return occ.Time
	}
	return time.Time{}
}
