package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// compactor keeps each job's fire history to the newest HistoryKeep
// records. It counts the records of each job as the term sees them
// created and deleted, so that it reads only jobs over their limit: a
// million jobs that rarely fire cost nothing here.
type compactor struct {
	keep    int // records kept per job; 0 keeps all
	etcd    *clientv3.Client
	keys    store.Keys
	log     *zap.Logger
	jobs    *jobTable
	fence   *fence
	records map[string]int // fire records in etcd per job
}

// count adds delta to the records of the job of a fire record's key.
func (c *compactor) count(kv *mvccpb.KeyValue, delta int) {
	id, ok := c.keys.FireIDFromKey(string(kv.Key))
	if !ok {
		return
	}
	if n := c.records[id.Job] + delta; n > 0 {
		c.records[id.Job] = n
	} else {
		delete(c.records, id.Job)
	}
}

// compact deletes, for every job over the limit, its oldest final and
// processed records (by when they were planned), in fenced transactions
// that compare each record's revision: a record that changed meanwhile, a
// fire still open, or one whose effects are not recorded yet is never
// deleted.
func (c *compactor) compact(ctx context.Context) error {
	if c.keep == 0 {
		return nil
	}
	var over []string
	for name, n := range c.records {
		if c.jobs.get(name) != nil && n > c.keep {
			over = append(over, name)
		}
	}
	slices.Sort(over)
	for _, name := range over {
		if err := c.compactJob(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (c *compactor) compactJob(ctx context.Context, name string) error {
	resp, err := c.etcd.Get(ctx, c.keys.JobFires(name), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read fires of %s: %w", name, err)
	}
	type record struct {
		fire store.Fire
		key  string
		rev  int64
	}
	records := make([]record, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var f store.Fire
		if json.Unmarshal(kv.Value, &f) == nil {
			records = append(records, record{f, string(kv.Key), kv.ModRevision})
		}
	}
	slices.SortFunc(records, func(a, b record) int { return a.fire.PlannedAt.Compare(b.fire.PlannedAt) })
	var t txn
	for _, r := range records[:max(len(records)-c.keep, 0)] {
		if !r.fire.State.Final() || !r.fire.Processed {
			continue
		}
		t.remove(r.key, r.rev)
		if t.size() == maxFiresPerTxn {
			if err := c.commit(ctx, &t); err != nil {
				return err
			}
			t = txn{}
		}
	}
	if !t.empty() {
		if err := c.commit(ctx, &t); err != nil {
			return err
		}
	}
	c.log.Debug("history compacted", zap.String("job", name), zap.Int("records", len(records)), zap.Int("keep", c.keep))
	return nil
}

func (c *compactor) commit(ctx context.Context, t *txn) error {
	_, err := c.fence.commit(ctx, t)
	if conflicted(err) {
		return nil // a record that changed is left for the next round
	}
	return err
}
