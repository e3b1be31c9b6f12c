package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// apply parses and checks every file as `aion validate` does and, only if
// there is no problem at all, stores the set with store.Apply.
func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	prune, err := boolParam(r, "prune")
	if err != nil {
		return err
	}
	dryRun, err := boolParam(r, "dry_run")
	if err != nil {
		return err
	}
	var req ApplyRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Files) == 0 {
		return errorf(http.StatusBadRequest, "no files: send at least one job file")
	}
	var jobs []*jobspec.Job
	var problems jobspec.ErrorList
	for i, f := range req.Files {
		if f.Name == "" {
			return errorf(http.StatusBadRequest, "files[%d]: empty name: send the path the file was read from", i)
		}
		if len(f.Content) > jobspec.MaxFileSize {
			problems = append(problems, &jobspec.Error{File: f.Name, Msg: fmt.Sprintf("file larger than %d bytes", jobspec.MaxFileSize)})
			continue
		}
		parsed, errs := jobspec.Parse(f.Name, []byte(f.Content))
		jobs = append(jobs, parsed...)
		problems = append(problems, errs...)
	}
	problems = append(problems, jobspec.CheckSet(jobs)...)
	if len(problems) > 0 {
		// The order jobspec.Load reports in: by file, line and column.
		slices.SortStableFunc(problems, func(a, b *jobspec.Error) int {
			return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
		})
		// A few megabytes of bad YAML can hold a million problems; the
		// answer lists the first maxProblems.
		lines := make([]string, 0, min(len(problems), maxProblems+1))
		for _, p := range problems[:min(len(problems), maxProblems)] {
			lines = append(lines, p.Error())
		}
		if len(problems) > maxProblems {
			lines = append(lines, fmt.Sprintf("... and %d more", len(problems)-maxProblems))
		}
		return &httpError{status: http.StatusBadRequest, msg: problemCount(len(problems)) + " in the job files, nothing applied", problems: lines}
	}
	if len(jobs) == 0 {
		return errorf(http.StatusBadRequest, "the files define no jobs, nothing applied")
	}
	slices.SortFunc(jobs, func(a, b *jobspec.Job) int { return strings.Compare(a.Name, b.Name) })
	ctx, cancel := etcdContext(r)
	defer cancel()
	res, err := store.Apply(ctx, s.etcd, s.keys, jobs, prune, dryRun, s.now())
	if errors.Is(err, store.ErrConflict) {
		return errorf(http.StatusConflict, "%v; apply again", err)
	}
	if etcdRefusedSize(err) != nil {
		// store.Apply writes a set too large for one transaction in parts;
		// its error says how much was written when a part was refused.
		return errorf(http.StatusRequestEntityTooLarge, "applying %d jobs: %v", len(jobs), err)
	}
	if err != nil {
		return fmt.Errorf("apply %d jobs: %w", len(jobs), err)
	}
	for _, list := range []*[]string{&res.Created, &res.Updated, &res.Unchanged, &res.Deleted} {
		if *list == nil {
			*list = []string{}
		}
	}
	if !dryRun {
		s.log.Info("jobs applied", zap.Strings("created", res.Created), zap.Strings("updated", res.Updated),
			zap.Strings("deleted", res.Deleted), zap.Int("unchanged", len(res.Unchanged)))
	}
	writeJSON(w, http.StatusOK, ApplyResponse{ApplyResult: res, DryRun: dryRun, Prune: prune})
	return nil
}

// maxProblems bounds the problems an answer lists.
const maxProblems = 1000

func problemCount(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

// listJobs reads every definition and state at one revision.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := etcdContext(r)
	defer cancel()
	resp, err := s.etcd.Txn(ctx).Then(
		clientv3.OpGet(s.keys.Jobs(), clientv3.WithPrefix()),
		clientv3.OpGet(s.keys.States(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return fmt.Errorf("read jobs: %w", err)
	}
	states := make(map[string]store.JobState)
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.keys.States())
		var st store.JobState
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			s.log.Warn("bad job state in etcd", zap.String("key", string(kv.Key)), zap.Error(err))
			continue
		}
		states[name] = st
	}
	now := s.now()
	// Jobs share their zones and often their schedules: parse each once.
	schedules := jobspec.NewScheduleCache(10_000)
	list := JobList{Jobs: []JobSummary{}}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		j, err := decodeJob(kv)
		if err != nil {
			s.log.Warn("bad job definition in etcd", zap.Error(err))
			continue
		}
		st := states[j.Name]
		sum := JobSummary{
			Name: j.Name, Schedule: runsText(j), Parents: j.Parents, Timezone: j.Timezone, Disabled: j.Disabled,
			LastFire: st.LastFire, LastResult: st.LastResult, LastSuccess: st.LastSuccess,
		}
		if !j.Disabled {
			if sched, from := s.schedule(schedules, j, st, now); sched != nil {
				if next := sched.Next(from); !next.IsZero() {
					sum.Next = next.In(schedules.Location(j))
				}
			}
		}
		list.Jobs = append(list.Jobs, sum)
	}
	slices.SortFunc(list.Jobs, func(a, b JobSummary) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, list)
	return nil
}

// runsText says when a job runs: its schedule, "manual" or "after a, b".
func runsText(j *jobspec.Job) string {
	switch {
	case len(j.Parents) > 0:
		return "after " + strings.Join(j.Parents, ", ")
	case j.IsManual():
		return jobspec.Manual
	default:
		return j.Schedule
	}
}

// schedule returns the job's schedule (nil for manual and dependent jobs)
// and the time its next run follows: the latest of the high-water mark, the
// time the job was applied, and now.
func (s *Server) schedule(schedules *jobspec.ScheduleCache, j *jobspec.Job, st store.JobState, now time.Time) (jobspec.Schedule, time.Time) {
	sched, err := schedules.Schedule(j, st.AppliedAt)
	if err != nil {
		s.log.Warn("bad schedule in etcd", zap.String("job", j.Name), zap.Error(err))
		return nil, time.Time{}
	}
	if sched == nil {
		return nil, time.Time{}
	}
	from := now
	for _, t := range []time.Time{st.HighWater, st.AppliedAt} {
		if t.After(from) {
			from = t
		}
	}
	return sched, from
}

func decodeJob(kv *mvccpb.KeyValue) (*jobspec.Job, error) {
	var j jobspec.Job
	if err := json.Unmarshal(kv.Value, &j); err != nil {
		return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	return &j, nil
}

// readJob reads a job's definition and state at one revision; the
// definition's key-value is returned for compares. It is a 404 when the
// job does not exist.
func (s *Server) readJob(ctx context.Context, name string) (*jobspec.Job, *mvccpb.KeyValue, store.JobState, error) {
	var st store.JobState
	resp, err := s.etcd.Txn(ctx).Then(clientv3.OpGet(s.keys.Job(name)), clientv3.OpGet(s.keys.State(name))).Commit()
	if err != nil {
		return nil, nil, st, fmt.Errorf("read job %s: %w", name, err)
	}
	jobKvs := resp.Responses[0].GetResponseRange().Kvs
	if len(jobKvs) == 0 {
		return nil, nil, st, errorf(http.StatusNotFound, "no job named %q", name)
	}
	j, err := decodeJob(jobKvs[0])
	if err != nil {
		return nil, nil, st, err
	}
	if stateKvs := resp.Responses[1].GetResponseRange().Kvs; len(stateKvs) > 0 {
		if err := json.Unmarshal(stateKvs[0].Value, &st); err != nil {
			return nil, nil, st, fmt.Errorf("decode state of %s: %w", name, err)
		}
	}
	return j, jobKvs[0], st, nil
}

// nextRunCount is how many coming times a job's detail shows.
const nextRunCount = 5

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	j, _, st, err := s.readJob(ctx, name)
	if err != nil {
		return err
	}
	fires, err := s.recentFires(ctx, name, DefaultFireLimit)
	if err != nil {
		return err
	}
	detail := JobDetail{Job: j, State: st, Next: []NextRun{}, Fires: fires}
	if sched, t := s.schedule(jobspec.NewScheduleCache(1), j, st, s.now()); sched != nil {
		loc := j.Location()
		for range nextRunCount {
			occ, ok := jobspec.NextOccurrence(sched, t)
			if !ok {
				break
			}
			detail.Next = append(detail.Next, NextRun{
				Time: occ.Time.In(loc), Wall: occ.Wall.Format("2006-01-02T15:04:05"),
				Shift: shiftName(occ.Shift), Note: occ.Shift.String(),
			})
			t = occ.Time
		}
	}
	writeJSON(w, http.StatusOK, detail)
	return nil
}

func shiftName(s jobspec.Shift) string {
	switch s {
	case jobspec.ShiftedByGap:
		return "gap"
	case jobspec.FirstOfRepeated:
		return "repeated-first"
	case jobspec.SecondOfRepeated:
		return "repeated-second"
	default:
		return ""
	}
}

// setDisabled writes the definition back with Disabled changed, compared on
// the key's mod revision. The next `aion apply` of the job's file sets it
// to what the file says again.
func (s *Server) setDisabled(w http.ResponseWriter, r *http.Request, disabled bool) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	j, kv, _, err := s.readJob(ctx, name)
	if err != nil {
		return err
	}
	res := EnableResponse{Job: name, Disabled: disabled}
	if j.Disabled == disabled {
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	j.Disabled = disabled
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", name, err)
	}
	key := s.keys.Job(name)
	resp, err := s.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return fmt.Errorf("write job %s: %w", name, err)
	}
	if !resp.Succeeded {
		return errorf(http.StatusConflict, "job %s changed (or was deleted) while being updated; try again", name)
	}
	res.Changed = true
	s.log.Info("job updated", zap.String("job", name), zap.Bool("disabled", disabled))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// deleteJob deletes a job's definition and state in one transaction that
// fails if any job definition changed since they were read, so a child
// applied meanwhile cannot be left with a missing parent. Its fire history
// stays.
func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	cascade, err := boolParam(r, "cascade")
	if err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	resp, err := s.etcd.Get(ctx, s.keys.Jobs(), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read jobs: %w", err)
	}
	var target *mvccpb.KeyValue
	childrenOf := make(map[string][]string)
	for _, kv := range resp.Kvs {
		j, err := decodeJob(kv)
		if err != nil {
			return err
		}
		if j.Name == name {
			target = kv
		}
		for _, p := range j.Parents {
			childrenOf[p] = append(childrenOf[p], j.Name)
		}
	}
	if target == nil {
		return errorf(http.StatusNotFound, "no job named %q", name)
	}
	children := childrenOf[name]
	if len(children) > 0 && !cascade {
		var problems []string
		for _, c := range children {
			problems = append(problems, fmt.Sprintf("job %s lists %s in its parents", c, name))
		}
		return &httpError{
			status:   http.StatusConflict,
			msg:      fmt.Sprintf("job %s is a parent of %s: delete them too (--cascade) or change their parents first", name, strings.Join(children, ", ")),
			problems: problems,
		}
	}
	// With cascade, every descendant goes too, in the same transaction.
	deleted := []string{name}
	for i := 0; i < len(deleted); i++ {
		for _, c := range childrenOf[deleted[i]] {
			if !slices.Contains(deleted, c) {
				deleted = append(deleted, c)
			}
		}
	}
	ops := make([]clientv3.Op, 0, 3*len(deleted))
	for _, d := range deleted {
		ops = append(ops, clientv3.OpDelete(s.keys.Job(d)), clientv3.OpDelete(s.keys.State(d)),
			clientv3.OpDelete(s.keys.Requests()+d+"/", clientv3.WithPrefix()))
	}
	txn, err := s.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.keys.Job(name)), "=", target.ModRevision),
			clientv3.Compare(clientv3.ModRevision(s.keys.Jobs()), "<", resp.Header.Revision+1).WithPrefix()).
		Then(ops...).
		Commit()
	if err != nil {
		return fmt.Errorf("delete job %s: %w", name, err)
	}
	if !txn.Succeeded {
		return errorf(http.StatusConflict, "jobs changed while job %s was being deleted; try again", name)
	}
	s.log.Info("jobs deleted", zap.Strings("jobs", deleted))
	writeJSON(w, http.StatusOK, DeleteResponse{Deleted: name, Cascaded: deleted[1:]})
	return nil
}

// maxByBytes bounds the "by" of a run request.
const maxByBytes = 256

// runJob records a manual run request; the leader plans the fire.
func (s *Server) runJob(w http.ResponseWriter, r *http.Request) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	var req RunRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		return err
	}
	if problems := checkEnv(req.Env); len(problems) > 0 {
		return &httpError{status: http.StatusBadRequest, msg: "bad environment overrides, nothing run", problems: problems}
	}
	if problems := checkArgs(req.Args); len(problems) > 0 {
		return &httpError{status: http.StatusBadRequest, msg: "bad arguments, nothing run", problems: problems}
	}
	if len(req.By) > maxByBytes {
		return errorf(http.StatusBadRequest, "by: longer than %d bytes", maxByBytes)
	}
	if req.By == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		req.By = "api client " + host
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	id, err := store.RequestRun(ctx, s.etcd, s.keys, name, store.Request{Env: req.Env, Args: req.Args, Downstream: req.Downstream, By: req.By, At: s.now()})
	if err != nil {
		return requestError(err, name, "run")
	}
	s.log.Info("run requested", zap.Stringer("fire", id), zap.String("by", req.By))
	writeJSON(w, http.StatusAccepted, RunResponse{Fire: id.String()})
	return nil
}

// requestError turns the errors of store's request functions into
// answers: the job was deleted meanwhile, or the same request was made at
// the same instant.
func requestError(err error, job, what string) error {
	switch {
	case errors.Is(err, store.ErrNoSuchJob):
		return errorf(http.StatusNotFound, "no job named %q", job)
	case errors.Is(err, store.ErrDuplicateRequest):
		return errorf(http.StatusConflict, "an identical %s of %s was requested at the same instant; try again", what, job)
	}
	return err
}

func (s *Server) exists(ctx context.Context, key string) (bool, error) {
	resp, err := s.etcd.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	return resp.Count > 0, nil
}

// checkEnv checks environment overrides as jobspec checks a job's env.
func checkEnv(env map[string]string) []string {
	var problems []string
	size := 0
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		size += len(k) + len(env[k])
		switch {
		case !validEnvName(k):
			problems = append(problems, fmt.Sprintf("env.%s: %q is not a valid variable name: use letters, digits and '_', not starting with a digit", k, k))
		case strings.HasPrefix(k, "AION_"):
			problems = append(problems, fmt.Sprintf("env.%s: names starting with AION_ are set by Aion for every run", k))
		case strings.ContainsRune(env[k], 0):
			problems = append(problems, fmt.Sprintf("env.%s: value contains a NUL byte", k))
		}
	}
	if size > jobspec.MaxEnvBytes {
		problems = append(problems, fmt.Sprintf("env: too large: %d bytes, the limit is %d", size, jobspec.MaxEnvBytes))
	}
	return problems
}

// checkArgs checks argument overrides as jobspec checks a job's args: at
// most MaxCommandBytes in all, counting one more byte per argument (its
// terminator) so that a flood of empty arguments counts too.
func checkArgs(args []string) []string {
	var problems []string
	size := 0
	for i, a := range args {
		size += len(a) + 1
		if strings.ContainsRune(a, 0) {
			problems = append(problems, fmt.Sprintf("args[%d]: contains a NUL byte", i))
		}
	}
	if size > jobspec.MaxCommandBytes {
		problems = append(problems, fmt.Sprintf("args: too long: %d bytes (one more per argument), the limit is %d", size, jobspec.MaxCommandBytes))
	}
	return problems
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// pauseJob records a pause or resume request; the leader applies it to the
// job's state.
func (s *Server) pauseJob(w http.ResponseWriter, r *http.Request, pause bool) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	var req PauseRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		return err
	}
	if len(req.Note) > maxByBytes || len(req.By) > maxByBytes {
		return errorf(http.StatusBadRequest, "note and by must be at most %d bytes", maxByBytes)
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	if exists, err := s.exists(ctx, s.keys.Job(name)); err != nil {
		return err
	} else if !exists {
		return errorf(http.StatusNotFound, "no job named %q", name)
	}
	change := store.PauseChange{Pause: pause, Note: req.Note, Catchup: req.Catchup && !pause}
	if err := store.RequestPause(ctx, s.etcd, s.keys, name, change, req.By, s.now()); err != nil {
		return requestError(err, name, "pause or resume")
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"job": name, "pause": pause, "catchup": change.Catchup})
	return nil
}

// backfillJob lists the nominal times of a range and, unless it is a dry
// run, asks the leader to plan those without a fire.
func (s *Server) backfillJob(w http.ResponseWriter, r *http.Request) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	var req BackfillRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	switch {
	case req.From.IsZero() || req.To.IsZero() || req.To.Before(req.From):
		return errorf(http.StatusBadRequest, "want from <= to, both set (RFC 3339)")
	case req.Parallel < 0:
		return errorf(http.StatusBadRequest, "parallel must not be negative")
	case len(req.By) > maxByBytes:
		return errorf(http.StatusBadRequest, "by: longer than %d bytes", maxByBytes)
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	j, _, st, err := s.readJob(ctx, name)
	if err != nil {
		return err
	}
	sched, err := j.ParsedSchedule(st.AppliedAt)
	if err != nil {
		return err
	}
	if sched == nil {
		return errorf(http.StatusBadRequest, "%s has no schedule to backfill (it is manual or runs after its parents)", name)
	}
	times, more := jobspec.Between(sched, req.From, req.To, store.MaxBackfill)
	if more {
		return errorf(http.StatusBadRequest, "the range holds more than %d nominal times; backfill it in parts", store.MaxBackfill)
	}
	// One read of the job's fire keys (bounded by history retention), not
	// one per time: a range may hold store.MaxBackfill times.
	fireKeys, err := s.etcd.Get(ctx, s.keys.JobFires(name), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("read fires of %s: %w", name, err)
	}
	have := make(map[string]bool, len(fireKeys.Kvs))
	for _, kv := range fireKeys.Kvs {
		have[string(kv.Key)] = true
	}
	res := BackfillResponse{Times: make([]BackfillTime, 0, len(times))}
	for _, t := range times {
		id := store.ScheduledFireID(name, t)
		exists := have[s.keys.Fire(id)]
		res.Times = append(res.Times, BackfillTime{Fire: id.String(), At: t, Exists: exists})
		if !exists {
			res.New++
		}
	}
	if req.DryRun {
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	id, err := store.RequestBackfill(ctx, s.etcd, s.keys, name, store.Backfill{From: req.From, To: req.To, Parallel: req.Parallel}, req.By, s.now())
	if err != nil {
		return requestError(err, name, "backfill")
	}
	res.Request = id.String()
	writeJSON(w, http.StatusAccepted, res)
	return nil
}
