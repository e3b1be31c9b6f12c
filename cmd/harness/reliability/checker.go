// Package reliability proves Aion's run protocol under faults. Its checker
// reads what jobs themselves logged (each run appends a start and an end
// line to a file outside Aion) together with the fire records in etcd, and
// reports missed nominal times, duplicate starts of an attempt, overlapping
// runs and lateness. The fault-injection scenarios are its tests: real
// aion processes (the built binary) against real etcd and NATS, killed,
// stopped and restarted.
package reliability

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// LoggedCommand wraps work in a shell command that appends
// "start FIRE ATTEMPT NODE PID EPOCH" before and "end FIRE ATTEMPT EPOCH"
// after it to logPath.
func LoggedCommand(logPath, work string) string {
	return fmt.Sprintf(`echo "start $AION_FIRE_ID $AION_ATTEMPT $AION_NODE $$ $(date +%%s.%%N)" >> %[1]s; %[2]s; echo "end $AION_FIRE_ID $AION_ATTEMPT $(date +%%s.%%N)" >> %[1]s`, logPath, work)
}

// Run is one attempt as the job logged it.
type Run struct {
	Fire    string
	Attempt int
	Node    string
	PID     int
	Start   time.Time
	End     time.Time // zero when the run never logged its end
}

// ReadRuns reads a log written by LoggedCommand.
func ReadRuns(path string) ([]Run, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []Run
	open := make(map[string]int) // fire attempt → index of its latest start
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 6 && fields[0] == "start":
			attempt, _ := strconv.Atoi(fields[2])
			pid, _ := strconv.Atoi(fields[4])
			runs = append(runs, Run{Fire: fields[1], Attempt: attempt, Node: fields[3], PID: pid, Start: epoch(fields[5])})
			open[fields[1]+" "+fields[2]] = len(runs) - 1
		case len(fields) == 4 && fields[0] == "end":
			if i, ok := open[fields[1]+" "+fields[2]]; ok {
				runs[i].End = epoch(fields[3])
			}
		}
	}
	return runs, sc.Err()
}

func epoch(s string) time.Time {
	f, _ := strconv.ParseFloat(s, 64)
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

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
// records and the runs the job logged.
func Check(sched jobspec.Schedule, job string, from, to time.Time, fires []store.Fire, runs []Run) Report {
	var r Report
	byFire := make(map[string]store.Fire, len(fires))
	for _, f := range fires {
		byFire[f.ID.String()] = f
	}
	started := make(map[string][]Run)
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
	seen := make(map[string]int)
	for _, run := range runs {
		key := fmt.Sprintf("%s %d", run.Fire, run.Attempt)
		if seen[key]++; seen[key] == 2 {
			r.Duplicates = append(r.Duplicates, key)
		}
	}
	for i := range runs {
		for j := i + 1; j < len(runs); j++ {
			if overlap(runs[i], runs[j]) {
				r.Overlaps++
			}
		}
	}
	return r
}

func overlap(a, b Run) bool {
	if a.End.IsZero() || b.End.IsZero() {
		return false
	}
	return a.Start.Before(b.End) && b.Start.Before(a.End)
}
