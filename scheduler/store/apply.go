package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	// Kept lists, with prune, the stored jobs in none of the files that
	// were not deleted because they belong to another apply set or none.
	Kept []string `json:"kept"`
	// Owners gives the apply set ("" for none) of each job of the result
	// that is recorded in another set than the applied one.
	Owners map[string]string `json:"owners,omitempty"`
}

// ApplyOptions say which apply set the jobs belong to and what happens to
// the stored jobs missing from it.
type ApplyOptions struct {
	// Set names the apply set; the applied jobs are recorded as of it.
	Set string
	// Implicit says Set was not named but derived (from paths): a job
	// recorded in another set then stays in it, updated, and is no conflict.
	Implicit bool
	// Prune deletes the stored jobs of Set that are not applied.
	Prune bool
	// PruneAll makes Prune delete every stored job not applied, whatever
	// its set (and jobs of no set).
	PruneAll bool
	// ForceConflicts moves jobs recorded in another set into Set instead
	// of refusing the apply.
	ForceConflicts bool
	// DryRun computes the result and writes nothing.
	DryRun bool
}

// MaxSetName bounds the length of an apply set's name.
const MaxSetName = 1024

// ApplySets is the prefix of the apply set records: applysets/<job> holds
// the name of the set that applied the job.
func (k Keys) ApplySets() string { return k.Prefix + "applysets/" }

// ApplySet is the key of the apply set record of a job.
func (k Keys) ApplySet(job string) string { return k.ApplySets() + job }

// SetConflictError refuses an apply that would move jobs recorded in other
// apply sets into its own. Nothing was written.
type SetConflictError struct {
	Set    string
	Owners map[string]string // job -> the set it is recorded in
}

func (e *SetConflictError) Error() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(e.Owners)) {
		parts = append(parts, fmt.Sprintf("%s (apply set %q)", name, e.Owners[name]))
	}
	return fmt.Sprintf("%s: applied by another apply set, nothing applied: apply them with their set (--set NAME), or move them into set %q with --force-conflicts",
		strings.Join(parts, ", "), e.Set)
}

// ParentError refuses a prune that would delete jobs other stored jobs
// list as parents. Nothing was written.
type ParentError struct {
	Children map[string][]string // deleted job -> the stored jobs that need it
}

func (e *ParentError) Error() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(e.Children)) {
		parts = append(parts, fmt.Sprintf("%s is a parent of %s", name, strings.Join(e.Children[name], ", ")))
	}
	return fmt.Sprintf("prune would delete jobs that stored jobs need, nothing applied: %s; apply their children too, or change their parents first", strings.Join(parts, "; "))
}

// ErrConflict reports that the stored jobs changed while an apply was
// computed; the apply can be retried. Nothing was written, unless the set
// was too large for one transaction (then the error says how much was).
var ErrConflict = errors.New("store: jobs changed concurrently, nothing applied")

// chunkChanges is how many job changes go in one transaction when a set is
// too large for a single one: at most three operations (definition, apply
// set, and the state in its own guarded transaction) and two compares
// each, under etcd's default limit of 128.
const chunkChanges = 30

// chunkBytes bounds the values written by one transaction of a chunked
// apply, under etcd's default --max-request-bytes of 1.5 MiB.
const chunkBytes = 1 << 20

// change is the write of one job: a compare on what was read, its ops, and
// how many bytes they write.
type change struct {
	cmp    clientv3.Cmp
	guards []clientv3.Cmp // more compares, if any
	ops    []clientv3.Op
	size   int
}

// Apply stores a validated job set as apply set opt.Set: new and changed
// definitions are written with their set, a state record is created for
// new jobs, and with prune the stored jobs of the set missing from it are
// deleted (with their state; their fire history stays); opt.PruneAll
// deletes the missing jobs of every set. A job recorded in another set is
// refused (*SetConflictError) unless opt.ForceConflicts moves it, or
// opt.Implicit keeps it in its set; a job of no set (stored before apply
// sets) joins the set. The parents of the jobs may be
// stored jobs; a parent or cycle problem is a jobspec.ErrorList, and a
// prune that would delete a stored job's parent a *ParentError. Every
// write compares what it read, so a concurrent change makes it fail
// (ErrConflict). With opt.DryRun nothing is written.
//
// The set is written in one transaction, all or nothing. When etcd refuses
// it as too large (more operations than its --max-txn-ops, or bytes than
// its --max-request-bytes), it is written in transactions of chunkChanges
// jobs instead: then a conflict stops it midway, the error says how many
// changes were written, and applying again finishes the rest.
func Apply(ctx context.Context, cli *clientv3.Client, keys Keys, jobs []*jobspec.Job, opt ApplyOptions, now time.Time) (ApplyResult, error) {
	if err := CheckSetName(opt.Set); err != nil {
		return ApplyResult{}, err
	}
	opt.Prune = opt.Prune || opt.PruneAll
	stored, rev, err := readStoredJobs(ctx, cli, keys)
	if err != nil {
		return ApplyResult{}, err
	}
	res, changes, err := planApply(keys, stored, jobs, opt, now)
	if err != nil {
		return res, err
	}
	if err := checkGraph(stored, jobs, res.Deleted); err != nil {
		return res, err
	}
	if opt.DryRun || len(changes) == 0 {
		return res, nil
	}
	// Parents and children that this apply does not write are checked
	// above as read: no job may change meanwhile.
	guard := graphGuard(keys, stored, jobs, rev)
	ok, err := commitChanges(ctx, cli, append([]change{guard}, changes...))
	if tooLarge(err) {
		// The guard goes with the first part: nothing is written if the
		// jobs changed since they were read.
		return res, commitChunks(ctx, cli, append([]change{guard}, changes...))
	}
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply %d changes in one transaction: %w", len(changes), err)
	}
	if !ok {
		return ApplyResult{}, ErrConflict
	}
	return res, nil
}

// graphGuard is the compare that keeps the graph checked against the jobs
// read at rev: no job was created or changed since (a compare on the
// prefix), and no stored parent of an applied job was deleted (a compare
// on each, as a deleted key has no revision the prefix compare could see).
func graphGuard(keys Keys, stored map[string]storedJob, jobs []*jobspec.Job, rev int64) change {
	g := change{cmp: clientv3.Compare(clientv3.ModRevision(keys.Jobs()), "<", rev+1).WithPrefix()}
	applied := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		applied[j.Name] = true
	}
	seen := make(map[string]bool)
	for _, j := range jobs {
		for _, p := range j.Parents {
			if s, ok := stored[p]; ok && !applied[p] && !seen[p] {
				seen[p] = true
				g.guards = append(g.guards, clientv3.Compare(clientv3.ModRevision(keys.Job(p)), "=", s.rev))
			}
		}
	}
	return g
}

// CheckSetName says what is wrong with an apply set's name, if anything.
func CheckSetName(name string) error {
	switch {
	case name == "":
		return errors.New("set: empty: name the apply set")
	case len(name) > MaxSetName:
		return fmt.Errorf("set: longer than %d bytes", MaxSetName)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("set: %q: want printable UTF-8", name)
	}
	return nil
}

// storedJob is a job definition as read before an apply, with its set.
type storedJob struct {
	rev    int64 // its mod revision, which the apply's write compares
	value  []byte
	set    string // "" for a job stored before apply sets
	setRev int64  // the mod revision of its set record (0: none)
}

// readStoredJobs reads every stored job definition with its apply set, by
// job name, and the revision they were read at.
func readStoredJobs(ctx context.Context, cli *clientv3.Client, keys Keys) (map[string]storedJob, int64, error) {
	resp, err := cli.Txn(ctx).Then(clientv3.OpGet(keys.Jobs(), clientv3.WithPrefix()), clientv3.OpGet(keys.ApplySets(), clientv3.WithPrefix())).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("read jobs: %w", err)
	}
	jobKvs, setKvs := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	stored := make(map[string]storedJob, len(jobKvs))
	for _, kv := range jobKvs {
		stored[strings.TrimPrefix(string(kv.Key), keys.Jobs())] = storedJob{rev: kv.ModRevision, value: kv.Value}
	}
	// A set record outlives a job deleted by hand; only those of stored
	// jobs count.
	for _, kv := range setKvs {
		name := strings.TrimPrefix(string(kv.Key), keys.ApplySets())
		if sj, ok := stored[name]; ok {
			sj.set, sj.setRev = string(kv.Value), kv.ModRevision
			stored[name] = sj
		}
	}
	return stored, resp.Header.Revision, nil
}

// planApply compares the set jobs with the stored ones and returns what
// applying it changes (its lists sorted) and the writes that do it: a new
// job is created with its state and set, a changed one updated, one of no
// set (or, forced, of another) moved into the set, and with prune a stored
// job missing from the set deleted.
func planApply(keys Keys, stored map[string]storedJob, jobs []*jobspec.Job, opt ApplyOptions, now time.Time) (ApplyResult, []change, error) {
	var res ApplyResult
	var changes []change
	conflicts := make(map[string]string)
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
			c, err := createChange(keys, j.Name, data, opt.Set, now)
			if err != nil {
				return res, nil, err
			}
			res.Created = append(res.Created, j.Name)
			changes = append(changes, c)
		case old.set != "" && old.set != opt.Set && !opt.ForceConflicts && !opt.Implicit:
			conflicts[j.Name] = old.set
		default:
			set := opt.Set
			if old.set != "" && old.set != opt.Set && !opt.ForceConflicts {
				set = old.set // implicit: it stays in its set
				res.owner(j.Name, old.set)
			}
			if bytes.Equal(old.value, data) && old.set == set {
				res.Unchanged = append(res.Unchanged, j.Name)
				continue
			}
			res.Updated = append(res.Updated, j.Name)
			changes = append(changes, updateChange(keys, j.Name, data, old, set))
		}
	}
	if len(conflicts) > 0 {
		return ApplyResult{}, nil, &SetConflictError{Set: opt.Set, Owners: conflicts}
	}
	if opt.Prune {
		changes = append(changes, planPrune(keys, stored, inSet, opt, &res)...)
	}
	for _, list := range [][]string{res.Created, res.Updated, res.Unchanged, res.Deleted, res.Kept} {
		slices.Sort(list)
	}
	return res, changes, nil
}

// planPrune deletes the stored jobs missing from the set that prune may
// delete (of the set, or any with PruneAll) and lists the others as kept.
func planPrune(keys Keys, stored map[string]storedJob, inSet map[string]bool, opt ApplyOptions, res *ApplyResult) []change {
	var changes []change
	for name, old := range stored {
		if inSet[name] {
			continue
		}
		if old.set != opt.Set {
			res.owner(name, old.set)
		}
		if old.set != opt.Set && !opt.PruneAll {
			res.Kept = append(res.Kept, name)
			continue
		}
		res.Deleted = append(res.Deleted, name)
		changes = append(changes, deleteChange(keys, name, old))
	}
	return changes
}

// owner records the set of a job of the result that is not the applied set.
func (r *ApplyResult) owner(name, set string) {
	if r.Owners == nil {
		r.Owners = make(map[string]string)
	}
	r.Owners[name] = set
}

// CheckParents checks the parents of jobs, names unique and cycles as
// jobspec.CheckSetWith does, against the jobs stored now: for reporting
// every problem of a set that has others too (Apply checks its own set).
func CheckParents(ctx context.Context, cli *clientv3.Client, keys Keys, jobs []*jobspec.Job) (jobspec.ErrorList, error) {
	stored, _, err := readStoredJobs(ctx, cli, keys)
	if err != nil {
		return nil, err
	}
	staying, err := stayingParents(stored, jobs, nil)
	if err != nil {
		return nil, err
	}
	return jobspec.CheckSetWith(jobs, staying), nil
}

// stayingParents maps each stored job that neither jobs replace nor
// deleted removes to its parents.
func stayingParents(stored map[string]storedJob, jobs []*jobspec.Job, deleted []string) (map[string][]string, error) {
	gone := make(map[string]bool, len(jobs)+len(deleted))
	for _, j := range jobs {
		gone[j.Name] = true // replaced by the applied definition
	}
	for _, name := range deleted {
		gone[name] = true
	}
	staying := make(map[string][]string)
	for name, sj := range stored {
		if gone[name] {
			continue
		}
		var def struct {
			Parents []string `json:"parents"`
		}
		if err := json.Unmarshal(sj.value, &def); err != nil {
			return nil, fmt.Errorf("decode stored job %s: %w", name, err)
		}
		staying[name] = def.Parents
	}
	return staying, nil
}

// checkGraph checks the parents of the applied jobs against the jobs that
// stay stored, and that no stored job that stays loses a parent to prune.
func checkGraph(stored map[string]storedJob, jobs []*jobspec.Job, deleted []string) error {
	staying, err := stayingParents(stored, jobs, deleted)
	if err != nil {
		return err
	}
	if problems := jobspec.CheckSetWith(jobs, staying); len(problems) > 0 {
		return problems
	}
	needed := make(map[string][]string)
	for _, name := range deleted {
		for _, child := range slices.Sorted(maps.Keys(staying)) {
			if slices.Contains(staying[child], name) {
				needed[name] = append(needed[name], child)
			}
		}
	}
	if len(needed) > 0 {
		return &ParentError{Children: needed}
	}
	return nil
}

// createChange writes a new job's definition and set, if the job still
// does not exist, and its first state (anchored at now), if it has none.
func createChange(keys Keys, name string, data []byte, set string, now time.Time) (change, error) {
	state, err := json.Marshal(JobState{AppliedAt: now.UTC()})
	if err != nil {
		return change{}, fmt.Errorf("encode the state of new job %s: %w", name, err)
	}
	key, stateKey := keys.Job(name), keys.State(name)
	return change{cmp: clientv3.Compare(clientv3.CreateRevision(key), "=", 0), size: len(data) + len(state) + len(set), ops: []clientv3.Op{
		clientv3.OpPut(key, string(data)),
		clientv3.OpPut(keys.ApplySet(name), set),
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(stateKey), "=", 0)},
			[]clientv3.Op{clientv3.OpPut(stateKey, string(state))}, nil),
	}}, nil
}

// updateChange writes a changed job's definition and its set, if both are
// still as read.
func updateChange(keys Keys, name string, data []byte, old storedJob, set string) change {
	key := keys.Job(name)
	c := change{cmp: clientv3.Compare(clientv3.ModRevision(key), "=", old.rev), size: len(data) + len(set),
		ops: []clientv3.Op{clientv3.OpPut(key, string(data))}}
	if old.set != set {
		c.ops = append(c.ops, clientv3.OpPut(keys.ApplySet(name), set))
		c.guards = []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(keys.ApplySet(name)), "=", old.setRev)}
	}
	return c
}

// deleteChange deletes a job, its state and its set record, if its
// definition and set are still as read.
func deleteChange(keys Keys, name string, old storedJob) change {
	return change{cmp: clientv3.Compare(clientv3.ModRevision(keys.Job(name)), "=", old.rev),
		guards: []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(keys.ApplySet(name)), "=", old.setRev)},
		ops:    []clientv3.Op{clientv3.OpDelete(keys.Job(name)), clientv3.OpDelete(keys.State(name)), clientv3.OpDelete(keys.ApplySet(name))}}
}

func commitChanges(ctx context.Context, cli *clientv3.Client, changes []change) (bool, error) {
	cmps := make([]clientv3.Cmp, 0, len(changes))
	var ops []clientv3.Op
	for _, c := range changes {
		cmps = append(cmps, c.cmp)
		cmps = append(cmps, c.guards...)
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
