package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// compact keeps the newest HistoryKeep fire records of every job (by when
// they were planned) and deletes older ones, in fenced transactions that
// compare each record's revision: a record that changed meanwhile, a fire
// still open, or one whose effects are not recorded yet is never deleted.
// Only jobs over the limit are read (the leader counts records as it sees
// them), so a million jobs that rarely fire cost nothing here.
func (l *leader) compact(ctx context.Context) error {
	keep := l.s.cfg.HistoryKeep
	if keep == 0 {
		return nil
	}
	var over []string
	for name, n := range l.records {
		if _, ok := l.jobs[name]; ok && n > keep {
			over = append(over, name)
		}
	}
	slices.Sort(over)
	for _, name := range over {
		resp, err := l.s.etcd.Get(ctx, l.keys.JobFires(name), clientv3.WithPrefix())
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
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for _, r := range records[:max(len(records)-keep, 0)] {
			if !r.fire.State.Final() || !r.fire.Processed {
				continue
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.key), "=", r.rev))
			ops = append(ops, clientv3.OpDelete(r.key))
			if len(ops) == maxFiresPerTxn {
				if err := l.commitDeletes(ctx, cmps, ops); err != nil {
					return err
				}
				cmps, ops = nil, nil
			}
		}
		if len(ops) > 0 {
			if err := l.commitDeletes(ctx, cmps, ops); err != nil {
				return err
			}
		}
		l.log.Debug("history compacted", zap.String("job", name), zap.Int("records", len(records)), zap.Int("keep", keep))
	}
	return nil
}

func (l *leader) commitDeletes(ctx context.Context, cmps []clientv3.Cmp, ops []clientv3.Op) error {
	_, err := l.commit(ctx, append([]clientv3.Cmp{l.fence}, cmps...), ops)
	return err // a record that changed is left for the next round
}
