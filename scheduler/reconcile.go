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

// reconcile repairs what messages cannot: fires planned but not claimed are
// placed and dispatched again, fires running on an executor whose lease is
// gone become lost, and final fires whose effects are unrecorded are
// processed.
func (l *leader) reconcile(ctx context.Context) error {
	now := l.now()
	// Nodes may have come or gone: place what waits, batched, first.
	if err := l.placeWaiting(ctx, now, true); err != nil {
		return err
	}
	ids := make([]store.FireID, 0, len(l.open))
	for id := range l.open {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b store.FireID) int { return cmpFireID(a, b) })
	for _, id := range ids {
		of, ok := l.open[id]
		if !ok {
			continue
		}
		var err error
		switch {
		case of.fire.State == store.FireRunning && !l.nodes.live(of.fire.Node):
			err = l.markLost(ctx, of, now)
		case of.fire.State == store.FirePlanned && l.ready(of, now) &&
			(of.fire.Node == "" || !l.nodes.live(of.fire.Node) || now.Sub(of.dispatchedAt) > l.s.cfg.RedispatchAfter):
			err = l.replace(ctx, of, now)
		}
		if err != nil {
			return err
		}
	}
	for id := range l.pending {
		if err := l.process(ctx, id); err != nil {
			return err
		}
	}
	if l.requestsDirty {
		l.requestsDirty = false
		resp, err := l.s.etcd.Get(ctx, l.keys.Requests(), clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("read requests: %w", err)
		}
		for _, kv := range resp.Kvs {
			if err := l.planRequest(ctx, kv); err != nil {
				return err
			}
		}
	}
	return nil
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

// replace chooses a node again for a planned fire and dispatches it; the
// record changes (fenced, compared on its revision) only if the node does.
func (l *leader) replace(ctx context.Context, of *openFire, now time.Time) error {
	e, ok := l.jobs[of.fire.ID.Job]
	if !ok {
		f := of.fire
		f.State, f.EndedAt = store.FireSkipped, now.UTC()
		f.Reason = "skipped: the job was deleted before the run started"
		_, err := l.putFire(ctx, f, of.rev)
		return err
	}
	l.nodes.assigned[of.fire.Node]-- // do not count the fire against its own old node
	node, reason := l.nodes.choose(e.policy, e.sels)
	l.nodes.assigned[of.fire.Node]++
	if node == of.fire.Node && reason == of.fire.Reason {
		l.dispatch(of, now)
		return nil
	}
	f := of.fire
	f.Node, f.Reason = node, reason
	rev, err := l.putFire(ctx, f, of.rev)
	if err != nil || rev == 0 {
		return err // on a conflict the watch brings the newer record
	}
	next := &openFire{fire: f, rev: rev}
	l.openFire(next)
	l.dispatch(next, now)
	return nil
}

// placeWaiting places the planned fires that wait for a free slot, oldest
// nominal time first, as soon as runs have ended, in one fenced
// transaction compared on every record's revision. Without it they would
// wait for the next reconcile, one transaction each: under a burst larger
// than the executors' slots, most runs of a second started seconds late or
// not in their second at all. Fires left over (no slot, or beyond one
// transaction) wait for the next run to end, or for reconcile.
//
// A scheduled run that was planned in time but has waited for a slot past
// its job's starting deadline is skipped instead, as Kubernetes CronJob
// does with a run that cannot start in time: under overload, jobs with a
// deadline shed their late runs rather than start them all late. Retries,
// queued runs and backfills wait for other reasons and are left alone. The
// skip ends the fire like a run's end, so it becomes the job's last
// result. sweep looks for such fires through the whole list, not only up
// to the first that finds no slot (reconcile sweeps once a second).
func (l *leader) placeWaiting(ctx context.Context, now time.Time, sweep bool) error {
	if len(l.waiting) == 0 {
		l.waitingOrder, l.waitingSorted = nil, true
		return nil
	}
	if !l.freed && !sweep {
		return nil
	}
	l.freed = false
	current := func(of *openFire) bool { return l.waiting[of.fire.ID] == of }
	if !l.waitingSorted {
		l.waitingOrder = slices.DeleteFunc(l.waitingOrder, func(of *openFire) bool { return !current(of) })
		slices.SortFunc(l.waitingOrder, func(a, b *openFire) int {
			if c := a.fire.Nominal.Compare(b.fire.Nominal); c != 0 {
				return c
			}
			return cmpFireID(a.fire.ID, b.fire.ID)
		})
		l.waitingSorted = true
	}
	defer func() { // placed and skipped fires are stale now: drop them from the front
		i := 0
		for i < len(l.waitingOrder) && !current(l.waitingOrder[i]) {
			i++
		}
		l.waitingOrder = l.waitingOrder[i:]
	}()

	cmps := []clientv3.Cmp{l.fence}
	var ops []clientv3.Op
	var placed []*openFire
	var skipped []store.FireID
	free := l.nodes.freeSlots()
	misses := 0                       // fires no free node could take: past maxMisses, stop looking
	backfills := make(map[string]int) // backfill fires placed in this batch, per backfill
	for _, of := range l.waitingOrder {
		if len(cmps) == maxTxnOps {
			break
		}
		looking := free > 0 && misses < maxMisses
		if !looking && !sweep {
			break
		}
		e, ok := l.jobs[of.fire.ID.Job]
		if !current(of) || !ok {
			continue // reconcile deals with a fire of a deleted job
		}
		f := of.fire
		switch {
		case l.pastDeadline(e, of, now):
			f.State, f.EndedAt = store.FireSkipped, now.UTC()
			f.Reason = fmt.Sprintf("skipped: not started %s after its nominal time, past the starting deadline of %s (%s)",
				now.Sub(f.Nominal).Round(time.Millisecond), e.policy.Misfire.StartingDeadline, of.fire.Reason)
			skipped = append(skipped, f.ID)
		case !looking || !l.ready(of, now):
			continue
		case f.Backfill != "" && f.Parallel > 0 && of.dispatchedAt.IsZero() &&
			l.backfillGoing(f.ID.Job, f.Backfill)+backfills[f.Backfill] >= f.Parallel:
			continue // ready counts the backfill's runs going, not those placed just now
		default:
			node, _ := l.nodes.choose(e.policy, e.sels)
			if node == "" {
				misses++ // no eligible node is free; other jobs may have one
				continue
			}
			f.Node, f.Reason = node, ""
			l.nodes.assigned[node]++ // counted while the transaction is built, so fires spread
			free--
			if f.Backfill != "" && of.dispatchedAt.IsZero() {
				backfills[f.Backfill]++ // not yet counted as going
			}
		}
		data, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("encode fire: %w", err)
		}
		key := l.keys.Fire(f.ID)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", of.rev))
		ops = append(ops, clientv3.OpPut(key, string(data)))
		if f.Node != "" {
			placed = append(placed, &openFire{fire: f, record: data})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	rev, err := l.commit(ctx, cmps, ops)
	for _, of := range placed {
		l.nodes.assigned[of.fire.Node]--
	}
	if err != nil || rev == 0 {
		return err // on a conflict the watch brings the newer records; reconcile places the rest
	}
	for _, of := range placed {
		of.rev = rev
		l.openFire(of)
		l.dispatch(of, now)
	}
	if len(skipped) > 0 {
		l.log.Warn("runs skipped: they waited for a free slot past their starting deadline", zap.Int("count", len(skipped)))
		l.s.metrics.skipped.WithLabelValues("deadline").Add(float64(len(skipped)))
	}
	for _, id := range skipped {
		// Closed now, so nothing places it meanwhile; the watch brings
		// its end, which is processed like any run's end.
		l.closeFire(id)
	}
	return nil
}

// maxMisses bounds how many waiting fires placeWaiting tries to place
// after free slots were found unusable by them (constraints): the rest
// wait for the next run to end.
const maxMisses = 64

// pastDeadline reports whether a waiting scheduled run has waited for a
// slot past its job's starting deadline: its first attempt, planned in
// time, not queued behind another run nor part of a backfill.
func (l *leader) pastDeadline(e *jobEntry, of *openFire, now time.Time) bool {
	f := of.fire
	deadline := e.policy.Misfire.StartingDeadline.D()
	return deadline > 0 && f.Trigger == store.TriggerSchedule && f.Attempt == 1 && f.After == "" && f.Backfill == "" &&
		f.PlannedAt.Sub(f.Nominal) <= deadline && now.Sub(f.Nominal) > deadline && l.ready(of, now)
}

// markLost records that a running fire's executor died.
func (l *leader) markLost(ctx context.Context, of *openFire, now time.Time) error {
	f := of.fire
	f.State = store.FireLost
	f.EndedAt = now.UTC()
	f.Reason = fmt.Sprintf("executor %s lost its lease while running it", f.Node)
	l.log.Warn("fire lost", zap.Stringer("fire", f.ID), zap.String("node", f.Node))
	_, err := l.putFire(ctx, f, of.rev)
	return err
}

// putFire replaces a fire record if it is still at rev (fenced).
func (l *leader) putFire(ctx context.Context, f store.Fire, rev int64) (int64, error) {
	data, err := json.Marshal(f)
	if err != nil {
		return 0, fmt.Errorf("encode fire: %w", err)
	}
	key := l.keys.Fire(f.ID)
	return l.commit(ctx,
		[]clientv3.Cmp{l.fence, clientv3.Compare(clientv3.ModRevision(key), "=", rev)},
		[]clientv3.Op{clientv3.OpPut(key, string(data))})
}

// process records a final fire's effects in one fenced transaction: a
// retry when the job allows one (the same fire, next attempt, after a
// backoff), or else the job's last result and a dependent fire for every
// child whose parents have all succeeded since the child last ran.
func (l *leader) process(ctx context.Context, id store.FireID) error {
	resp, err := l.s.etcd.Get(ctx, l.keys.Fire(id))
	if err != nil {
		return fmt.Errorf("read fire %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		delete(l.pending, id)
		return nil
	}
	kv := resp.Kvs[0]
	var f store.Fire
	if err := json.Unmarshal(kv.Value, &f); err != nil || f.Processed || !f.State.Final() {
		delete(l.pending, id)
		return nil
	}
	now := l.now()
	e, ok := l.jobs[id.Job]
	if ok && retryable(e.policy, f) {
		return l.retry(ctx, e, f, kv.ModRevision, now)
	}
	f.Processed = true
	fireData, _ := json.Marshal(f)
	cmps := []clientv3.Cmp{l.fence, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)}
	ops := []clientv3.Op{clientv3.OpPut(string(kv.Key), string(fireData))}
	if !ok { // deleted job: only mark the record
		if _, err := l.commit(ctx, cmps, ops); err != nil {
			return err
		}
		delete(l.pending, id)
		return nil
	}
	states := map[string]store.JobState{}
	state := e.state
	unblocks := recordResult(&state, e.policy, f)
	states[id.Job] = state
	var children []*openFire
	var replaced []store.FireID
	// A manual run triggers its dependents only when asked (--downstream).
	if unblocks && (f.Trigger != store.TriggerManual || f.Downstream) {
		for _, name := range l.children[id.Job] {
			child := l.jobs[name]
			if child == nil || child.policy.Disabled || !l.parentsSucceeded(child, states) {
				continue
			}
			childID := store.DependentFireID(name, id)
			if exists, err := l.exists(ctx, l.keys.Fire(childID)); err != nil || exists {
				if err != nil {
					return err
				}
				continue // this run was planned before (same chain, same ID)
			}
			cs := child.state
			cs.LastTriggered = now.UTC()
			states[name] = cs
			cf := store.Fire{
				ID: childID, Trigger: store.TriggerDependency,
				Nominal: now.UTC(), Attempt: 1, PlannedAt: now.UTC(), PlannedBy: l.s.cfg.ID,
			}
			ov := l.overlapOf(name)
			if ov.admit(child.policy, &cf, &replaced) {
				cf.State = store.FirePlanned
				cf.Node, cf.Reason = l.nodes.choose(child.policy, child.sels)
				children = append(children, &openFire{fire: cf})
			}
			data, _ := json.Marshal(cf)
			key := l.keys.Fire(cf.ID)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			ops = append(ops, clientv3.OpPut(key, string(data)))
		}
	}
	for name, st := range states {
		data, _ := json.Marshal(st)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(l.keys.State(name)), "=", l.jobs[name].stateRev))
		ops = append(ops, clientv3.OpPut(l.keys.State(name), string(data)))
	}
	rev, err := l.commit(ctx, cmps, ops)
	if err != nil {
		return err
	}
	if rev == 0 {
		// A record changed underneath: reread the states and try on the next reconcile.
		for name := range states {
			if err := l.reloadJob(ctx, l.jobs[name]); err != nil {
				return err
			}
		}
		return nil
	}
	delete(l.pending, id)
	for name, st := range states {
		l.jobs[name].state, l.jobs[name].stateRev = st, rev
	}
	for _, of := range children {
		of.rev = rev
		l.openFire(of)
		l.dispatch(of, now)
	}
	for _, r := range replaced {
		if err := l.stop(ctx, r, "replaced by a newer run (concurrency: replace)"); err != nil {
			return err
		}
	}
	l.dispatchFollowers(id, now)
	l.log.Debug("fire finished", zap.Stringer("fire", id), zap.String("state", string(f.State)), zap.Int("children", len(children)))
	return nil
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

// finishedFire is a fire seen final in the watch, with its record.
type finishedFire struct {
	fire store.Fire
	kv   *mvccpb.KeyValue
}

// processFinished records the effects of the fires that ended in the last
// watch response. A fire whose only effect is its job's last result (no
// retry due, no dependent jobs) is recorded with many others in one fenced
// transaction; the others go one by one through process.
func (l *leader) processFinished(ctx context.Context) error {
	finished := l.finished
	l.finished = nil
	var group []finishedFire
	jobs := make(map[string]bool)
	size := 1 // compares: the fence, then one per fire and one per job
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := l.processGroup(ctx, group)
		group, size = group[:0], 1
		clear(jobs)
		return err
	}
	for _, ff := range finished {
		id := ff.fire.ID
		if !l.pending[id] {
			continue // processed meanwhile
		}
		e := l.jobs[id.Job]
		if e == nil || retryable(e.policy, ff.fire) || len(l.children[id.Job]) > 0 {
			if err := l.process(ctx, id); err != nil {
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
func (l *leader) processGroup(ctx context.Context, group []finishedFire) error {
	cmps := []clientv3.Cmp{l.fence}
	var ops []clientv3.Op
	states := make(map[string]store.JobState)
	for _, ff := range group {
		f := ff.fire
		f.Processed = true
		data, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("encode fire: %w", err)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(ff.kv.Key)), "=", ff.kv.ModRevision))
		ops = append(ops, clientv3.OpPut(string(ff.kv.Key), string(data)))
		e := l.jobs[f.ID.Job]
		st, ok := states[f.ID.Job]
		if !ok {
			st = e.state
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(l.keys.State(f.ID.Job)), "=", e.stateRev))
		}
		recordResult(&st, e.policy, f)
		states[f.ID.Job] = st
	}
	for name, st := range states {
		data, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode state: %w", err)
		}
		ops = append(ops, clientv3.OpPut(l.keys.State(name), string(data)))
	}
	rev, err := l.commit(ctx, cmps, ops)
	if err != nil {
		return err
	}
	if rev == 0 {
		for _, ff := range group {
			if err := l.process(ctx, ff.fire.ID); err != nil {
				return err
			}
		}
		return nil
	}
	for name, st := range states {
		l.jobs[name].state, l.jobs[name].stateRev = st, rev
	}
	now := l.now()
	for _, ff := range group {
		delete(l.pending, ff.fire.ID)
		l.dispatchFollowers(ff.fire.ID, now)
	}
	return nil
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
// kept in Attempts.
func (l *leader) retry(ctx context.Context, e *jobEntry, f store.Fire, rev int64, now time.Time) error {
	next := f
	next.Attempts = append(slices.Clone(f.Attempts), store.Attempt{
		Attempt: f.Attempt, Node: f.Node, State: f.State, Reason: f.Reason,
		ExitCode: f.ExitCode, StartedAt: f.StartedAt, EndedAt: f.EndedAt,
	})
	delay := backoff(e.policy, f.Attempt)
	next.Attempt = f.Attempt + 1
	next.PlannedBy = l.s.cfg.ID
	next.State = store.FirePlanned
	next.NotBefore = now.Add(delay).UTC()
	next.Node, next.Reason = "", fmt.Sprintf("retry %d of %d after %s (attempt %d %s)", f.Attempt, e.policy.Retries.Count, delay.Round(time.Millisecond), f.Attempt, f.State)
	next.StartedAt, next.EndedAt, next.PID, next.ExitCode = time.Time{}, time.Time{}, 0, nil
	next.OutputTail, next.OutputPath = "", ""
	newRev, err := l.putFire(ctx, next, rev)
	if err != nil || newRev == 0 {
		return err // on a conflict the watch brings the newer record
	}
	delete(l.pending, f.ID)
	l.s.metrics.retries.Inc()
	l.openFire(&openFire{fire: next, rev: newRev})
	l.log.Info("retry planned", zap.Stringer("fire", f.ID), zap.Int("attempt", next.Attempt), zap.Duration("after", delay))
	return nil
}

// dispatchFollowers dispatches the fires that waited for ended (queue and
// replace), instead of leaving them to the next reconcile.
func (l *leader) dispatchFollowers(ended store.FireID, now time.Time) {
	for _, of := range l.openByJob[ended.Job] {
		if of.fire.After == ended.String() && of.fire.State == store.FirePlanned {
			l.dispatch(of, now)
		}
	}
}

// parentsSucceeded reports whether every parent of child succeeded (or
// failed softly, soft_fail) after the child was last triggered (Chronos semantics), using the states about
// to be written where they differ from the stored ones.
func (l *leader) parentsSucceeded(child *jobEntry, pending map[string]store.JobState) bool {
	for _, p := range child.parents {
		st, ok := pending[p]
		if !ok {
			pe := l.jobs[p]
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

func (l *leader) exists(ctx context.Context, key string) (bool, error) {
	resp, err := l.s.etcd.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	return resp.Count > 0, nil
}
