package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// finisher records the effects of fires that ended: a retry when the job
// allows one, or else the job's last result and a dependent fire for every
// child whose parents have all succeeded. Each fire's effects are written
// in one fenced transaction that also marks it processed, so they happen
// exactly once, whichever leader sees the end.
type finisher struct {
	id      string // this scheduler, recorded as planned_by
	etcd    *clientv3.Client
	keys    store.Keys
	log     *zap.Logger
	metrics *Metrics
	now     func() time.Time
	jobs    *jobTable
	fires   *openFires
	nodes   *placement
	fence   *fence
	send    *dispatcher

	pending  map[store.FireID]bool // final fires whose effects are not recorded yet
	finished []finishedFire        // fires seen ending in the watch response being handled
}

// finishedFire is a fire seen final in the watch, with its record.
type finishedFire struct {
	fire store.Fire
	kv   *mvccpb.KeyValue
}

// ended notes a fire that is final and not processed; with a watched
// record (kv), it is processed with the others of its watch response.
func (fn *finisher) ended(f store.Fire, kv *mvccpb.KeyValue) {
	fn.pending[f.ID] = true
	if kv != nil {
		fn.finished = append(fn.finished, finishedFire{fire: f, kv: kv})
	}
}

// forget drops a fire that turned out processed (another leader did it).
func (fn *finisher) forget(id store.FireID) { delete(fn.pending, id) }

// processPending processes every final fire still unprocessed, one by one
// (at election and at each reconcile).
func (fn *finisher) processPending(ctx context.Context) error {
	for id := range fn.pending {
		if err := fn.process(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// processFinished records the effects of the fires that ended in the last
// watch response. A fire whose only effect is its job's last result (no
// retry due, no dependent jobs) is recorded with many others in one fenced
// transaction; the others go one by one through process.
func (fn *finisher) processFinished(ctx context.Context) error {
	finished := fn.finished
	fn.finished = nil
	var group []finishedFire
	jobs := make(map[string]bool)
	size := 1 // compares: the fence, then one per fire and one per job
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := fn.processGroup(ctx, group)
		group, size = group[:0], 1
		clear(jobs)
		return err
	}
	for _, ff := range finished {
		id := ff.fire.ID
		if !fn.pending[id] {
			continue // processed meanwhile
		}
		e := fn.jobs.get(id.Job)
		if e == nil || retryable(e.policy, ff.fire) || len(fn.jobs.childrenOf(id.Job)) > 0 {
			if err := fn.process(ctx, id); err != nil {
				return err
			}
			continue
		}
		cost := 1
		if !jobs[id.Job] {
			cost++
		}
		if size+cost > maxTxnOps {
			if err := flush(); err != nil {
				return err
			}
			cost = 2
		}
		group = append(group, ff)
		jobs[id.Job] = true
		size += cost
	}
	return flush()
}

// processGroup marks the fires processed and records each job's last
// result in one fenced transaction, compared on every record's revision.
// If any record changed meanwhile, each fire goes through process instead.
func (fn *finisher) processGroup(ctx context.Context, group []finishedFire) error {
	t := fn.fence.txn()
	states := make(map[string]store.JobState)
	for _, ff := range group {
		f := ff.fire
		f.Processed = true
		if _, err := t.updateFire(string(ff.kv.Key), ff.kv.ModRevision, &f); err != nil {
			return err
		}
		e := fn.jobs.get(f.ID.Job)
		st, ok := states[f.ID.Job]
		if !ok {
			st = e.state
		}
		recordResult(&st, e.policy, f)
		states[f.ID.Job] = st
	}
	for name, st := range states {
		if _, err := t.update(fn.keys.State(name), fn.jobs.get(name).stateRev, st); err != nil {
			return err
		}
	}
	rev, err := fn.fence.commit(ctx, &t)
	if conflicted(err) {
		for _, ff := range group {
			if err := fn.process(ctx, ff.fire.ID); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	for name, st := range states {
		fn.jobs.stateWritten(fn.jobs.get(name), st, rev)
	}
	now := fn.now()
	for _, ff := range group {
		delete(fn.pending, ff.fire.ID)
		fn.send.dispatchAll(fn.fires.followers(ff.fire.ID), now)
	}
	return nil
}

// process records one final fire's effects, read fresh from etcd: a retry
// (retry), or the job's last result and its children's fires (finish).
func (fn *finisher) process(ctx context.Context, id store.FireID) error {
	resp, err := fn.etcd.Get(ctx, fn.keys.Fire(id))
	if err != nil {
		return fmt.Errorf("read fire %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		delete(fn.pending, id)
		return nil
	}
	kv := resp.Kvs[0]
	var f store.Fire
	if err := json.Unmarshal(kv.Value, &f); err != nil || f.Processed || !f.State.Final() {
		delete(fn.pending, id)
		return nil
	}
	e := fn.jobs.get(id.Job)
	switch {
	case e == nil:
		return fn.markProcessed(ctx, f, kv) // a deleted job: only the record
	case retryable(e.policy, f):
		return fn.retry(ctx, e, f, kv.ModRevision)
	}
	return fn.finish(ctx, e, f, kv)
}

// markProcessed marks the record of a deleted job's fire processed.
func (fn *finisher) markProcessed(ctx context.Context, f store.Fire, kv *mvccpb.KeyValue) error {
	f.Processed = true
	if _, err := fn.fence.rewriteFire(ctx, fn.keys, f, kv.ModRevision); err != nil && !conflicted(err) {
		return err
	}
	delete(fn.pending, f.ID) // on a conflict the watch brings the newer record
	return nil
}

// finish writes, in one fenced transaction, the fire marked processed, its
// job's last result, and a fire for each child whose parents have all
// succeeded since the child last ran, then dispatches those.
func (fn *finisher) finish(ctx context.Context, e *jobEntry, f store.Fire, kv *mvccpb.KeyValue) error {
	now := fn.now()
	f.Processed = true
	t := fn.fence.txn()
	if _, err := t.updateFire(string(kv.Key), kv.ModRevision, &f); err != nil {
		return err
	}
	state := e.state
	unblocks := recordResult(&state, e.policy, f)
	states := map[string]store.JobState{e.name: state}
	var children []*openFire
	var replaced []store.FireID
	// A manual run triggers its dependents only when asked (--downstream).
	if unblocks && (f.Trigger != store.TriggerManual || f.Downstream) {
		var err error
		if children, err = fn.triggerChildren(ctx, &t, f.ID, states, now, &replaced); err != nil {
			return err
		}
	}
	for name, st := range states {
		if _, err := t.update(fn.keys.State(name), fn.jobs.get(name).stateRev, st); err != nil {
			return err
		}
	}
	rev, err := fn.fence.commit(ctx, &t)
	if conflicted(err) {
		// A record changed underneath: reread the states and try on the next reconcile.
		for name := range states {
			if err := fn.jobs.reload(ctx, fn.jobs.get(name)); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	delete(fn.pending, f.ID)
	for name, st := range states {
		fn.jobs.stateWritten(fn.jobs.get(name), st, rev)
	}
	for _, of := range children {
		of.rev = rev
		fn.fires.open(of)
	}
	fn.send.dispatchAll(children, now)
	if err := fn.send.stopAll(ctx, replaced, "replaced by a newer run (concurrency: replace)"); err != nil {
		return err
	}
	fn.send.dispatchAll(fn.fires.followers(f.ID), now)
	fn.log.Debug("fire finished", zap.Stringer("fire", f.ID), zap.String("state", string(f.State)), zap.Int("children", len(children)))
	return nil
}

// triggerChildren adds to t a dependent fire for each child of parent's
// job whose parents have all succeeded since the child last ran (Chronos
// semantics), with the child's state in states. A fire of the same chain
// planned before (same ID) is not planned again.
func (fn *finisher) triggerChildren(ctx context.Context, t *txn, parent store.FireID, states map[string]store.JobState, now time.Time, replaced *[]store.FireID) ([]*openFire, error) {
	var children []*openFire
	for _, name := range fn.jobs.childrenOf(parent.Job) {
		child := fn.jobs.get(name)
		if child == nil || child.policy.Disabled || !fn.parentsSucceeded(child, states) {
			continue
		}
		childID := store.DependentFireID(name, parent)
		if exists, err := fn.exists(ctx, fn.keys.Fire(childID)); err != nil {
			return nil, err
		} else if exists {
			continue
		}
		cs := child.state
		cs.LastTriggered = now.UTC()
		states[name] = cs
		cf := store.Fire{
			ID: childID, Trigger: store.TriggerDependency,
			Nominal: now.UTC(), Attempt: 1, PlannedAt: now.UTC(), PlannedBy: fn.id,
		}
		ov := fn.fires.overlapOf(name)
		var of *openFire
		if ov.admit(child.policy, &cf, replaced) {
			cf.State = store.FirePlanned
			cf.Node, cf.Reason = fn.nodes.choose(child)
			of = &openFire{fire: cf}
			children = append(children, of)
		} else {
			// Skipped behind an open fire of the child: only if its record
			// is as the leader saw it (see planner.writePlan). A conflict
			// leaves the parent's end pending, processed again at the
			// next reconcile.
			t.unchanged(fn.keys.Fire(*ov.newest), ov.newestRev)
		}
		data, err := t.createFire(fn.keys.Fire(cf.ID), &cf)
		if err != nil {
			return nil, err
		}
		if of != nil {
			of.fire.Term, of.record = cf.Term, data
		}
	}
	return children, nil
}

// recordResult writes a final fire's result into its job's state and
// reports whether it unblocks the job's children: a success, or any
// failure of a soft_fail job.
func recordResult(state *store.JobState, job *jobPolicy, f store.Fire) bool {
	state.LastFire, state.LastResult = f.ID.String(), f.State
	if f.State == store.FireSucceeded {
		state.LastSuccess = f.EndedAt
	}
	unblocks := f.State == store.FireSucceeded ||
		(job.SoftFail && (f.State == store.FireFailed || f.State == store.FireTimedOut || f.State == store.FireLost))
	if unblocks {
		state.LastDone = f.EndedAt
	}
	return unblocks
}

// parentsSucceeded reports whether every parent of child succeeded (or
// failed softly, soft_fail) after the child was last triggered (Chronos
// semantics), using the states about to be written where they differ from
// the stored ones.
func (fn *finisher) parentsSucceeded(child *jobEntry, pending map[string]store.JobState) bool {
	for _, p := range child.parents {
		st, ok := pending[p]
		if !ok {
			pe := fn.jobs.get(p)
			if pe == nil {
				return false
			}
			st = pe.state
		}
		done := st.LastDone
		if done.IsZero() {
			done = st.LastSuccess // states written before LastDone existed
		}
		if done.IsZero() || !done.After(child.state.LastTriggered) {
			return false
		}
	}
	return true
}

// retryable reports whether a final fire gets another attempt: failures and
// timeouts while attempts remain, lost runs only when the job says so.
func retryable(job *jobPolicy, f store.Fire) bool {
	if f.Attempt > job.Retries.Count {
		return false
	}
	switch f.State {
	case store.FireFailed, store.FireTimedOut:
		return true
	case store.FireLost:
		return job.Retries.OnLost
	}
	return false
}

// backoff is the delay before attempt+1: initial·2^(attempt-1), capped at
// max, with jitter drawn from its upper half so retries of many fires do
// not arrive together.
func backoff(job *jobPolicy, attempt int) time.Duration {
	d := job.Retries.Backoff.Initial.D()
	for i := 1; i < attempt && d < job.Retries.Backoff.Max.D(); i++ {
		d *= 2
	}
	d = min(d, job.Retries.Backoff.Max.D())
	return d/2 + rand.N(d/2+1)
}

// retry turns a failed attempt into the next one: the same fire, planned
// again with a higher attempt number after the backoff, its earlier attempt
// kept in Attempts. The waiting queue or reconcile places it once its
// backoff is over.
func (fn *finisher) retry(ctx context.Context, e *jobEntry, f store.Fire, rev int64) error {
	now := fn.now()
	next := f
	next.Attempts = append(slices.Clone(f.Attempts), store.Attempt{
		Attempt: f.Attempt, Node: f.Node, State: f.State, Reason: f.Reason,
		ExitCode: f.ExitCode, StartedAt: f.StartedAt, EndedAt: f.EndedAt,
	})
	delay := backoff(e.policy, f.Attempt)
	next.Attempt = f.Attempt + 1
	next.PlannedBy = fn.id
	next.State = store.FirePlanned
	next.NotBefore = now.Add(delay).UTC()
	next.Node, next.Reason = "", fmt.Sprintf("retry %d of %d after %s (attempt %d %s)", f.Attempt, e.policy.Retries.Count, delay.Round(time.Millisecond), f.Attempt, f.State)
	next.StartedAt, next.EndedAt, next.PID, next.ExitCode = time.Time{}, time.Time{}, 0, nil
	next.OutputTail, next.OutputPath, next.OutputError = "", "", ""
	next.OutputTruncated, next.OutputLimit, next.Kill = false, 0, nil
	of, err := fn.fence.rewriteFire(ctx, fn.keys, next, rev)
	if conflicted(err) {
		return nil // the watch brings the newer record
	}
	if err != nil {
		return err
	}
	delete(fn.pending, f.ID)
	fn.metrics.retries.Inc()
	fn.fires.open(of)
	fn.log.Info("retry planned", zap.Stringer("fire", f.ID), zap.Int("attempt", next.Attempt), zap.Duration("after", delay))
	return nil
}

func (fn *finisher) exists(ctx context.Context, key string) (bool, error) {
	return keyExists(ctx, fn.etcd, key)
}
