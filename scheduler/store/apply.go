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

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
// computed; the apply can be retried. Nothing was written, unless the set
// was too large for one transaction (then the error says how much was).
var ErrConflict = errors.New("store: jobs changed concurrently, nothing applied")

// chunkChanges is how many job changes go in one transaction when a set is
// too large for a single one: at most three operations each (definition,
// state, and the state's guard), under etcd's default limit of 128.
const chunkChanges = 40

// chunkBytes bounds the values written by one transaction of a chunked
// apply, under etcd's default --max-request-bytes of 1.5 MiB.
const chunkBytes = 1 << 20

// change is the write of one job: a compare on what was read, its ops, and
// how many bytes they write.
type change struct {
	cmp  clientv3.Cmp
	ops  []clientv3.Op
	size int
}

// Apply stores a validated job set: new and changed definitions are
// written, a state record is created for new jobs, and with prune the
// stored jobs missing from the set are deleted (with their state; their
// fire history stays). Every write compares the definition it read, so a
// concurrent change makes it fail (ErrConflict). With dryRun nothing is
// written.
//
// The set is written in one transaction, all or nothing. When etcd refuses
// it as too large (more operations than its --max-txn-ops, or bytes than
// its --max-request-bytes), it is written in transactions of chunkChanges
// jobs instead: then a conflict stops it midway, the error says how many
// changes were written, and applying again finishes the rest.
func Apply(ctx context.Context, cli *clientv3.Client, keys Keys, jobs []*jobspec.Job, prune, dryRun bool, now time.Time) (ApplyResult, error) {
	stored, err := readStoredJobs(ctx, cli, keys)
	if err != nil {
		return ApplyResult{}, err
	}
	res, changes, err := planApply(keys, stored, jobs, prune, now)
	if err != nil {
		return res, err
	}
	if dryRun || len(changes) == 0 {
		return res, nil
	}
	ok, err := commitChanges(ctx, cli, changes)
	if tooLarge(err) {
		return res, commitChunks(ctx, cli, changes)
	}
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply %d changes in one transaction: %w", len(changes), err)
	}
	if !ok {
		return ApplyResult{}, ErrConflict
	}
	return res, nil
}

// storedJob is a job definition as read before an apply.
type storedJob struct {
	rev   int64 // its mod revision, which the apply's write compares
	value []byte
}

// readStoredJobs reads every stored job definition, by job name.
func readStoredJobs(ctx context.Context, cli *clientv3.Client, keys Keys) (map[string]storedJob, error) {
	existing, err := cli.Get(ctx, keys.Jobs(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	stored := make(map[string]storedJob, len(existing.Kvs))
	for _, kv := range existing.Kvs {
		stored[strings.TrimPrefix(string(kv.Key), keys.Jobs())] = storedJob{rev: kv.ModRevision, value: kv.Value}
	}
	return stored, nil
}

// planApply compares the set jobs with the stored ones and returns what
// applying it changes (its lists sorted) and the writes that do it: a new
// job is created with its state, a changed one updated, and with prune a
// stored job missing from the set deleted.
func planApply(keys Keys, stored map[string]storedJob, jobs []*jobspec.Job, prune bool, now time.Time) (ApplyResult, []change, error) {
	var res ApplyResult
	var changes []change
	inSet := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		inSet[j.Name] = true
		data, err := json.Marshal(j)
		if err != nil {
			return res, nil, fmt.Errorf("encode job %s: %w", j.Name, err)
		}
		old, exists := stored[j.Name]
		switch {
		case !exists:
			c, err := createChange(keys, j.Name, data, now)
			if err != nil {
				return res, nil, err
			}
			res.Created = append(res.Created, j.Name)
			changes = append(changes, c)
		case bytes.Equal(old.value, data):
			res.Unchanged = append(res.Unchanged, j.Name)
		default:
			res.Updated = append(res.Updated, j.Name)
			changes = append(changes, updateChange(keys, j.Name, data, old.rev))
		}
	}
	if prune {
		for name, old := range stored {
			if !inSet[name] {
				res.Deleted = append(res.Deleted, name)
				changes = append(changes, deleteChange(keys, name, old.rev))
			}
		}
	}
	for _, list := range [][]string{res.Created, res.Updated, res.Unchanged, res.Deleted} {
		slices.Sort(list)
	}
	return res, changes, nil
}

// createChange writes a new job's definition, if the job still does not
// exist, and its first state (anchored at now), if it has none.
func createChange(keys Keys, name string, data []byte, now time.Time) (change, error) {
	state, err := json.Marshal(JobState{AppliedAt: now.UTC()})
	if err != nil {
		return change{}, fmt.Errorf("encode the state of new job %s: %w", name, err)
	}
	key, stateKey := keys.Job(name), keys.State(name)
	return change{cmp: clientv3.Compare(clientv3.CreateRevision(key), "=", 0), size: len(data) + len(state), ops: []clientv3.Op{
		clientv3.OpPut(key, string(data)),
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(stateKey), "=", 0)},
			[]clientv3.Op{clientv3.OpPut(stateKey, string(state))}, nil),
	}}, nil
}

// updateChange writes a changed job's definition, if it is still the one
// read at rev.
func updateChange(keys Keys, name string, data []byte, rev int64) change {
	key := keys.Job(name)
	return change{cmp: clientv3.Compare(clientv3.ModRevision(key), "=", rev), size: len(data),
		ops: []clientv3.Op{clientv3.OpPut(key, string(data))}}
}

// deleteChange deletes a job and its state, if its definition is still
// the one read at rev.
func deleteChange(keys Keys, name string, rev int64) change {
	return change{cmp: clientv3.Compare(clientv3.ModRevision(keys.Job(name)), "=", rev),
		ops: []clientv3.Op{clientv3.OpDelete(keys.Job(name)), clientv3.OpDelete(keys.State(name))}}
}

func commitChanges(ctx context.Context, cli *clientv3.Client, changes []change) (bool, error) {
	cmps := make([]clientv3.Cmp, 0, len(changes))
	var ops []clientv3.Op
	for _, c := range changes {
		cmps = append(cmps, c.cmp)
		ops = append(ops, c.ops...)
	}
	resp, err := cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// commitChunks writes changes in transactions of at most chunkChanges
// jobs and chunkBytes.
func commitChunks(ctx context.Context, cli *clientv3.Client, changes []change) error {
	written := 0
	for written < len(changes) {
		end, size := written, 0
		for end < len(changes) && end-written < chunkChanges && (end == written || size+changes[end].size <= chunkBytes) {
			size += changes[end].size
			end++
		}
		ok, err := commitChanges(ctx, cli, changes[written:end])
		if err == nil && !ok {
			err = ErrConflict
		}
		if err != nil {
			return fmt.Errorf("the set is too large for one etcd transaction, so it is written in parts: %d of %d changes were written, then: %w; apply again to finish",
				written, len(changes), err)
		}
		written = end
	}
	return nil
}

// tooLarge reports whether etcd (or the gRPC client) refused a transaction
// for its size.
func tooLarge(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
		return true
	}
	return status.Code(err) == codes.ResourceExhausted
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
