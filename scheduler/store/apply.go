package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/jobspec"
)

// ApplyResult says what an apply changed, by job name.
type ApplyResult struct {
	Created   []string `json:"created"`
	Updated   []string `json:"updated"`
	Unchanged []string `json:"unchanged"`
	Deleted   []string `json:"deleted"`
}

// ErrConflict reports that the stored jobs changed while an apply was
// computed; nothing was written and the apply can be retried.
var ErrConflict = errors.New("store: jobs changed concurrently, nothing applied")

// Apply stores a validated job set in one etcd transaction: new and changed
// definitions are written, a state record is created for new jobs, and with
// prune the stored jobs missing from the set are deleted (with their state;
// their fire history stays). The transaction compares every definition it
// read, so a concurrent change makes it fail whole (ErrConflict). With
// dryRun nothing is written.
func Apply(ctx context.Context, cli *clientv3.Client, keys Keys, jobs []*jobspec.Job, prune, dryRun bool, now time.Time) (ApplyResult, error) {
	var res ApplyResult
	existing, err := cli.Get(ctx, keys.Jobs(), clientv3.WithPrefix())
	if err != nil {
		return res, fmt.Errorf("read jobs: %w", err)
	}
	stored := make(map[string]int64, len(existing.Kvs)) // name → mod revision
	values := make(map[string][]byte, len(existing.Kvs))
	for _, kv := range existing.Kvs {
		name := strings.TrimPrefix(string(kv.Key), keys.Jobs())
		stored[name] = kv.ModRevision
		values[name] = kv.Value
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	inSet := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		inSet[j.Name] = true
		data, err := json.Marshal(j)
		if err != nil {
			return res, fmt.Errorf("encode job %s: %w", j.Name, err)
		}
		key := keys.Job(j.Name)
		rev, exists := stored[j.Name]
		switch {
		case !exists:
			res.Created = append(res.Created, j.Name)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			state, _ := json.Marshal(JobState{AppliedAt: now.UTC()})
			stateKey := keys.State(j.Name)
			ops = append(ops, clientv3.OpPut(key, string(data)), clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(stateKey), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(stateKey, string(state))}, nil))
		case bytes.Equal(values[j.Name], data):
			res.Unchanged = append(res.Unchanged, j.Name)
		default:
			res.Updated = append(res.Updated, j.Name)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
			ops = append(ops, clientv3.OpPut(key, string(data)))
		}
	}
	if prune {
		for name, rev := range stored {
			if inSet[name] {
				continue
			}
			res.Deleted = append(res.Deleted, name)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(keys.Job(name)), "=", rev))
			ops = append(ops, clientv3.OpDelete(keys.Job(name)), clientv3.OpDelete(keys.State(name)))
		}
	}
	for _, list := range [][]string{res.Created, res.Updated, res.Unchanged, res.Deleted} {
		slices.Sort(list)
	}
	if dryRun || len(ops) == 0 {
		return res, nil
	}
	resp, err := cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply %d changes in one transaction: %w", len(ops), err)
	}
	if !resp.Succeeded {
		return ApplyResult{}, ErrConflict
	}
	return res, nil
}

// LoadJobs reads every stored job definition.
func LoadJobs(ctx context.Context, cli *clientv3.Client, keys Keys) ([]*jobspec.Job, error) {
	resp, err := cli.Get(ctx, keys.Jobs(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	jobs := make([]*jobspec.Job, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var j jobspec.Job
		if err := json.Unmarshal(kv.Value, &j); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		jobs = append(jobs, &j)
	}
	return jobs, nil
}
