package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// reconcile repairs what messages cannot: fires planned but not claimed are
// placed and dispatched again, fires running on an executor whose lease is
// gone become lost, and final fires whose effects are unrecorded are
// processed.
func (l *leader) reconcile(ctx context.Context) error {
	now := l.now()
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
		case of.fire.State == store.FirePlanned && (of.fire.Node == "" || !l.nodes.live(of.fire.Node) || now.Sub(of.dispatchedAt) > l.s.cfg.RedispatchAfter):
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
	node, reason := l.nodes.choose(e.job, e.sels)
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

// process records a final fire's effects in one fenced transaction: the
// job's last result, and a dependent fire for every child whose parents
// have all succeeded since the child last ran.
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
	f.Processed = true
	fireData, _ := json.Marshal(f)
	cmps := []clientv3.Cmp{l.fence, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)}
	ops := []clientv3.Op{clientv3.OpPut(string(kv.Key), string(fireData))}

	e, ok := l.jobs[id.Job]
	if !ok { // deleted job: only mark the record
		if _, err := l.commit(ctx, cmps, ops); err != nil {
			return err
		}
		delete(l.pending, id)
		return nil
	}
	states := map[string]store.JobState{}
	state := e.state
	state.LastFire, state.LastResult = id.String(), f.State
	if f.State == store.FireSucceeded {
		state.LastSuccess = f.EndedAt
	}
	states[id.Job] = state
	var children []*openFire
	if f.State == store.FireSucceeded {
		for _, name := range l.children[id.Job] {
			child := l.jobs[name]
			if child == nil || child.job.Disabled || !l.parentsSucceeded(child, states) {
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
				Nominal: now.UTC(), Attempt: 1, PlannedAt: now.UTC(), State: store.FirePlanned,
			}
			if l.hasOpenFire(name) && child.job.Concurrency == jobspec.ConcurrencyForbid {
				cf.State, cf.Processed = store.FireSkipped, true
				cf.Reason = "skipped: the previous run is still running (concurrency: forbid)"
			} else {
				cf.Node, cf.Reason = l.nodes.choose(child.job, child.sels)
				children = append(children, &openFire{fire: cf})
			}
			data, _ := json.Marshal(cf)
			key := l.keys.Fire(cf.ID)
			// Created only if new: an existing record of the same ID is
			// the same run, and must not block recording this result.
			ops = append(ops, clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(key, string(data))}, nil))
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
	l.log.Debug("fire finished", zap.Stringer("fire", id), zap.String("state", string(f.State)), zap.Int("children", len(children)))
	return nil
}

// parentsSucceeded reports whether every parent of child succeeded after
// the child was last triggered (Chronos semantics), using the states about
// to be written where they differ from the stored ones.
func (l *leader) parentsSucceeded(child *jobEntry, pending map[string]store.JobState) bool {
	for _, p := range child.job.Parents {
		st, ok := pending[p]
		if !ok {
			pe := l.jobs[p]
			if pe == nil {
				return false
			}
			st = pe.state
		}
		if st.LastSuccess.IsZero() || !st.LastSuccess.After(child.state.LastTriggered) {
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
