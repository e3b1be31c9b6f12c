// Package reliability proves Aion's run protocol under faults. Its checker
// reads what jobs themselves logged (each run appends a start and an end
// line to a file outside Aion) together with the fire records in etcd, and
// reports missed nominal times, duplicate starts of an attempt, overlapping
// runs and lateness. The fault-injection scenarios are its tests: real
// aion processes (the built binary) against real etcd and NATS, killed,
// stopped and restarted.
package reliability

import (
	"fmt"
	"slices"
	"time"

	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Report is what the checker found for one job over a window.
type Report struct {
	Expected   int         // nominal times of the schedule in the window
	Missed     []time.Time // expected times that never started
	Skipped    int         // expected times recorded as skipped (not missed: recorded)
	Duplicates []string    // "fire attempt" started more than once
	Overlaps   int         // pairs of runs alive at the same time
	Lateness   []time.Duration
}

// Percentile returns the p-th percentile (0-100) of the lateness.
func (r Report) Percentile(p int) time.Duration {
	if len(r.Lateness) == 0 {
		return 0
	}
	l := slices.Clone(r.Lateness)
	slices.Sort(l)
	return l[min(len(l)-1, len(l)*p/100)]
}

// String summarises the report on one line.
func (r Report) String() string {
	return fmt.Sprintf("%d nominal times, %d missed, %d skipped, %d duplicate starts, %d overlaps, lateness p50 %s p99 %s max %s",
		r.Expected, len(r.Missed), r.Skipped, len(r.Duplicates), r.Overlaps,
		r.Percentile(50).Round(time.Millisecond), r.Percentile(99).Round(time.Millisecond), r.Percentile(100).Round(time.Millisecond))
}

// Check compares the schedule's nominal times in (from, to] with the fire
// records and the runs the job logged (package runlog).
func Check(sched jobspec.Schedule, job string, from, to time.Time, fires []store.Fire, runs []runlog.Run) Report {
	var r Report
	byFire := make(map[string]store.Fire, len(fires))
	for _, f := range fires {
		byFire[f.ID.String()] = f
	}
	started := make(map[string][]runlog.Run)
	for _, run := range runs {
		started[run.Fire] = append(started[run.Fire], run)
	}
	for t := sched.Next(from); !t.IsZero() && !t.After(to); t = sched.Next(t) {
		r.Expected++
		id := store.ScheduledFireID(job, t).String()
		if f, ok := byFire[id]; ok && f.State == store.FireSkipped {
			r.Skipped++
			continue
		}
		if len(started[id]) == 0 {
			r.Missed = append(r.Missed, t)
			continue
		}
		r.Lateness = append(r.Lateness, started[id][0].Start.Sub(t))
	}
	r.Duplicates = runlog.Duplicates(runs)
	r.Overlaps = len(runlog.Overlaps(runs))
	return r
}
