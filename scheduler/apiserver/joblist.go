package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// jobQuery is a parsed GET /v1/jobs query (api.JobQuery).
type jobQuery struct {
	state  string
	name   string
	labels map[string]string
	limit  int
	after  string
}

// parseJobQuery reads the query of GET /v1/jobs; a bad parameter is a
// 400 naming it.
func parseJobQuery(r *http.Request) (jobQuery, error) {
	v := r.URL.Query()
	q := jobQuery{state: v.Get("state"), name: v.Get("name"), after: v.Get("after"), labels: map[string]string{}}
	switch api.FireState(q.state) {
	// A job's state records the result of its last run, which is always
	// final: planned and running are not results.
	case "", "paused", "disabled", api.FireSucceeded, api.FireFailed,
		api.FireTimedOut, api.FireLost, api.FireSkipped, api.FireCancelled:
	default:
		return q, errorf(http.StatusBadRequest, "query parameter state=%q: want a last result (succeeded, failed, timed_out, lost, skipped, cancelled), paused or disabled", q.state)
	}
	if _, err := path.Match(q.name, ""); err != nil {
		return q, errorf(http.StatusBadRequest, "query parameter name=%q: %v (want a glob: *, ?, [a-z])", q.name, err)
	}
	for _, l := range v["label"] {
		key, val, ok := strings.Cut(l, "=")
		if !ok || key == "" {
			return q, errorf(http.StatusBadRequest, "query parameter label=%q: want key=value", l)
		}
		q.labels[key] = val
	}
	limit, err := intParam(r, "limit", api.DefaultJobLimit, 1, api.MaxJobLimit)
	q.limit = int(limit)
	return q, err
}

// match reports whether a job and its summary pass the query's filters.
func (q jobQuery) match(j *jobspec.Job, sum api.JobSummary) bool {
	if q.name != "" {
		if ok, _ := path.Match(q.name, j.Name); !ok { // the pattern was checked by parseJobQuery
			return false
		}
	}
	for k, v := range q.labels {
		if got, ok := j.Labels[k]; !ok || got != v {
			return false
		}
	}
	switch q.state {
	case "":
		return true
	case "paused":
		return sum.Paused
	case "disabled":
		return sum.Disabled
	}
	return string(sum.LastResult) == q.state
}

// listJobs lists one page of the jobs that match the query, sorted by
// name, reading the definitions in batches from after= on, all at one
// revision, until the page is full.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	q, err := parseJobQuery(r)
	if err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	now := s.now()
	// Jobs share their zones and often their schedules: parse each once.
	schedules := jobspec.NewScheduleCache(10_000)
	list := api.JobList{Jobs: []api.JobSummary{}}
	from, end := s.keys.Jobs(), clientv3.GetPrefixRangeEnd(s.keys.Jobs())
	if q.after != "" {
		from = s.keys.Job(q.after) + "\x00"
	}
	var rev int64
	for {
		resp, err := s.etcd.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(int64(q.limit)), clientv3.WithRev(rev))
		if err != nil {
			return fmt.Errorf("read jobs: %w", err)
		}
		rev = resp.Header.Revision
		if len(resp.Kvs) == 0 {
			break
		}
		states, err := s.readStates(ctx, resp.Kvs, rev)
		if err != nil {
			return err
		}
		for i, kv := range resp.Kvs {
			j, err := decodeJob(kv)
			if err != nil {
				s.log.Warn("bad job definition in etcd", zap.Error(err))
				continue
			}
			if sum := s.summary(schedules, j, states[j.Name], now); q.match(j, sum) {
				list.Jobs = append(list.Jobs, sum)
			}
			if len(list.Jobs) == q.limit {
				if i < len(resp.Kvs)-1 || resp.More {
					list.Next = j.Name
				}
				writeJSON(w, http.StatusOK, list)
				return nil
			}
		}
		if !resp.More {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// readStates reads the states of the jobs whose definitions are kvs (in
// key order), at rev.
func (s *Server) readStates(ctx context.Context, kvs []*mvccpb.KeyValue, rev int64) (map[string]store.JobState, error) {
	first := strings.TrimPrefix(string(kvs[0].Key), s.keys.Jobs())
	last := strings.TrimPrefix(string(kvs[len(kvs)-1].Key), s.keys.Jobs())
	resp, err := s.etcd.Get(ctx, s.keys.State(first), clientv3.WithRange(s.keys.State(last)+"\x00"), clientv3.WithRev(rev))
	if err != nil {
		return nil, fmt.Errorf("read job states: %w", err)
	}
	states := make(map[string]store.JobState, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var st store.JobState
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			s.log.Warn("bad job state in etcd", zap.String("key", string(kv.Key)), zap.Error(err))
			continue
		}
		states[strings.TrimPrefix(string(kv.Key), s.keys.States())] = st
	}
	return states, nil
}

// summary is a job's row in GET /v1/jobs; a paused or disabled job has no
// next run.
func (s *Server) summary(schedules *jobspec.ScheduleCache, j *jobspec.Job, st store.JobState, now time.Time) api.JobSummary {
	sum := api.JobSummary{
		Name: j.Name, Schedule: runsText(j), Parents: j.Parents, Timezone: j.Timezone, Disabled: j.Disabled, Paused: st.Paused,
		LastFire: st.LastFire, LastResult: api.FireState(st.LastResult), LastSuccess: st.LastSuccess,
	}
	if j.Disabled || st.Paused {
		return sum
	}
	if sched, from := s.schedule(schedules, j, st, now); sched != nil {
		if next := sched.Next(from); !next.IsZero() {
			sum.Next = next.In(schedules.Location(j))
		}
	}
	return sum
}
