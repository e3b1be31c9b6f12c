package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/executor/containerizer"
	"github.com/aionsched/aion/executor/runoutput"
	"github.com/aionsched/aion/executor/supervisor"
	"github.com/aionsched/aion/scheduler/store"
)

// takeOver replaces the registration kv, held under another lease, with
// data on lease, if it is the registration of this node's dead predecessor
// on this host: it names the lock this executor holds. The predecessor's
// lease is revoked afterwards; until then it only keeps an empty lease.
func (x *Executor) takeOver(ctx context.Context, key string, kv registered, data []byte, lease clientv3.LeaseID) error {
	if kv.node.Lock == "" || kv.node.Lock != x.lock.id {
		where := "another host or output directory"
		if kv.node.Lock != "" {
			where = kv.node.Lock
		}
		return fmt.Errorf("register node: node ID %q is in use by a live executor (%s)", x.cfg.NodeID, where)
	}
	resp, err := x.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.rev)).
		Then(clientv3.OpPut(key, string(data), clientv3.WithLease(lease))).
		Commit()
	if err != nil {
		return fmt.Errorf("register node: take over from a dead predecessor: %w", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("register node: node ID %q: its registration changed while taking it over", x.cfg.NodeID)
	}
	if _, err := x.etcd.Revoke(ctx, kv.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		x.log.Warn("revoke the dead predecessor's lease", zap.Error(err))
	}
	x.log.Warn("took over the registration of a dead executor of this node (its lock was free)",
		zap.Int("predecessor_pid", x.lock.predecessor), zap.String("lock", x.lock.id))
	return nil
}

// registered is a registration found in etcd.
type registered struct {
	node  store.Node
	rev   int64
	lease clientv3.LeaseID
}

// adoption is a run of a predecessor whose supervisor still runs: this
// executor holds it as its own (serve).
type adoption struct {
	run   *supervisor.Run
	claim claimMeta // Rev: the revision of the record since adopted
}

// adoptRuns takes over the host runs a predecessor of this node left
// with the node's supervisor, which attached says still runs (Open found
// it): it must be called holding the node's registration, before any
// dispatch is taken. A run that has ended is recorded as its status says.
// A run still going is adopted, once its record names this executor's
// lease (a write compared on the record as the predecessor left it: if
// the leader counted it lost meanwhile, the run is stopped instead). When
// the supervisor died, its runs died with it, and the leader counts them
// lost.
func (x *Executor) adoptRuns(ctx context.Context, attached bool) []adoption {
	if !attached {
		return nil
	}
	runs, err := x.sup.Runs()
	if err != nil {
		x.log.Warn("list the runs a previous executor left with the supervisor", zap.Error(err))
		return nil
	}
	var adopted []adoption
	for _, info := range runs {
		var claim claimMeta
		if err := json.Unmarshal(info.Meta, &claim); err != nil {
			x.log.Warn("a run of the supervisor without a claim", zap.String("run", info.ID), zap.Error(err))
			continue
		}
		log := x.log.With(zap.Stringer("fire", claim.Fire.ID), zap.Int("attempt", claim.Fire.Attempt))
		if claim.Container != "" {
			if a, ok := x.adoptContainer(ctx, info, claim, log); ok {
				adopted = append(adopted, a)
			}
			continue
		}
		if info.Status != nil {
			st := *info.Status
			result := x.resultOf(info.ID, func() (supervisor.Status, error) { return st, nil }, claim.Timeout, "")
			log.Warn("recording a run that ended while its executor was down", zap.String("state", string(result.state)), zap.String("reason", result.reason))
			x.finish(ctx, claim.Fire, claim.Rev, result, log)
			continue
		}
		run, err := x.sup.Adopt(info.ID)
		if err != nil {
			continue // the supervisor went: the leader counts its runs lost
		}
		rev, err := x.restamp(ctx, claim)
		if err != nil || rev == 0 {
			log.Warn("a run left by a previous executor is no longer this node's (marked lost?): stopping it", zap.Error(err))
			_ = run.Kill("killed: the leader counted it lost while its executor restarted")
			continue
		}
		claim.Rev = rev
		claim.Fire.Lease = x.lease.Load()
		log.Info("adopted a run left by a previous executor")
		adopted = append(adopted, adoption{run: run, claim: claim})
	}
	return adopted
}

// adoptContainer takes over the container run a predecessor left fenced
// with the supervisor (info): one still going is adopted as a host run is
// (resumeContainer follows it), one whose fence killed it is recorded
// lost. Its container, unless adopted, is removed with the other
// leftovers.
func (x *Executor) adoptContainer(ctx context.Context, info supervisor.RunInfo, claim claimMeta, log *zap.Logger) (adoption, bool) {
	if info.Status != nil {
		tail, path := runoutput.TailOf(x.outputPath(claim.Fire.ID, claim.Fire.Attempt), x.cfg.TailBytes)
		result := runResult{state: store.FireLost, reason: info.Status.Reason, supervised: info.ID, output: runoutput.Kept{Tail: tail, Path: path}}
		log.Warn("recording a container run its fence killed while its executor was down", zap.String("reason", result.reason))
		x.finish(ctx, claim.Fire, claim.Rev, result, log)
		return adoption{}, false
	}
	run, err := x.sup.Adopt(info.ID)
	if err != nil {
		return adoption{}, false // the supervisor went; the container goes with the leftovers
	}
	if x.containers == nil {
		log.Warn("a container run left by a previous executor, and no Docker engine now: killing it")
		_ = run.Kill("killed: the restarted executor of its node found no Docker engine to follow it")
		return adoption{}, false
	}
	rev, err := x.restamp(ctx, claim)
	if err != nil || rev == 0 {
		log.Warn("a container run left by a previous executor is no longer this node's (marked lost?): removing it", zap.Error(err))
		_ = run.Kill("killed: the leader counted it lost while its executor restarted")
		return adoption{}, false
	}
	claim.Rev = rev
	claim.Fire.Lease = x.lease.Load()
	log.Info("adopted a container run left by a previous executor", zap.String("container", claim.Container))
	return adoption{run: run, claim: claim}, true
}

// restamp writes this executor's lease into a running record as claim
// left it (or with a kill recorded on it since), compared on its
// revision; it returns the new revision, or 0 when the record is no
// longer that attempt's claim.
func (x *Executor) restamp(ctx context.Context, claim claimMeta) (int64, error) {
	key := x.keys.Fire(claim.Fire.ID)
	resp, err := x.etcd.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read the record: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	kv := resp.Kvs[0]
	var f store.Fire
	if err := json.Unmarshal(kv.Value, &f); err != nil {
		return 0, fmt.Errorf("decode the record: %w", err)
	}
	if kv.ModRevision != claim.Rev && !killRecorded(kv.Value, claim.Fire) {
		return 0, nil
	}
	if f.State != store.FireRunning || f.Node != x.cfg.NodeID || f.Attempt != claim.Fire.Attempt {
		return 0, nil
	}
	f.Lease = x.lease.Load()
	data, err := json.Marshal(f)
	if err != nil {
		return 0, err
	}
	txn, err := x.etcd.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpPut(key, string(data))).Commit()
	if err != nil {
		return 0, fmt.Errorf("adopt: %w", err)
	}
	if !txn.Succeeded {
		return 0, nil
	}
	return txn.Header.Revision, nil
}

// serveAdopted holds an adopted run as handle holds a claimed one: it
// takes a slot, obeys kills, and records the result.
func (x *Executor) serveAdopted(ctx context.Context, a adoption) {
	f := a.claim.Fire
	log := x.log.With(zap.Stringer("fire", f.ID))
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	x.mu.Lock()
	x.running[f.ID] = activeRun{attempt: f.Attempt, cancel: cancel}
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.running, f.ID)
		x.mu.Unlock()
	}()
	var result runResult
	if a.claim.Container != "" {
		result = x.resumeContainer(runCtx, a)
	} else {
		result = x.supervise(runCtx, a.run, a.claim.Timeout)
	}
	x.finish(ctx, f, a.claim.Rev, result, log)
}

// settleLeftovers records as lost the runs of the containers a
// predecessor left (removed): those with no fence to adopt (adoptRuns).
// Each record is written only if it is still that attempt's claim, on
// this node, by another lease (a read, then a write compared on it); the
// leader would count it lost as well, later.
func (x *Executor) settleLeftovers(ctx context.Context, removed []containerizer.Leftover) {
	for _, l := range removed {
		id, err := store.ParseFireID(l.Fire)
		if err != nil {
			continue
		}
		key := x.keys.Fire(id)
		resp, err := x.etcd.Get(ctx, key)
		if err != nil || len(resp.Kvs) == 0 {
			continue
		}
		var f store.Fire
		if json.Unmarshal(resp.Kvs[0].Value, &f) != nil || f.State != store.FireRunning || f.Node != x.cfg.NodeID ||
			f.Attempt != l.Attempt || f.Lease == x.lease.Load() {
			continue
		}
		f.State, f.EndedAt = store.FireLost, time.Now().UTC()
		how := "still running"
		if l.State != "running" {
			how = "over (" + l.State + "), unobserved,"
		}
		f.Reason = fmt.Sprintf("the previous executor died while running it; the run was %s when executor PID %d took over node %s, and its container %s was removed",
			how, os.Getpid(), x.cfg.NodeID, l.ContainerID[:min(12, len(l.ContainerID))])
		f.OutputTail, f.OutputPath = runoutput.TailOf(x.outputPath(f.ID, f.Attempt), x.cfg.TailBytes)
		if _, err := x.recordBatched(ctx, f, resp.Kvs[0].ModRevision); err != nil {
			x.log.Warn("record the run of a container left by a previous executor", zap.Stringer("fire", f.ID), zap.Error(err))
			continue
		}
		x.emit(f)
	}
}
