package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// dispatcher is what the term says to executors over NATS: run this fire
// (dispatch), stop that one (kill). NATS is a hint: a lost dispatch is
// repaired by reconcile, and an executor starts only what it claims in
// etcd.
type dispatcher struct {
	nats   *nats.Conn
	prefix string // NATS subject prefix
	etcd   *clientv3.Client
	keys   store.Keys
	fence  *fence
	fires  *openFires
	log    *zap.Logger
	now    func() time.Time
}

// dispatch publishes the fire to its node if it is ready (reconcile
// dispatches it once it is).
func (d *dispatcher) dispatch(of *openFire, now time.Time) {
	if !d.fires.ready(of, now) {
		return
	}
	of.dispatchedAt = now
	if of.fire.Node == "" {
		d.log.Info("fire waits", zap.Stringer("fire", of.fire.ID), zap.String("reason", of.fire.Reason))
		return
	}
	msg := store.Dispatch{Fire: of.fire.ID, Attempt: of.fire.Attempt}
	// A manual run's --env overrides stay off NATS: without the record's
	// copy, the executor reads the record from etcd when it claims.
	if len(of.fire.Env) == 0 {
		msg.Rev, msg.Record = of.rev, of.record
		if msg.Record == nil {
			var err error
			if msg.Record, err = json.Marshal(of.fire); err != nil {
				d.log.Error("encode fire for dispatch: reconcile dispatches it again", zap.Stringer("fire", of.fire.ID), zap.Error(err))
				return
			}
		}
	}
	data, err := json.Marshal(msg)
	if err != nil {
		d.log.Error("encode dispatch: reconcile dispatches it again", zap.Stringer("fire", of.fire.ID), zap.Error(err))
		return
	}
	if err := d.nats.Publish(store.DispatchSubject(d.prefix, of.fire.Node), data); err != nil {
		d.log.Warn("dispatch", zap.Stringer("fire", of.fire.ID), zap.Error(err))
	}
}

// dispatchAll dispatches the fires of a committed transaction.
func (d *dispatcher) dispatchAll(fires []*openFire, now time.Time) {
	for _, of := range fires {
		d.dispatch(of, now)
	}
}

// stop ends an open fire: a planned one is recorded as cancelled, a
// running one gets the kill recorded in its record (Fire.Kill, for its
// attempt), then its executor a hint to read it; the executor kills the
// run and records it cancelled. Both writes are fenced and compared on
// the record's revision; a fire claimed (or changed) meanwhile is read
// again and handled as it now is.
func (d *dispatcher) stop(ctx context.Context, id store.FireID, reason string) error {
	of := d.fires.get(id)
	if of == nil {
		return nil
	}
	f, rev := of.fire, of.rev
	for range 3 {
		next := f
		switch {
		case f.State.Final():
			return nil
		case f.KillAsked():
			d.kill(f) // recorded already: hint again
			return nil
		case f.State == store.FireRunning:
			next.Kill = &store.FireKill{Attempt: f.Attempt, Reason: reason, At: d.now().UTC()}
		default:
			next.State, next.EndedAt, next.Reason = store.FireCancelled, d.now().UTC(), "cancelled: "+reason
		}
		written, err := d.fence.rewriteFire(ctx, d.keys, next, rev)
		if err == nil {
			if next.State == store.FireRunning {
				d.fires.open(written)
				d.kill(next)
			}
			return nil
		}
		if !conflicted(err) {
			return err
		}
		// The record changed (claimed, most likely): read it and go again.
		resp, err := d.etcd.Get(ctx, d.keys.Fire(id))
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

// stopAll stops the fires a concurrency: replace policy replaced.
func (d *dispatcher) stopAll(ctx context.Context, ids []store.FireID, reason string) error {
	for _, id := range ids {
		if err := d.stop(ctx, id, reason); err != nil {
			return err
		}
	}
	return nil
}

// kill hints to the executor running f that its record asks for a kill;
// reconcile hints again while the attempt runs, so a lost hint only
// delays the kill.
func (d *dispatcher) kill(f store.Fire) {
	data, err := json.Marshal(store.Kill{Fire: f.ID, Attempt: f.Attempt})
	if err != nil {
		d.log.Error("encode kill", zap.Stringer("fire", f.ID), zap.Error(err))
		return
	}
	if err := d.nats.Publish(store.KillSubject(d.prefix, f.Node), data); err != nil {
		d.log.Warn("send kill", zap.Stringer("fire", f.ID), zap.Error(err))
	}
}
