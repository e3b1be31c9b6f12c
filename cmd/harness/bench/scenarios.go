package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Jobs builds n jobs from one YAML template (parsed and checked like any
// job file, with "NAME" as its name), named prefix-00000, prefix-00001...
func Jobs(template, prefix string, n int) ([]*jobspec.Job, error) {
	parsed, errs := jobspec.Parse("bench.yaml", []byte(strings.ReplaceAll(template, "NAME", prefix+"-0")))
	if len(errs) > 0 {
		return nil, fmt.Errorf("bench job template: %v", errs)
	}
	if len(parsed) != 1 {
		return nil, fmt.Errorf("bench job template: %d jobs, want 1", len(parsed))
	}
	jobs := make([]*jobspec.Job, n)
	for i := range jobs {
		j := *parsed[0]
		j.Name = fmt.Sprintf("%s-%05d", prefix, i)
		jobs[i] = &j
	}
	return jobs, nil
}

// EverySecond is a job that runs /bin/true every second; n of them make a
// load of n fires per second, all due at the same instant.
const EverySecond = `
name: NAME
schedule: "* * * * * *"
cron_seconds: true
args: ["/bin/true"]
concurrency: allow
`

// LatenessResult is what a run at one rate showed.
type LatenessResult struct {
	Rate     int `json:"fires_per_second"`
	Seconds  int `json:"seconds_measured"`
	Expected int `json:"nominal_times"`
	Started  int `json:"started"`
	Missed   int `json:"missed"`
	// StartsPerSecond counts the runs that started during the measured
	// window, whatever their nominal time: the rate processes actually
	// started at. Under overload it is the capacity; the missed runs
	// (nominal time in the window, not started) are the backlog.
	StartsPerSecond float64   `json:"starts_per_second"`
	Lateness        Durations `json:"lateness"` // the process started − nominal time
	// Planning is the leader's part of the lateness: planned − nominal.
	Planning Durations `json:"planning"`
}

func (r LatenessResult) String() string {
	return fmt.Sprintf("%5d fires/s for %d s: %d of %d started, %d missed; %.0f starts/s\n      lateness %s\n      planning %s",
		r.Rate, r.Seconds, r.Started, r.Expected, r.Missed, r.StartsPerSecond, r.Lateness, r.Planning)
}

// Lateness loads rate every-second jobs, lets them run for warmup plus
// measure, and reports the lateness of the nominal times in the measured
// window. The jobs are deleted afterwards.
func Lateness(ctx context.Context, s *Stack, rate int, warmup, measure time.Duration) (LatenessResult, error) {
	prefix := fmt.Sprintf("r%d", rate)
	jobs, err := Jobs(EverySecond, prefix, rate)
	if err != nil {
		return LatenessResult{}, err
	}
	if err := s.Apply(ctx, jobs); err != nil {
		return LatenessResult{}, err
	}
	defer s.deleteJobs(context.WithoutCancel(ctx), prefix+"-")
	from := time.Now().Add(warmup).Truncate(time.Second).Add(time.Second)
	to := from.Add(measure)
	select {
	case <-ctx.Done():
		return LatenessResult{}, ctx.Err()
	case <-time.After(time.Until(to) + 2*time.Second): // the last ones start and record
	}
	fires, err := s.Fires(ctx)
	if err != nil {
		return LatenessResult{}, err
	}
	res := LatenessResult{Rate: rate, Seconds: int(measure / time.Second)}
	res.Expected = rate * res.Seconds
	started := make(map[store.FireID]bool)
	var lateness, planning []time.Duration
	startedInWindow := 0
	for _, f := range fires {
		if !f.StartedAt.Before(from) && f.StartedAt.Before(to) && strings.HasPrefix(f.ID.Job, prefix+"-") {
			startedInWindow++
		}
		if f.Nominal.Before(from) || !f.Nominal.Before(to) || f.StartedAt.IsZero() || f.Trigger != store.TriggerSchedule {
			continue
		}
		if !strings.HasPrefix(f.ID.Job, prefix+"-") {
			continue
		}
		started[f.ID] = true
		lateness = append(lateness, f.StartedAt.Sub(f.Nominal))
		planning = append(planning, f.PlannedAt.Sub(f.Nominal))
	}
	res.Started = len(started)
	res.StartsPerSecond = float64(startedInWindow) / measure.Seconds()
	res.Missed = res.Expected - res.Started
	res.Lateness = Summarise(lateness)
	res.Planning = Summarise(planning)
	return res, nil
}

// deleteJobs removes the jobs whose names start with prefix, with their
// state and fires, so the next scenario starts from an empty store.
func (s *Stack) deleteJobs(ctx context.Context, prefix string) {
	for _, key := range []string{s.Keys.Job(prefix), s.Keys.State(prefix), s.Keys.Fires() + prefix} {
		_, _ = s.Etcd.Delete(ctx, key, clientv3.WithPrefix())
	}
}

// ManualResult is the latency of manual triggers.
type ManualResult struct {
	Runs    int       `json:"runs"`
	Latency Durations `json:"latency"` // request written → process start (claim)
}

func (r ManualResult) String() string {
	return fmt.Sprintf("manual trigger → process start, %d runs one after another: %s", r.Runs, r.Latency)
}

// Manual triggers a manual-only job n times, one after another, each as
// `aion run` does (a run request in etcd), and times request → start.
func Manual(ctx context.Context, s *Stack, n int) (ManualResult, error) {
	jobs, err := Jobs("name: NAME\nschedule: manual\nargs: [\"/bin/true\"]\nconcurrency: allow\n", "manual", 1)
	if err != nil {
		return ManualResult{}, err
	}
	if err := s.Apply(ctx, jobs); err != nil {
		return ManualResult{}, err
	}
	defer s.deleteJobs(context.WithoutCancel(ctx), "manual-")
	name := jobs[0].Name
	time.Sleep(500 * time.Millisecond) // the leader has seen the job
	var lat []time.Duration
	for range n {
		at := time.Now()
		id, err := store.RequestRun(ctx, s.Etcd, s.Keys, name, store.Request{At: at, By: "bench"})
		if err != nil {
			return ManualResult{}, err
		}
		f, err := s.waitEnded(ctx, id, 10*time.Second)
		if err != nil {
			return ManualResult{}, err
		}
		lat = append(lat, f.StartedAt.Sub(at))
	}
	return ManualResult{Runs: n, Latency: Summarise(lat)}, nil
}

// waitEnded watches a fire record until the run has ended; its start time
// is then when its process started.
func (s *Stack) waitEnded(ctx context.Context, id store.FireID, timeout time.Duration) (store.Fire, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := s.Keys.Fire(id)
	resp, err := s.Etcd.Get(ctx, key)
	if err != nil {
		return store.Fire{}, err
	}
	decode := func(value []byte) (store.Fire, bool) {
		var f store.Fire
		return f, json.Unmarshal(value, &f) == nil && f.State.Final() && !f.StartedAt.IsZero()
	}
	if len(resp.Kvs) == 1 {
		if f, ok := decode(resp.Kvs[0].Value); ok {
			return f, nil
		}
	}
	for w := range s.Etcd.Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1)) {
		for _, ev := range w.Events {
			if f, ok := decode(ev.Kv.Value); ok {
				return f, nil
			}
		}
	}
	return store.Fire{}, fmt.Errorf("fire %s did not end within %s", id, timeout)
}
