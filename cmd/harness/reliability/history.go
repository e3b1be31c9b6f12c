package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/scheduler/store"
)

// ReadHistory replays every change to Aion's keys from etcd's first
// revision to its current one, oldest first. It needs an etcd that holds
// only Aion's keys and was never compacted, as the test clusters are.
func ReadHistory(ctx context.Context, cli *clientv3.Client, keys store.Keys) ([]*clientv3.Event, error) {
	now, err := cli.Get(ctx, keys.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return nil, fmt.Errorf("read current revision: %w", err)
	}
	last := now.Header.Revision
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var events []*clientv3.Event
	for resp := range cli.Watch(ctx, keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(1)) {
		if err := resp.Err(); err != nil {
			return nil, fmt.Errorf("replay history: %w", err)
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision > last {
				return events, nil
			}
			events = append(events, ev)
			if ev.Kv.ModRevision == last {
				return events, nil
			}
		}
	}
	return events, fmt.Errorf("replay history up to revision %d: %w", last, ctx.Err())
}

// HistoryReport is what the history of the keys shows about the protocol.
type HistoryReport struct {
	Events int
	// HighWaterBackwards lists each job state write that moved the
	// job's high-water mark back in time.
	HighWaterBackwards []string
	// NonLeaderFires lists fire records created by a scheduler that did
	// not hold the election key at that revision.
	NonLeaderFires []string
}

// Violations lists every finding, one per line.
func (h HistoryReport) Violations() []string {
	return append(append([]string(nil), h.HighWaterBackwards...), h.NonLeaderFires...)
}

// CheckHistory walks the history: the leader at each revision is the
// holder of the oldest live key under the election prefix (etcd's election
// rule), and every fire record must be created by the leader of its
// revision; each job's high-water mark must only move forward (a job
// deleted and applied again starts afresh).
func CheckHistory(keys store.Keys, events []*clientv3.Event) HistoryReport {
	h := HistoryReport{Events: len(events)}
	type candidate struct {
		id      string
		created int64
	}
	candidates := make(map[string]candidate) // election key → holder
	leader := func() string {
		var best candidate
		for _, c := range candidates {
			if best.created == 0 || c.created < best.created {
				best = c
			}
		}
		return best.id
	}
	highWater := make(map[string]time.Time)
	for _, ev := range events {
		key, rev := string(ev.Kv.Key), ev.Kv.ModRevision
		switch {
		case strings.HasPrefix(key, keys.Election()):
			if ev.Type == mvccpb.DELETE {
				delete(candidates, key)
			} else {
				candidates[key] = candidate{id: string(ev.Kv.Value), created: ev.Kv.CreateRevision}
			}
		case strings.HasPrefix(key, keys.States()):
			job := strings.TrimPrefix(key, keys.States())
			if ev.Type == mvccpb.DELETE {
				delete(highWater, job)
				continue
			}
			var st store.JobState
			if json.Unmarshal(ev.Kv.Value, &st) != nil {
				continue
			}
			if prev, ok := highWater[job]; ok && st.HighWater.Before(prev) {
				h.HighWaterBackwards = append(h.HighWaterBackwards, fmt.Sprintf("%s: high-water mark moved back from %s to %s at revision %d",
					job, prev.Format(time.RFC3339), st.HighWater.Format(time.RFC3339), rev))
			}
			highWater[job] = st.HighWater
		case strings.HasPrefix(key, keys.Fires()) && ev.IsCreate():
			var f store.Fire
			if json.Unmarshal(ev.Kv.Value, &f) != nil {
				continue
			}
			if l := leader(); f.PlannedBy != l {
				h.NonLeaderFires = append(h.NonLeaderFires, fmt.Sprintf("%s created by %q at revision %d while %q led", f.ID, f.PlannedBy, rev, l))
			}
		}
	}
	return h
}
