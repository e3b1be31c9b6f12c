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

// planDue plans every job whose next nominal time has come. Jobs with a
// few due times (the usual case: one) are planned together, as many per
// fenced transaction as etcd's default limit of 128 operations allows, so
// a thousand jobs due at one instant take a few transactions, not a
// thousand. A job catching up on many times is planned alone, in batches.
func (l *leader) planDue(ctx context.Context) error {
	now := l.now()
	var group []jobPlan
	size := 1 // compares in the group's transaction: the fence, then per job
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		ok, err := l.planGroup(ctx, group, now)
		if err == nil && !ok {
			// A conflicting write: plan each job again from its stored state.
			for _, p := range group {
				if err = l.reloadJob(ctx, p.e); err != nil {
					break
				}
			}
		}
		group, size = group[:0], 1
		return err
	}
	for e := l.queue.peek(); e != nil && !e.next.After(now); e = l.queue.peek() {
		p := l.prepare(e, now)
		cost := len(p.entries) + 1 // fire compares (puts) and the state's
		if cost > maxFiresPerTxn {
			if err := flush(); err != nil {
				return err
			}
			if err := l.planCatchup(ctx, p, now); err != nil {
				return err
			}
			continue
		}
		if size+cost > maxTxnOps {
			if err := flush(); err != nil {
				return err
			}
		}
		group = append(group, p)
		size += cost
	}
	return flush()
}

// dueTime is a due nominal time and, when it will not run, why.
type dueTime struct {
	at   time.Time
	skip string
}

// jobPlan is what planning writes for one job: a fire record for each due
// time (planned, or skipped with its reason), and the job's state with its
// new high-water mark.
type jobPlan struct {
	e         *jobEntry
	entries   []dueTime
	countOnly int // skipped times that get no record, only a count
	highWater time.Time
}

// maxSkipRecords bounds how many skipped times of one planning round get a
// fire record each; further ones (after a long outage) are only counted.
const maxSkipRecords = 100

// prepare lists the due nominal times of one job, applying the misfire
// policy to those later than the grace, and queues the job at its next
// time. Every skipped time gets a skipped fire record (up to
// maxSkipRecords per round, the most recent ones) and is counted. If the
// plan is not committed, reloadJob queues the job again where it was.
func (l *leader) prepare(e *jobEntry, now time.Time) jobPlan {
	var due []time.Time
	t := e.next
	for !t.IsZero() && !t.After(now) && len(due) < maxCatchupScan {
		due = append(due, t)
		t = e.sched.Next(t)
	}
	countOnly := 0
	if !t.IsZero() && !t.After(now) {
		// Too many missed times to list: skip the rest in bulk, counted once.
		countOnly++
		t = e.sched.Next(now)
	}
	decided := l.misfire(e, due, now)
	var entries []dueTime
	recorded := 0
	for i := len(decided) - 1; i >= 0; i-- { // keep the most recent skips
		d := decided[i]
		if d.skip != "" {
			if recorded == maxSkipRecords {
				countOnly++
				continue
			}
			recorded++
		}
		entries = append(entries, d)
	}
	slices.Reverse(entries)
	if countOnly > 0 {
		l.s.metrics.skipped.WithLabelValues("misfire").Add(float64(countOnly))
		l.log.Warn("nominal times skipped without records", zap.String("job", e.name), zap.Int("count", countOnly))
	}
	l.queue.set(e, t)
	return jobPlan{e: e, entries: entries, countOnly: countOnly, highWater: due[len(due)-1]}
}

// planCatchup plans one job's many due times in transactions of at most
// maxFiresPerTxn fires, each moving the high-water mark to its last time.
func (l *leader) planCatchup(ctx context.Context, p jobPlan, now time.Time) error {
	entries, countOnly := p.entries, p.countOnly
	for len(entries) > 0 {
		batch := entries[:min(len(entries), maxFiresPerTxn)]
		entries = entries[len(batch):]
		hw := p.highWater
		if len(entries) > 0 {
			hw = batch[len(batch)-1].at
		}
		ok, err := l.planGroup(ctx, []jobPlan{{e: p.e, entries: batch, countOnly: countOnly, highWater: hw}}, now)
		if err != nil {
			return err
		}
		if !ok {
			return l.reloadJob(ctx, p.e) // a conflicting write; plan again from the stored state
		}
		countOnly = 0
	}
	return nil
}

// misfire decides, for each due nominal time, whether it runs: times later
// than the grace follow the job's misfire policy, any time older than the
// starting deadline is skipped, and a disabled job skips them all.
func (l *leader) misfire(e *jobEntry, due []time.Time, now time.Time) []dueTime {
	job := e.policy
	out := make([]dueTime, len(due))
	var late []int
	onTime := 0
	for i, t := range due {
		out[i].at = t
		age := now.Sub(t).Round(time.Millisecond)
		switch {
		case job.Disabled:
			out[i].skip = "skipped: the job is disabled"
		case e.state.Paused:
			out[i].skip = pausedReason + ": " + e.state.PauseNote
		case job.Misfire.StartingDeadline > 0 && age > job.Misfire.StartingDeadline.D():
			out[i].skip = fmt.Sprintf("skipped: %s late, past the starting deadline of %s", age, job.Misfire.StartingDeadline)
		case age > l.s.cfg.MisfireGrace:
			late = append(late, i)
		default:
			onTime++
		}
	}
	keep := 0 // how many of the latest late times run
	switch job.Misfire.Policy {
	case jobspec.MisfireRunAll:
		keep = min(len(late), job.Misfire.MaxCatchup)
	case jobspec.MisfireRunOnce:
		if onTime == 0 && len(late) > 0 {
			keep = 1
		}
	}
	for n, i := range late {
		if n >= len(late)-keep {
			continue
		}
		age := now.Sub(due[i]).Round(time.Millisecond)
		switch job.Misfire.Policy {
		case jobspec.MisfireSkip:
			out[i].skip = fmt.Sprintf("skipped: missed by %s (misfire: skip)", age)
		case jobspec.MisfireRunAll:
			out[i].skip = fmt.Sprintf("skipped: missed by %s, beyond max_catchup %d (misfire: run-all)", age, job.Misfire.MaxCatchup)
		default:
			out[i].skip = fmt.Sprintf("skipped: missed by %s; misfire: run-once runs only the latest missed time", age)
		}
	}
	return out
}

// planGroup writes the plans of several jobs in one fenced transaction —
// their fire records and their states, each compared on its revision —
// then dispatches the planned fires. It returns false when a compare other
// than the fence failed: nothing was written.
func (l *leader) planGroup(ctx context.Context, plans []jobPlan, now time.Time) (bool, error) {
	cmps := []clientv3.Cmp{l.fence}
	var ops []clientv3.Op
	states := make([]store.JobState, len(plans))
	var planned []*openFire
	var replaced []store.FireID
	// Placement counts open fires per node; the fires of this transaction
	// are counted while it is built, so they spread over the nodes, and
	// released once it is done (openFire counts the committed ones).
	release := func() {
		for _, of := range planned {
			l.nodes.assigned[of.fire.Node]--
		}
	}
	for i, p := range plans {
		e := p.e
		state := e.state
		state.HighWater = p.highWater
		state.Skipped += p.countOnly
		state.Planned += len(p.entries)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(l.keys.State(e.name)), "=", e.stateRev))
		ov := l.overlapOf(e.name)
		for _, d := range p.entries {
			var of *openFire
			f := store.Fire{
				ID:        store.ScheduledFireID(e.name, d.at),
				Trigger:   store.TriggerSchedule,
				Nominal:   d.at.UTC(),
				Attempt:   1,
				PlannedAt: now.UTC(),
				PlannedBy: l.s.cfg.ID,
			}
			switch {
			case d.skip != "":
				f.State, f.Processed, f.EndedAt, f.Reason = store.FireSkipped, true, now.UTC(), d.skip
				state.Skipped++
			case ov.admit(e.policy, &f, &replaced):
				f.State = store.FirePlanned
				f.Node, f.Reason = l.nodes.choose(e.policy, e.sels)
				l.nodes.assigned[f.Node]++
				of = &openFire{fire: f}
				planned = append(planned, of)
			default:
				state.Skipped++
			}
			data, err := json.Marshal(f)
			if err != nil {
				release()
				return false, fmt.Errorf("encode fire: %w", err)
			}
			if of != nil {
				of.record = data // the dispatch carries the record as written
			}
			key := l.keys.Fire(f.ID)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			ops = append(ops, clientv3.OpPut(key, string(data)))
		}
		stateData, err := json.Marshal(state)
		if err != nil {
			release()
			return false, fmt.Errorf("encode state: %w", err)
		}
		ops = append(ops, clientv3.OpPut(l.keys.State(e.name), string(stateData)))
		states[i] = state
	}
	rev, err := l.commit(ctx, cmps, ops)
	release()
	if err != nil || rev == 0 {
		return false, err
	}
	for i, p := range plans {
		p.e.state, p.e.stateRev = states[i], rev
	}
	for _, of := range planned {
		of.rev = rev
		l.openFire(of)
		l.dispatch(of, now)
	}
	for _, id := range replaced {
		if err := l.stop(ctx, id, "replaced by a newer run (concurrency: replace)"); err != nil {
			return false, err
		}
	}
	return true, nil
}

// commit runs a fenced transaction. It returns the new revision, 0 when a
// compare other than the fence failed, or errNotLeader.
func (l *leader) commit(ctx context.Context, cmps []clientv3.Cmp, ops []clientv3.Op) (int64, error) {
	tctx, cancel := context.WithTimeout(ctx, l.s.cfg.SessionTTL)
	defer cancel()
	resp, err := l.s.etcd.Txn(tctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		// The outcome is unknown: end the term; the next leader reads what
		// was committed and never creates a fire twice.
		return 0, fmt.Errorf("fenced transaction: %w", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	lead, err := l.s.etcd.Get(ctx, l.leaseKey)
	if err != nil {
		return 0, fmt.Errorf("check leadership: %w", err)
	}
	if len(lead.Kvs) == 0 || lead.Kvs[0].CreateRevision != l.leaseRev {
		return 0, errNotLeader
	}
	return 0, nil
}

func (l *leader) reloadJob(ctx context.Context, e *jobEntry) error {
	resp, err := l.s.etcd.Get(ctx, l.keys.State(e.name))
	if err != nil {
		return fmt.Errorf("reload state of %s: %w", e.name, err)
	}
	if len(resp.Kvs) == 0 {
		e.state, e.stateRev = store.JobState{}, 0
	} else {
		l.setState(e, resp.Kvs[0])
	}
	l.queue.set(e, l.firstNext(e))
	return nil
}

// overlap is what a job has open when new runs are planned for it. Only the
// leader creates fires, and every creation also writes the job's state key,
// which planning compares, so this view cannot miss a run that started
// meanwhile: the check is part of the planning transaction.
type overlap struct {
	newest *store.FireID // the most recent open fire, the one new runs follow
	queued bool          // an open fire already waits for another (queue)
}

func (l *leader) overlapOf(job string) overlap {
	var ov overlap
	for id, of := range l.openByJob[job] {
		if ov.newest == nil || of.fire.PlannedAt.After(l.open[*ov.newest].fire.PlannedAt) ||
			(of.fire.PlannedAt.Equal(l.open[*ov.newest].fire.PlannedAt) && cmpFireID(id, *ov.newest) > 0) {
			ov.newest = &id
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
	ov.newest = &id
	return true
}

// ready reports whether a planned fire may be dispatched now: its backoff is
// over, the fire it waits for has ended, and its backfill is under its
// parallel limit.
func (l *leader) ready(of *openFire, now time.Time) bool {
	if of.fire.NotBefore.After(now) {
		return false
	}
	if of.fire.Backfill != "" && of.fire.Parallel > 0 && of.dispatchedAt.IsZero() &&
		l.backfillGoing(of.fire.ID.Job, of.fire.Backfill) >= of.fire.Parallel {
		return false
	}
	if of.fire.After != "" {
		if after, err := store.ParseFireID(of.fire.After); err == nil {
			if _, open := l.open[after]; open {
				return false
			}
		}
	}
	return true
}

// backfillGoing counts a backfill's fires that run or were dispatched.
func (l *leader) backfillGoing(job, backfill string) int {
	going := 0
	for _, o := range l.openByJob[job] {
		if o.fire.Backfill == backfill && (o.fire.State == store.FireRunning || !o.dispatchedAt.IsZero()) {
			going++
		}
	}
	return going
}

// stop ends an open fire on request: a planned one is recorded as
// cancelled, a running one is killed by its executor, which records it. A
// fire claimed while being cancelled is read again and killed instead.
func (l *leader) stop(ctx context.Context, id store.FireID, reason string) error {
	of, ok := l.open[id]
	if !ok {
		return nil
	}
	f, rev := of.fire, of.rev
	for range 3 {
		if f.State.Final() {
			return nil
		}
		if f.State == store.FireRunning {
			data, _ := json.Marshal(store.Kill{Fire: id, Attempt: f.Attempt, Reason: reason})
			if err := l.s.nats.Publish(store.KillSubject(l.s.cfg.SubjectPrefix, f.Node), data); err != nil {
				l.log.Warn("send kill", zap.Stringer("fire", id), zap.Error(err))
			}
			return nil
		}
		cancelled := f
		cancelled.State, cancelled.EndedAt, cancelled.Reason = store.FireCancelled, l.now().UTC(), "cancelled: "+reason
		newRev, err := l.putFire(ctx, cancelled, rev)
		if err != nil || newRev != 0 {
			return err
		}
		// The record changed (claimed, most likely): read it and go again.
		resp, err := l.s.etcd.Get(ctx, l.keys.Fire(id))
		if err != nil {
			return fmt.Errorf("read fire %s: %w", id, err)
		}
		if len(resp.Kvs) == 0 || json.Unmarshal(resp.Kvs[0].Value, &f) != nil {
			return nil
		}
		rev = resp.Kvs[0].ModRevision
	}
	return nil
}

// dispatch publishes the fire to its node if it is ready. NATS is a hint: a
// lost message is repaired by reconcile.
func (l *leader) dispatch(of *openFire, now time.Time) {
	if !l.ready(of, now) {
		return // reconcile dispatches it once ready
	}
	of.dispatchedAt = now
	if of.fire.Node == "" {
		l.log.Info("fire waits", zap.Stringer("fire", of.fire.ID), zap.String("reason", of.fire.Reason))
		return
	}
	record := of.record
	if record == nil {
		record, _ = json.Marshal(of.fire)
	}
	data, _ := json.Marshal(store.Dispatch{Fire: of.fire.ID, Attempt: of.fire.Attempt, Rev: of.rev, Record: record})
	if err := l.s.nats.Publish(store.DispatchSubject(l.s.cfg.SubjectPrefix, of.fire.Node), data); err != nil {
		l.log.Warn("dispatch", zap.Stringer("fire", of.fire.ID), zap.Error(err))
	}
}

// planRequest turns a request into action in one fenced transaction that
// also deletes it: a manual run becomes a fire (whatever the concurrency
// policy: a person asked for it), a kill request stops its target.
func (l *leader) planRequest(ctx context.Context, kv *mvccpb.KeyValue) error {
	id, ok := l.keys.RequestIDFromKey(string(kv.Key))
	if !ok {
		return nil
	}
	var req store.Request
	if err := json.Unmarshal(kv.Value, &req); err != nil {
		l.log.Warn("bad run request", zap.String("key", string(kv.Key)), zap.Error(err))
		return nil
	}
	now := l.now()
	cmps := []clientv3.Cmp{l.fence, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)}
	ops := []clientv3.Op{clientv3.OpDelete(string(kv.Key))}
	if req.Pause != nil {
		return l.changePause(ctx, id.Job, req, cmps, ops)
	}
	if req.Backfill != nil {
		return l.planBackfill(ctx, id, req, cmps, ops)
	}
	if req.Kill != "" {
		target, err := store.ParseFireID(req.Kill)
		if err == nil {
			if err := l.stop(ctx, target, "killed by "+req.By); err != nil {
				return err
			}
		}
		rev, err := l.commit(ctx, cmps, ops)
		l.requestsDirty = l.requestsDirty || (err == nil && rev == 0)
		return err
	}
	f := store.Fire{
		ID: id, Trigger: store.TriggerManual, Nominal: req.At, Attempt: 1, PlannedAt: now.UTC(), PlannedBy: l.s.cfg.ID,
		State: store.FirePlanned, Env: req.Env, Args: req.Args, Downstream: req.Downstream, RequestedBy: req.By,
	}
	e, exists := l.jobs[id.Job]
	var state store.JobState
	if exists {
		f.Node, f.Reason = l.nodes.choose(e.policy, e.sels)
		// Every fire creation writes the job's state, so planning, which
		// compares it, always sees every open run (see overlap).
		state = e.state
		state.Planned++
		data, _ := json.Marshal(state)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(l.keys.State(id.Job)), "=", e.stateRev))
		ops = append(ops, clientv3.OpPut(l.keys.State(id.Job), string(data)))
	} else {
		// Recorded anyway, so whoever asked (aion run --wait) learns why.
		f.State, f.Processed, f.EndedAt = store.FireFailed, true, now.UTC()
		f.Reason = "the job was deleted before the run could be planned"
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode fire: %w", err)
	}
	key := l.keys.Fire(id)
	cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
	ops = append(ops, clientv3.OpPut(key, string(data)))
	rev, err := l.commit(ctx, cmps, ops)
	if err != nil || !exists {
		return err
	}
	if rev == 0 {
		l.requestsDirty = true // the request stays; the next reconcile plans it
		return l.reloadJob(ctx, e)
	}
	e.state, e.stateRev = state, rev
	of := &openFire{fire: f, rev: rev}
	l.openFire(of)
	l.dispatch(of, now)
	l.log.Info("manual run planned", zap.Stringer("fire", id), zap.String("by", req.By))
	return nil
}

// pausedReason starts the reason of every time skipped while paused.
const pausedReason = "skipped: the job is paused"

// changePause pauses or resumes a job by its state (fenced, with the
// request's deletion). Resuming with catch-up revives the records of times
// skipped while paused, as the misfire policy chooses: those times were
// never run, so planning them now still plans each at most once.
func (l *leader) changePause(ctx context.Context, job string, req store.Request, cmps []clientv3.Cmp, ops []clientv3.Op) error {
	e, ok := l.jobs[job]
	if !ok {
		_, err := l.commit(ctx, cmps, ops)
		return err
	}
	now := l.now()
	state := e.state
	var revived []*openFire
	if req.Pause.Pause {
		state.Paused, state.PauseNote, state.PausedAt, state.PausedBy = true, req.Pause.Note, now.UTC(), req.By
	} else {
		if req.Pause.Catchup && state.Paused {
			resp, err := l.s.etcd.Get(ctx, l.keys.Fire(store.ScheduledFireID(job, state.PausedAt)),
				clientv3.WithRange(clientv3.GetPrefixRangeEnd(l.keys.JobFires(job))))
			if err != nil {
				return fmt.Errorf("read fires skipped while paused: %w", err)
			}
			var skipped []struct {
				f   store.Fire
				rev int64
			}
			for _, kv := range resp.Kvs {
				var f store.Fire
				if json.Unmarshal(kv.Value, &f) == nil && f.State == store.FireSkipped && strings.HasPrefix(f.Reason, pausedReason) {
					skipped = append(skipped, struct {
						f   store.Fire
						rev int64
					}{f, kv.ModRevision})
				}
			}
			keep := 0
			switch e.policy.Misfire.Policy {
			case jobspec.MisfireRunOnce:
				keep = min(len(skipped), 1)
			case jobspec.MisfireRunAll:
				keep = min(len(skipped), e.policy.Misfire.MaxCatchup, maxFiresPerTxn)
			}
			for _, sk := range skipped[len(skipped)-keep:] {
				f := sk.f
				f.State, f.Processed, f.EndedAt, f.PlannedAt = store.FirePlanned, false, time.Time{}, now.UTC()
				f.Node, f.Reason = l.nodes.choose(e.policy, e.sels)
				data, _ := json.Marshal(f)
				key := l.keys.Fire(f.ID)
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", sk.rev))
				ops = append(ops, clientv3.OpPut(key, string(data)))
				revived = append(revived, &openFire{fire: f})
				state.Planned++
			}
		}
		state.Paused, state.PauseNote, state.PausedAt, state.PausedBy = false, "", time.Time{}, ""
	}
	data, _ := json.Marshal(state)
	cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(l.keys.State(job)), "=", e.stateRev))
	ops = append(ops, clientv3.OpPut(l.keys.State(job), string(data)))
	rev, err := l.commit(ctx, cmps, ops)
	if err != nil {
		return err
	}
	if rev == 0 {
		l.requestsDirty = true // the request stays; the next reconcile applies it
		return l.reloadJob(ctx, e)
	}
	e.state, e.stateRev = state, rev
	for _, of := range revived {
		of.rev = rev
		l.openFire(of)
		l.dispatch(of, now)
	}
	l.log.Info("pause changed", zap.String("job", job), zap.Bool("paused", state.Paused), zap.Int("caught_up", len(revived)), zap.String("by", req.By))
	return nil
}

// planBackfill plans every nominal time of the request's range that has no
// fire yet, in transactions of at most maxFiresPerTxn fires each created
// only if absent; the request is deleted with the last one, so a new leader
// finishes an interrupted backfill and nothing is planned twice.
func (l *leader) planBackfill(ctx context.Context, id store.FireID, req store.Request, cmps []clientv3.Cmp, ops []clientv3.Op) error {
	e, ok := l.jobs[id.Job]
	if !ok || e.sched == nil {
		l.log.Warn("backfill of a job without a schedule ignored", zap.String("job", id.Job))
		_, err := l.commit(ctx, cmps, ops)
		return err
	}
	now := l.now()
	times, _ := jobspec.Between(e.sched, req.Backfill.From, req.Backfill.To, store.MaxBackfill)
	var created []*openFire
	for first := true; first || len(times) > 0; first = false {
		chunk := times[:min(len(times), maxFiresPerTxn)]
		times = times[len(chunk):]
		var chunkCmps []clientv3.Cmp
		var chunkOps []clientv3.Op
		var chunkFires []*openFire
		for _, t := range chunk {
			f := store.Fire{
				ID: store.ScheduledFireID(id.Job, t), Trigger: store.TriggerBackfill, Nominal: t.UTC(),
				State: store.FirePlanned, Attempt: 1, PlannedAt: now.UTC(), PlannedBy: l.s.cfg.ID, RequestedBy: req.By,
				Backfill: id.Suffix, Parallel: req.Backfill.Parallel,
			}
			if exists, err := l.exists(ctx, l.keys.Fire(f.ID)); err != nil {
				return err
			} else if exists {
				continue // planned before, by the schedule or an earlier backfill
			}
			f.Node, f.Reason = l.nodes.choose(e.policy, e.sels)
			data, _ := json.Marshal(f)
			key := l.keys.Fire(f.ID)
			chunkCmps = append(chunkCmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			chunkOps = append(chunkOps, clientv3.OpPut(key, string(data)))
			chunkFires = append(chunkFires, &openFire{fire: f})
		}
		state := e.state
		state.Planned += len(chunkFires)
		data, _ := json.Marshal(state)
		chunkCmps = append(chunkCmps, l.fence, clientv3.Compare(clientv3.ModRevision(l.keys.State(id.Job)), "=", e.stateRev))
		chunkOps = append(chunkOps, clientv3.OpPut(l.keys.State(id.Job), string(data)))
		if len(times) == 0 { // the last chunk deletes the request
			chunkCmps = append(chunkCmps, cmps...)
			chunkOps = append(chunkOps, ops...)
		}
		rev, err := l.commit(ctx, chunkCmps, chunkOps)
		if err != nil {
			return err
		}
		if rev == 0 {
			l.requestsDirty = true
			return l.reloadJob(ctx, e)
		}
		e.state, e.stateRev = state, rev
		for _, of := range chunkFires {
			of.rev = rev
			l.openFire(of)
			created = append(created, of)
		}
	}
	for _, of := range created {
		l.dispatch(of, now)
	}
	l.log.Info("backfill planned", zap.String("job", id.Job), zap.Int("fires", len(created)), zap.Int("parallel", req.Backfill.Parallel))
	return nil
}
