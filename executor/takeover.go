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

// orphan is a run of a dead predecessor that was still running when this
// executor started, and was killed: its process group, or its container.
type orphan struct {
	pgid      int
	container string
}

func (o orphan) String() string {
	if o.container != "" {
		return "container " + o.container
	}
	return fmt.Sprintf("process group %d", o.pgid)
}

// addStoppedContainers adds to killed the leftover containers that were
// still running when they were removed.
func addStoppedContainers(killed map[string]orphan, removed []containerizer.Leftover) {
	for _, l := range removed {
		if l.State == "running" {
			killed[exitKey(l.Fire, l.Attempt)] = orphan{container: l.ContainerID}
		}
	}
}

// settlePredecessor records the end of every run etcd still has running
// on this node, which can only be runs of a dead predecessor: it is called
// once the node's lock is held and its registration taken over, before any
// dispatch is taken. (When the predecessor's lease had ended instead, the
// leader has marked its runs lost, and nothing is read: reading every fire
// record costs as much as a leader's election.) A run whose end the exit journal holds gets that result; a run
// still going was killed (killOrphans) and is lost; any other run ended
// with nobody to see how, and is lost saying its exit status is unknown.
func (x *Executor) settlePredecessor(ctx context.Context, exits map[string]exitEntry, killed map[string]orphan) error {
	fires, err := x.runningHere(ctx)
	if err != nil {
		return err
	}
	for _, rf := range fires {
		f := x.settled(rf.fire, exits, killed)
		rev, err := x.recordBatched(ctx, f, rf.rev)
		switch {
		case err != nil:
			return fmt.Errorf("record the end of %s, left by a dead executor: %w", f.ID, err)
		case rev == 0:
			continue // the leader got there first (marked lost)
		}
		x.emit(f)
		x.log.Warn("recorded a run left by a dead executor", zap.Stringer("fire", f.ID), zap.Int("attempt", f.Attempt),
			zap.String("state", string(f.State)), zap.String("reason", f.Reason))
	}
	return nil
}

// settled is the final record of a predecessor's running fire.
func (x *Executor) settled(f store.Fire, exits map[string]exitEntry, killed map[string]orphan) store.Fire {
	key := exitKey(f.ID.String(), f.Attempt)
	pred := "the previous executor"
	if x.lock.predecessor > 0 {
		pred = fmt.Sprintf("the previous executor (PID %d)", x.lock.predecessor)
	}
	if e, ok := exits[key]; ok {
		f.State, f.Reason, f.ExitCode, f.PID = e.State, e.Reason, e.ExitCode, e.PID
		f.StartedAt, f.EndedAt = e.StartedAt, e.EndedAt
		f.OutputTail, f.OutputPath = x.tailOf(f)
		return f
	}
	f.State, f.EndedAt = store.FireLost, time.Now().UTC()
	f.OutputTail, f.OutputPath = x.tailOf(f)
	if o, ok := killed[key]; ok {
		f.Reason = fmt.Sprintf("%s died while running it; the run was still running when executor PID %d took over node %s, and was killed (%s)",
			pred, os.Getpid(), x.cfg.NodeID, o)
		return f
	}
	f.Reason = fmt.Sprintf("%s died while running it, and its exit status is unknown: the run had ended, unobserved, when executor PID %d took over node %s",
		pred, os.Getpid(), x.cfg.NodeID)
	return f
}

// tailOf reads the tail of a run's output file, if it wrote one.
func (x *Executor) tailOf(f store.Fire) (tail, path string) {
	path = x.outputPath(f.ID, f.Attempt)
	file, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer file.Close()
	return readTail(file, x.cfg.TailBytes), path
}

// runningFire is a fire record in state running, at its revision.
type runningFire struct {
	fire store.Fire
	rev  int64
}

// runningHere reads the fire records running on this node, page by page
// at one revision.
func (x *Executor) runningHere(ctx context.Context) ([]runningFire, error) {
	const page = 500
	prefix := x.keys.Fires()
	end := clientv3.GetPrefixRangeEnd(prefix)
	var out []runningFire
	var rev int64
	for from := prefix; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(page)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := x.etcd.Get(ctx, from, opts...)
		if err != nil {
			return nil, fmt.Errorf("read the fires running on %s: %w", x.cfg.NodeID, err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			var f store.Fire
			if json.Unmarshal(kv.Value, &f) != nil || f.State != store.FireRunning || f.Node != x.cfg.NodeID {
				continue
			}
			out = append(out, runningFire{fire: f, rev: kv.ModRevision})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
