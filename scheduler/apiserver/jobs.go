package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

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
	fires, err := s.recentFires(ctx, name, api.DefaultFireLimit)
	if err != nil {
		return err
	}
	detail := api.JobDetail{Job: j.Redacted(), State: apiJobState(st), Next: []api.NextRun{}, Fires: apiFires(fires)}
	if sched, t := s.schedule(jobspec.NewScheduleCache(1), j, st, s.now()); sched != nil {
		loc := j.Location()
		for range nextRunCount {
			occ, ok := jobspec.NextOccurrence(sched, t)
			if !ok {
				break
			}
			detail.Next = append(detail.Next, api.NextRun{
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
	res := api.EnableResponse{Job: name, Disabled: disabled}
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
	jobs, err := s.readJobGraph(ctx)
	if err != nil {
		return err
	}
	if jobs.kvs[name] == nil {
		return errorf(http.StatusNotFound, "no job named %q", name)
	}
	children := jobs.childrenOf[name]
	if len(children) > 0 && !cascade {
		return parentError(name, children)
	}
	// With cascade, every descendant goes too, in the same transaction.
	deleted := jobs.descendants(name)
	if err := s.deleteJobs(ctx, jobs, deleted); err != nil {
		return err
	}
	s.log.Info("jobs deleted", zap.Int("count", len(deleted)), someNames("jobs", deleted))
	writeJSON(w, http.StatusOK, api.DeleteResponse{Deleted: name, Cascaded: deleted[1:]})
	return nil
}

// jobGraph is every job definition as read at one etcd revision, with the
// children each job is a parent of.
type jobGraph struct {
	revision   int64
	kvs        map[string]*mvccpb.KeyValue // by job name
	childrenOf map[string][]string
}

// readJobGraph reads every job definition in one Get.
func (s *Server) readJobGraph(ctx context.Context) (jobGraph, error) {
	resp, err := s.etcd.Get(ctx, s.keys.Jobs(), clientv3.WithPrefix())
	if err != nil {
		return jobGraph{}, fmt.Errorf("read jobs: %w", err)
	}
	g := jobGraph{revision: resp.Header.Revision, kvs: make(map[string]*mvccpb.KeyValue), childrenOf: make(map[string][]string)}
	for _, kv := range resp.Kvs {
		j, err := decodeJob(kv)
		if err != nil {
			return jobGraph{}, err
		}
		g.kvs[j.Name] = kv
		for _, p := range j.Parents {
			g.childrenOf[p] = append(g.childrenOf[p], j.Name)
		}
	}
	return g, nil
}

// descendants is name, then every job below it, each once, nearest first.
func (g jobGraph) descendants(name string) []string {
	deleted := []string{name}
	for i := 0; i < len(deleted); i++ {
		for _, c := range g.childrenOf[deleted[i]] {
			if !slices.Contains(deleted, c) {
				deleted = append(deleted, c)
			}
		}
	}
	return deleted
}

// parentError refuses to delete a job that other jobs list as a parent.
func parentError(name string, children []string) *httpError {
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

// deleteJobs deletes the definitions, states and requests of the jobs
// named in deleted (the job asked for first, then its descendants) if no
// job definition changed since g was read.
func (s *Server) deleteJobs(ctx context.Context, g jobGraph, deleted []string) error {
	ops := make([]clientv3.Op, 0, 4*len(deleted))
	for _, d := range deleted {
		ops = append(ops, clientv3.OpDelete(s.keys.Job(d)), clientv3.OpDelete(s.keys.State(d)), clientv3.OpDelete(s.keys.ApplySet(d)),
			clientv3.OpDelete(s.keys.Requests()+d+"/", clientv3.WithPrefix()))
	}
	name := deleted[0]
	txn, err := s.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.keys.Job(name)), "=", g.kvs[name].ModRevision),
			clientv3.Compare(clientv3.ModRevision(s.keys.Jobs()), "<", g.revision+1).WithPrefix()).
		Then(ops...).
		Commit()
	if err != nil {
		return fmt.Errorf("delete job %s: %w", name, err)
	}
	if !txn.Succeeded {
		return errorf(http.StatusConflict, "jobs changed while job %s was being deleted; try again", name)
	}
	return nil
}
