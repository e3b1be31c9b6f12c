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

// intents carries out what users ask for through the API: a manual run, a
// kill, a pause or resume, a backfill. The API writes each as a
// store.Request; the term acts on it in a fenced transaction that also
// deletes it, so a request is acted on once, by whichever leader sees it.
type intents struct {
	id    string // this scheduler, recorded as planned_by
	etcd  *clientv3.Client
	keys  store.Keys
	log   *zap.Logger
	now   func() time.Time
	jobs  *jobTable
	fires *openFires
	nodes *placement
	fence *fence
	send  *dispatcher

	// dirty says a request could not be acted on (a conflicting write);
	// retryDirty reads the pending requests again.
	dirty bool
}

// handle acts on one request.
func (in *intents) handle(ctx context.Context, kv *mvccpb.KeyValue) error {
	id, ok := in.keys.RequestIDFromKey(string(kv.Key))
	if !ok {
		return nil
	}
	var req store.Request
	if err := json.Unmarshal(kv.Value, &req); err != nil {
		in.log.Warn("bad request", zap.String("key", string(kv.Key)), zap.Error(err))
		return nil
	}
	var done txn // deleting the request, part of the transaction that acts on it
	done.remove(string(kv.Key), kv.ModRevision)
	var err error
	switch {
	case req.Pause != nil:
		err = in.changePause(ctx, id.Job, req, &done)
	case req.Backfill != nil:
		err = in.backfill(ctx, id, req, &done)
	case req.Kill != "":
		err = in.kill(ctx, req, &done)
	default:
		err = in.run(ctx, id, req, &done)
	}
	if conflicted(err) {
		in.dirty = true // the request stays; the next reconcile acts on it
		if e := in.jobs.get(id.Job); e != nil {
			return in.jobs.reload(ctx, e)
		}
		return nil
	}
	return err
}

// retryDirty acts again on the requests left after a conflict.
func (in *intents) retryDirty(ctx context.Context) error {
	if !in.dirty {
		return nil
	}
	in.dirty = false
	resp, err := in.etcd.Get(ctx, in.keys.Requests(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read requests: %w", err)
	}
	for _, kv := range resp.Kvs {
		if err := in.handle(ctx, kv); err != nil {
			return err
		}
	}
	return nil
}

// kill stops the target fire and deletes the request.
func (in *intents) kill(ctx context.Context, req store.Request, done *txn) error {
	if target, err := store.ParseFireID(req.Kill); err == nil {
		if err := in.send.stop(ctx, target, "killed by "+req.By); err != nil {
			return err
		}
	}
	_, err := in.fence.commit(ctx, done)
	return err
}

// run plans a manual run: a fire, whatever the concurrency policy (a person
// asked for it). For a job deleted meanwhile the fire is recorded as
// failed anyway, so whoever asked (aion run --wait) learns why.
func (in *intents) run(ctx context.Context, id store.FireID, req store.Request, done *txn) error {
	now := in.now()
	f := store.Fire{
		ID: id, Trigger: store.TriggerManual, Nominal: req.At, Attempt: 1, PlannedAt: now.UTC(), PlannedBy: in.id,
		State: store.FirePlanned, Env: req.Env, Args: req.Args, Downstream: req.Downstream, RequestedBy: req.By,
	}
	e := in.jobs.get(id.Job)
	t := in.fence.txn()
	t.add(done)
	var state store.JobState
	if e != nil {
		f.Node, f.Reason = in.nodes.choose(e)
		// Every fire creation writes the job's state, so planning, which
		// compares it, always sees every open run (see overlap).
		state = e.state
		state.Planned++
		if _, err := t.update(in.keys.State(id.Job), e.stateRev, state); err != nil {
			return err
		}
	} else {
		f.State, f.Processed, f.EndedAt = store.FireFailed, true, now.UTC()
		f.Reason = "the job was deleted before the run could be planned"
	}
	data, err := t.createFire(in.keys.Fire(id), &f)
	if err != nil {
		return err
	}
	rev, err := in.fence.commit(ctx, &t)
	if err != nil || e == nil {
		return err
	}
	in.jobs.stateWritten(e, state, rev)
	of := &openFire{fire: f, rev: rev, record: data}
	in.fires.open(of)
	in.send.dispatch(of, now)
	in.log.Info("manual run planned", zap.Stringer("fire", id), zap.String("by", req.By))
	return nil
}

// changePause pauses or resumes a job by its state. Resuming with catch-up
// revives the records of times skipped while paused, as the misfire policy
// chooses: those times were never run, so planning them now still plans
// each at most once.
func (in *intents) changePause(ctx context.Context, job string, req store.Request, done *txn) error {
	e := in.jobs.get(job)
	if e == nil {
		_, err := in.fence.commit(ctx, done)
		return err
	}
	now := in.now()
	state := e.state
	t := in.fence.txn()
	t.add(done)
	var revived []*openFire
	if req.Pause.Pause {
		state.Paused, state.PauseNote, state.PausedAt, state.PausedBy = true, req.Pause.Note, now.UTC(), req.By
	} else {
		if req.Pause.Catchup && state.Paused {
			var err error
			if revived, err = in.reviveSkipped(ctx, e, &t, now); err != nil {
				return err
			}
			state.Planned += len(revived)
		}
		state.Paused, state.PauseNote, state.PausedAt, state.PausedBy = false, "", time.Time{}, ""
	}
	if _, err := t.update(in.keys.State(job), e.stateRev, state); err != nil {
		return err
	}
	rev, err := in.fence.commit(ctx, &t)
	if err != nil {
		return err
	}
	in.jobs.stateWritten(e, state, rev)
	for _, of := range revived {
		of.rev = rev
		in.fires.open(of)
	}
	in.send.dispatchAll(revived, now)
	in.log.Info("pause changed", zap.String("job", job), zap.Bool("paused", state.Paused), zap.Int("caught_up", len(revived)), zap.String("by", req.By))
	return nil
}

// reviveSkipped adds to t the records of the times e skipped while paused
// that its misfire policy runs on resume (run-once: the latest; run-all: up
// to max_catchup), planned again, and returns them.
func (in *intents) reviveSkipped(ctx context.Context, e *jobEntry, t *txn, now time.Time) ([]*openFire, error) {
	resp, err := in.etcd.Get(ctx, in.keys.Fire(store.ScheduledFireID(e.name, e.state.PausedAt)),
		clientv3.WithRange(clientv3.GetPrefixRangeEnd(in.keys.JobFires(e.name))))
	if err != nil {
		return nil, fmt.Errorf("read fires skipped while paused: %w", err)
	}
	type skippedFire struct {
		f   store.Fire
		rev int64
	}
	var skipped []skippedFire
	for _, kv := range resp.Kvs {
		var f store.Fire
		if json.Unmarshal(kv.Value, &f) == nil && f.State == store.FireSkipped && strings.HasPrefix(f.Reason, pausedReason) {
			skipped = append(skipped, skippedFire{f, kv.ModRevision})
		}
	}
	keep := 0
	switch e.policy.Misfire.Policy {
	case jobspec.MisfireRunOnce:
		keep = min(len(skipped), 1)
	case jobspec.MisfireRunAll:
		keep = min(len(skipped), e.policy.Misfire.MaxCatchup, maxFiresPerTxn)
	}
	var revived []*openFire
	for _, sk := range skipped[len(skipped)-keep:] {
		f := sk.f
		f.State, f.Processed, f.EndedAt, f.PlannedAt = store.FirePlanned, false, time.Time{}, now.UTC()
		f.Node, f.Reason = in.nodes.choose(e)
		data, err := t.updateFire(in.keys.Fire(f.ID), sk.rev, &f)
		if err != nil {
			return nil, err
		}
		revived = append(revived, &openFire{fire: f, record: data})
	}
	return revived, nil
}

// backfill plans every nominal time of the request's range that has no
// fire yet, in transactions of at most maxFiresPerTxn fires, each created
// only if absent; the request is deleted with the last one, so a new
// leader finishes an interrupted backfill and nothing is planned twice.
func (in *intents) backfill(ctx context.Context, id store.FireID, req store.Request, done *txn) error {
	e := in.jobs.get(id.Job)
	if e == nil || e.sched == nil {
		in.log.Warn("backfill of a job without a schedule ignored", zap.String("job", id.Job))
		_, err := in.fence.commit(ctx, done)
		return err
	}
	now := in.now()
	times, _ := jobspec.Between(e.sched, req.Backfill.From, req.Backfill.To, store.MaxBackfill)
	// Times from the job's next planned time on are the schedule's: a fire
	// created for one here would make planning meet it (create-if-absent)
	// and stop that job's planning.
	if !e.next.IsZero() {
		times = slices.DeleteFunc(times, func(t time.Time) bool { return !t.Before(e.next) })
	}
	var created []*openFire
	for first := true; first || len(times) > 0; first = false {
		chunk := times[:min(len(times), maxFiresPerTxn)]
		times = times[len(chunk):]
		t := in.fence.txn()
		fires, err := in.backfillChunk(ctx, &t, e, id, req, chunk, now)
		if err != nil {
			return err
		}
		state := e.state
		state.Planned += len(fires)
		if _, err := t.update(in.keys.State(id.Job), e.stateRev, state); err != nil {
			return err
		}
		if len(times) == 0 { // the last chunk deletes the request
			t.add(done)
		}
		rev, err := in.fence.commit(ctx, &t)
		if err != nil {
			return err
		}
		in.jobs.stateWritten(e, state, rev)
		for _, of := range fires {
			of.rev = rev
			in.fires.open(of)
		}
		created = append(created, fires...)
	}
	in.send.dispatchAll(created, now)
	in.log.Info("backfill planned", zap.String("job", id.Job), zap.Int("fires", len(created)), zap.Int("parallel", req.Backfill.Parallel))
	return nil
}

// backfillChunk adds to t a fire for each of the times that has none yet
// (planned before, by the schedule or an earlier backfill), and returns
// them.
func (in *intents) backfillChunk(ctx context.Context, t *txn, e *jobEntry, id store.FireID, req store.Request, times []time.Time, now time.Time) ([]*openFire, error) {
	var fires []*openFire
	for _, at := range times {
		f := store.Fire{
			ID: store.ScheduledFireID(id.Job, at), Trigger: store.TriggerBackfill, Nominal: at.UTC(),
			State: store.FirePlanned, Attempt: 1, PlannedAt: now.UTC(), PlannedBy: in.id, RequestedBy: req.By,
			Backfill: id.Suffix, Parallel: req.Backfill.Parallel,
		}
		key := in.keys.Fire(f.ID)
		if exists, err := keyExists(ctx, in.etcd, key); err != nil {
			return nil, err
		} else if exists {
			continue
		}
		f.Node, f.Reason = in.nodes.choose(e)
		data, err := t.createFire(key, &f)
		if err != nil {
			return nil, err
		}
		fires = append(fires, &openFire{fire: f, record: data})
	}
	return fires, nil
}
