package apiserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// maxNoteBytes bounds the note of a pause.
const maxNoteBytes = 256

// runJob records a manual run request; the leader plans the fire.
func (s *Server) runJob(w http.ResponseWriter, r *http.Request) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	var req api.RunRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		return err
	}
	if problems := checkEnv(req.Env); len(problems) > 0 {
		return &httpError{status: http.StatusBadRequest, msg: "bad environment overrides, nothing run", problems: problems}
	}
	if problems := checkArgs(req.Args); len(problems) > 0 {
		return &httpError{status: http.StatusBadRequest, msg: "bad arguments, nothing run", problems: problems}
	}
	by := requestedBy(r)
	ctx, cancel := etcdContext(r)
	defer cancel()
	id, err := store.RequestRun(ctx, s.etcd, s.keys, name, store.Request{Env: req.Env, Args: req.Args, Downstream: req.Downstream, By: by, At: s.now()})
	if err != nil {
		return requestError(err, name, "run")
	}
	s.log.Info("run requested", zap.Stringer("fire", id), zap.String("by", by))
	writeJSON(w, http.StatusAccepted, api.RunResponse{Fire: id.String()})
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
	var req api.PauseRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		return err
	}
	if len(req.Note) > maxNoteBytes {
		return errorf(http.StatusBadRequest, "note: longer than %d bytes", maxNoteBytes)
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	if exists, err := s.exists(ctx, s.keys.Job(name)); err != nil {
		return err
	} else if !exists {
		return errorf(http.StatusNotFound, "no job named %q", name)
	}
	change := store.PauseChange{Pause: pause, Note: req.Note, Catchup: req.Catchup && !pause}
	if err := store.RequestPause(ctx, s.etcd, s.keys, name, change, requestedBy(r), s.now()); err != nil {
		return requestError(err, name, "pause or resume")
	}
	writeJSON(w, http.StatusAccepted, api.PauseResponse{Job: name, Pause: pause, Catchup: change.Catchup})
	return nil
}

// resolveDates turns a backfill's from_date and to_date into times in the
// job's zone: from the start of the first day to the end of the last (the
// last nanosecond before the next day starts), and checks from <= to.
func resolveDates(req *api.BackfillRequest, zone string) error {
	loc, err := time.LoadLocation(cmp.Or(zone, "UTC"))
	if err != nil {
		return fmt.Errorf("zone of the job: %w", err)
	}
	if req.FromDate != "" {
		day, err := time.ParseInLocation(time.DateOnly, req.FromDate, loc)
		if err != nil {
			return errorf(http.StatusBadRequest, "from_date: %q is not a date (YYYY-MM-DD)", req.FromDate)
		}
		req.From = day
	}
	if req.ToDate != "" {
		day, err := time.ParseInLocation(time.DateOnly, req.ToDate, loc)
		if err != nil {
			return errorf(http.StatusBadRequest, "to_date: %q is not a date (YYYY-MM-DD)", req.ToDate)
		}
		// AddDate keeps the wall clock: the next day's midnight, whatever DST does.
		req.To = day.AddDate(0, 0, 1).Add(-time.Nanosecond)
	}
	if req.To.Before(req.From) {
		return errorf(http.StatusBadRequest, "want from <= to, got from %s, to %s", req.From.Format(time.RFC3339), req.To.Format(time.RFC3339))
	}
	return nil
}

// backfillJob lists the nominal times of a range and, unless it is a dry
// run, asks the leader to plan those without a fire.
func (s *Server) backfillJob(w http.ResponseWriter, r *http.Request) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	var req api.BackfillRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	switch {
	case req.From.IsZero() == (req.FromDate == ""):
		return errorf(http.StatusBadRequest, "want one of from (RFC 3339) and from_date (YYYY-MM-DD)")
	case req.To.IsZero() == (req.ToDate == ""):
		return errorf(http.StatusBadRequest, "want one of to (RFC 3339) and to_date (YYYY-MM-DD)")
	case req.Parallel < 0:
		return errorf(http.StatusBadRequest, "parallel must not be negative")
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
	if err := resolveDates(&req, j.Timezone); err != nil {
		return err
	}
	times, more := jobspec.Between(sched, req.From, req.To, store.MaxBackfill)
	if more {
		return errorf(http.StatusBadRequest, "the range holds more than %d nominal times; backfill it in parts", store.MaxBackfill)
	}
	// Times still to come are the schedule's to plan, not the backfill's
	// (the leader leaves every time from the job's next planned one on).
	now := s.now()
	times = slices.DeleteFunc(times, func(t time.Time) bool { return t.After(now) })
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
	res := api.BackfillResponse{Times: make([]api.BackfillTime, 0, len(times))}
	for _, t := range times {
		id := store.ScheduledFireID(name, t)
		exists := have[s.keys.Fire(id)]
		res.Times = append(res.Times, api.BackfillTime{Fire: id.String(), At: t, Exists: exists})
		if !exists {
			res.New++
		}
	}
	if req.DryRun {
		writeJSON(w, http.StatusOK, res)
		return nil
	}
	id, err := store.RequestBackfill(ctx, s.etcd, s.keys, name, store.Backfill{From: req.From, To: req.To, Parallel: req.Parallel}, requestedBy(r), s.now())
	if err != nil {
		return requestError(err, name, "backfill")
	}
	res.Request = id.String()
	writeJSON(w, http.StatusAccepted, res)
	return nil
}
