package scheduler

import (
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// openFires is the term's table of open fires (planned or running), as
// recorded in etcd. Opening a fire reserves its node's slot in placement
// and, when it has no node, puts it in the waiting queue; closing it
// releases both.
type openFires struct {
	keys    store.Keys
	log     *zap.Logger
	metrics *Metrics
	nodes   *placement
	waiting *waitingQueue
	byID    map[store.FireID]*openFire
	byJob   map[string]map[store.FireID]*openFire
}

// openFire is a planned or running fire.
type openFire struct {
	fire         store.Fire
	rev          int64
	record       []byte // the record as stored at rev, when known: dispatches carry it
	dispatchedAt time.Time
}

func newOpenFires(keys store.Keys, log *zap.Logger, metrics *Metrics, nodes *placement, waiting *waitingQueue) *openFires {
	return &openFires{
		keys: keys, log: log, metrics: metrics, nodes: nodes, waiting: waiting,
		byID:  make(map[store.FireID]*openFire),
		byJob: make(map[string]map[store.FireID]*openFire),
	}
}

// get returns the open fire id, or nil.
func (o *openFires) get(id store.FireID) *openFire { return o.byID[id] }

// isOpen reports whether fire id is open.
func (o *openFires) isOpen(id store.FireID) bool { _, ok := o.byID[id]; return ok }

// len is the number of open fires.
func (o *openFires) len() int { return len(o.byID) }

// observe tracks a fire record seen in etcd (loaded or watched); it
// returns the fire when it is final and its effects still have to be
// recorded (not yet processed).
func (o *openFires) observe(kv *mvccpb.KeyValue, deleted, created bool) (store.Fire, bool) {
	id, ok := o.keys.FireIDFromKey(string(kv.Key))
	if !ok {
		return store.Fire{}, false
	}
	if deleted {
		o.close(id)
		return store.Fire{}, false
	}
	var f store.Fire
	if err := json.Unmarshal(kv.Value, &f); err != nil {
		o.log.Warn("bad fire record", zap.String("key", string(kv.Key)), zap.Error(err))
		return store.Fire{}, false
	}
	if created {
		o.count(f)
	}
	if !f.State.Final() {
		o.open(&openFire{fire: f, rev: kv.ModRevision, record: kv.Value})
		return store.Fire{}, false
	}
	o.close(id)
	return f, !f.Processed
}

// count counts a newly created fire record in the metrics.
func (o *openFires) count(f store.Fire) {
	if f.State == store.FireSkipped {
		o.metrics.skipped.WithLabelValues(skipReason(f.Reason)).Inc()
		return
	}
	o.metrics.planned.Inc()
}

// open records an open fire written at of.rev, replacing an older record of
// the same fire.
func (o *openFires) open(of *openFire) {
	if old, ok := o.byID[of.fire.ID]; ok {
		if old.rev > of.rev {
			return // a stale event; the newer record is known
		}
		o.nodes.release(old.fire.Node)
		of.dispatchedAt = old.dispatchedAt
	}
	o.byID[of.fire.ID] = of
	o.nodes.reserve(of.fire.Node)
	if of.fire.State == store.FirePlanned && of.fire.Node == "" {
		o.waiting.add(of)
	} else {
		o.waiting.drop(of.fire.ID)
	}
	if o.byJob[of.fire.ID.Job] == nil {
		o.byJob[of.fire.ID.Job] = make(map[store.FireID]*openFire)
	}
	o.byJob[of.fire.ID.Job][of.fire.ID] = of
}

// close forgets an open fire: it ended or its record is gone.
func (o *openFires) close(id store.FireID) {
	old, ok := o.byID[id]
	if !ok {
		return
	}
	if old.fire.Node != "" {
		o.waiting.slotFreed()
	}
	o.waiting.drop(id)
	o.nodes.release(old.fire.Node)
	delete(o.byJob[id.Job], id)
	if len(o.byJob[id.Job]) == 0 {
		delete(o.byJob, id.Job)
	}
	delete(o.byID, id)
}

// ready reports whether a planned fire may be dispatched now: its backoff is
// over, the fire it waits for has ended (and, for such a fire, no other run
// of its job is going), and its backfill is under its parallel limit.
func (o *openFires) ready(of *openFire, now time.Time) bool {
	if of.fire.NotBefore.After(now) {
		return false
	}
	if of.fire.Backfill != "" && of.fire.Parallel > 0 && of.dispatchedAt.IsZero() &&
		o.backfillGoing(of.fire.ID.Job, of.fire.Backfill) >= of.fire.Parallel {
		return false
	}
	if of.fire.After != "" {
		if after, err := store.ParseFireID(of.fire.After); err == nil && o.isOpen(after) {
			return false
		}
		// The fire it follows may have closed without running (a replaced
		// fire cancelled before it started) while an older run of the job,
		// whose kill has not taken effect yet (its executor paused or cut
		// off from etcd), still goes on: it waits for that one too.
		if o.running(of.fire.ID) {
			return false
		}
	}
	return true
}

// running reports whether another fire of id's job is running.
func (o *openFires) running(id store.FireID) bool {
	for other, of := range o.byJob[id.Job] {
		if other != id && of.fire.State == store.FireRunning {
			return true
		}
	}
	return false
}

// backfillGoing counts a backfill's fires that run or were dispatched.
func (o *openFires) backfillGoing(job, backfill string) int {
	going := 0
	for _, of := range o.byJob[job] {
		if of.fire.Backfill == backfill && (of.fire.State == store.FireRunning || !of.dispatchedAt.IsZero()) {
			going++
		}
	}
	return going
}

// followers returns the planned fires that wait for ended (concurrency
// queue and replace).
func (o *openFires) followers(ended store.FireID) []*openFire {
	var out []*openFire
	for _, of := range o.byJob[ended.Job] {
		if of.fire.After == ended.String() && of.fire.State == store.FirePlanned {
			out = append(out, of)
		}
	}
	return out
}

// overlap is what a job has open when new runs are planned for it. Only the
// leader creates fires, and every creation also writes the job's state key,
// which planning compares, so this view cannot miss a run that started
// meanwhile: the check is part of the planning transaction.
type overlap struct {
	newest    *store.FireID // the most recent open fire, the one new runs follow
	newestAt  time.Time     // when it was planned
	newestRev int64         // the revision of its record as the leader last saw it
	// newestState is its state: planned (not claimed yet: not dispatched,
	// or waiting for a slot) or running.
	newestState store.FireState
	queued      bool // an open fire already waits for another (queue)
}

func (o *openFires) overlapOf(job string) overlap {
	var ov overlap
	for id, of := range o.byJob[job] {
		if ov.newest == nil || of.fire.PlannedAt.After(ov.newestAt) ||
			(of.fire.PlannedAt.Equal(ov.newestAt) && cmpFireID(id, *ov.newest) > 0) {
			ov.newest, ov.newestAt, ov.newestState, ov.newestRev = &id, of.fire.PlannedAt, of.fire.State, of.rev
		}
		if of.fire.After != "" && of.fire.State == store.FirePlanned {
			ov.queued = true // still waiting; once it runs, the next may queue
		}
	}
	return ov
}

// admit applies the job's concurrency policy to a new fire: it returns
// false (and marks f skipped) when the fire must not run, sets f.After when
// it must wait, and adds to replaced the fire a replace policy stops.
func (ov *overlap) admit(job *jobPolicy, f *store.Fire, replaced *[]store.FireID) bool {
	if ov.newest != nil {
		switch job.Concurrency {
		case jobspec.ConcurrencyForbid:
			f.State, f.Processed, f.EndedAt = store.FireSkipped, true, f.PlannedAt
			f.Reason = fmt.Sprintf("skipped: %s is still running (concurrency: forbid)", ov.newest)
			if ov.newestState == store.FirePlanned {
				// Not started: no executor has claimed it yet (NATS
				// down, no free slot); saying it runs would send an
				// operator looking for a process that is not there.
				f.Reason = fmt.Sprintf("skipped: %s is still open, planned but not started yet (concurrency: forbid)", ov.newest)
			}
			return false
		case jobspec.ConcurrencyQueue:
			if ov.queued {
				f.State, f.Processed, f.EndedAt = store.FireSkipped, true, f.PlannedAt
				f.Reason = "skipped: a run is already queued (concurrency: queue)"
				return false
			}
			f.After, ov.queued = ov.newest.String(), true
		case jobspec.ConcurrencyReplace:
			f.After = ov.newest.String()
			*replaced = append(*replaced, *ov.newest)
		}
	}
	id := f.ID
	ov.newest, ov.newestAt = &id, f.PlannedAt
	return true
}

func cmpFireID(a, b store.FireID) int {
	if a.Job != b.Job {
		if a.Job < b.Job {
			return -1
		}
		return 1
	}
	switch {
	case a.Suffix < b.Suffix:
		return -1
	case a.Suffix > b.Suffix:
		return 1
	}
	return 0
}
