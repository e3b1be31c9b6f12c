package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// claimed is a fire this executor took: its record as running, the
// revision of that write, and the job's definition (or why there is none).
type claimed struct {
	fire   store.Fire
	rev    int64
	job    *jobspec.Job
	jobErr error
}

// claim takes a dispatched fire, planned → running, in one transaction
// that compares the record's revision and value with the dispatch's copy
// and reads the job's definition. It returns false when the fire is not
// this node's to run: another node, another attempt, or a record that
// changed since (claimed already, cancelled, moved). A dispatch without a
// copy, or whose copy is not the stored record, makes it go by the record
// read from etcd.
func (x *Executor) claim(ctx context.Context, d store.Dispatch) (claimed, bool, error) {
	key := x.keys.Fire(d.Fire)
	raw, rev := d.Record, d.Rev
	if len(raw) == 0 || rev == 0 {
		resp, err := x.etcd.Get(ctx, key)
		if err != nil {
			return claimed{}, false, fmt.Errorf("read fire: %w", err)
		}
		if len(resp.Kvs) == 0 {
			return claimed{}, false, nil
		}
		raw, rev = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	}
	for range 2 {
		f, data, ok, err := x.claimable(d, raw)
		if err != nil || !ok {
			return claimed{}, false, err
		}
		resp, err := x.etcd.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev), clientv3.Compare(clientv3.Value(key), "=", string(raw))).
			Then(clientv3.OpPut(key, string(data)), clientv3.OpGet(x.keys.Job(f.ID.Job))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return claimed{}, false, fmt.Errorf("claim: %w", err)
		}
		if resp.Succeeded {
			job, jobErr := decodeJob(f.ID.Job, resp.Responses[1].GetResponseRange())
			return claimed{fire: f, rev: resp.Header.Revision, job: job, jobErr: jobErr}, true, nil
		}
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 || kvs[0].ModRevision != rev {
			return claimed{}, false, nil // the record changed first: not ours to run
		}
		raw = kvs[0].Value // same revision, other bytes: go by the stored record
	}
	return claimed{}, false, nil
}

// claimable decodes a fire record (as dispatched, or as stored) and, if it
// is this node's planned attempt of the dispatched fire, returns it as
// claimed (running, started now) with its encoding.
func (x *Executor) claimable(d store.Dispatch, raw []byte) (store.Fire, []byte, bool, error) {
	var f store.Fire
	if err := json.Unmarshal(raw, &f); err != nil {
		return store.Fire{}, nil, false, fmt.Errorf("bad fire record: %w", err)
	}
	if f.ID != d.Fire || f.State != store.FirePlanned || f.Node != x.cfg.NodeID || f.Attempt != d.Attempt {
		return store.Fire{}, nil, false, nil
	}
	f.State, f.StartedAt, f.Reason = store.FireRunning, time.Now().UTC(), ""
	// The leader counts the attempt lost once no registration holds this
	// lease for longer than the fence (plus a margin): a host run is dead
	// by then, killed by its supervisor.
	f.Lease, f.FenceTimeout = x.lease.Load(), x.cfg.Fence
	data, err := json.Marshal(f)
	if err != nil {
		return store.Fire{}, nil, false, fmt.Errorf("encode fire: %w", err)
	}
	return f, data, true, nil
}

func decodeJob(name string, r *etcdserverpb.RangeResponse) (*jobspec.Job, error) {
	if r == nil || len(r.Kvs) == 0 {
		return nil, fmt.Errorf("job %s was deleted before it ran", name)
	}
	var j jobspec.Job
	if err := json.Unmarshal(r.Kvs[0].Value, &j); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", name, err)
	}
	return &j, nil
}
