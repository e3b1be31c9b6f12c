// Package reliability proves Aion's run protocol under faults. Its checker
// reads what jobs themselves logged (each run appends a start and an end
// line to a file outside Aion; a start without an end counts as running
// until the end of the test) together with the fire records and the whole
// history of etcd, and reports missed nominal times, any two runs of one
// fire alive at once (a duplicate), overlapping runs of a job whose policy
// forbids them, skips its policies did not call for, dependent fires
// planned before their parents succeeded, and lateness (Check);
// and, replaying etcd's history, every fire record a non-leader wrote, every
// claim by an unregistered node and every result by a node that did not
// claim the attempt (CheckHistory). The fault-injection scenarios are its
// tests: real aion processes (the built binary) against real etcd and NATS,
// killed, stopped and restarted.
package reliability

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Spec is what the checker knows of a job: its schedule and the policies
// that say when a nominal time may be skipped and whether runs may overlap.
type Spec struct {
	Job         string
	Schedule    jobspec.Schedule
	Concurrency jobspec.Concurrency // "" is the default, forbid
	Misfire     jobspec.Misfire
	// Grace is the schedulers' misfire grace (--misfire-grace): nominal
	// times planned later than this follow the misfire policy.
	Grace time.Duration
	// Parents are a dependent job's parents; such a job has no schedule
	// and is due whenever they have all succeeded since its last fire
	// (see Check).
	Parents []string
}

// SpecOf is the Spec of a job as applied, with the schedulers' misfire
// grace. A manual job has no schedule: Check then expects no nominal
// times, and looks only at its runs; a dependent job is due after its
// parents (see Check).
func SpecOf(j *jobspec.Job, grace time.Duration) (Spec, error) {
	sched, err := j.ParsedSchedule(time.Now())
	if err != nil {
		return Spec{}, fmt.Errorf("job %s: %w", j.Name, err)
	}
	return Spec{Job: j.Name, Schedule: sched, Concurrency: j.Concurrency, Misfire: j.Misfire, Grace: grace, Parents: j.Parents}, nil
}

// Exclusive reports whether the job's policy forbids two of its runs
// alive at once: every policy but allow (forbid skips, queue and replace
// wait for the running one to end).
func (s Spec) Exclusive() bool { return s.Concurrency != jobspec.ConcurrencyAllow }

// recordLag is how long after a run's process ends its fire record may
// still be open (the executor's result, then the leader's watch), and
// how long the leader's view of a record may lag etcd (the leader plans
// on what its watch has shown it): a concurrency skip that soon after the
// other run's end, its record's closing, or (queue) the start of the run
// that waited is accepted.
const recordLag = time.Second

// Report is what the checker found for one job over a window.
type Report struct {
	Spec     Spec
	Expected int         // nominal times of the schedule (or due times of a dependent job) in the window
	Missed   []time.Time // expected times that neither ran nor were skipped
	// Unrun holds the record of each missed time that has one: a fire
	// planned that never started (lost or failed before its command
	// logged a start, or still open).
	Unrun []store.Fire
	// BadTriggers lists each fire of a dependent job planned before all
	// its parents had succeeded since its previous fire.
	BadTriggers []string
	Skipped     int // expected times skipped as the job's policy called for
	// WrongfulSkips lists the expected times recorded as skipped where no
	// policy of the job called for it (or that ran all the same).
	WrongfulSkips []string
	// Duplicates lists every attempt started more than once and every pair
	// of runs of one fire (any attempts) alive at the same time.
	Duplicates []string
	// Overlaps lists the pairs of runs of different fires of the job
	// alive at the same time; see Violations for when they count.
	Overlaps []string
	Lateness []time.Duration
}

// Violations lists what breaks the job's policies: duplicates, wrongful
// skips, dependent fires planned before their parents succeeded and, for
// an exclusive job (Spec.Exclusive), overlaps. Missed times are not among
// them: a scenario decides which it tolerates.
func (r Report) Violations() []string {
	v := append(slices.Clone(r.Duplicates), r.WrongfulSkips...)
	v = append(v, r.BadTriggers...)
	if r.Spec.Exclusive() {
		v = append(v, r.Overlaps...)
	}
	return v
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
	return fmt.Sprintf("%d nominal times, %d missed, %d skipped, %d wrongful skips, %d duplicates, %d overlaps (%s), lateness p50 %s p99 %s max %s",
		r.Expected, len(r.Missed), r.Skipped, len(r.WrongfulSkips), len(r.Duplicates), len(r.Overlaps), r.Spec.concurrency(),
		r.Percentile(50).Round(time.Millisecond), r.Percentile(99).Round(time.Millisecond), r.Percentile(100).Round(time.Millisecond))
}

func (s Spec) concurrency() jobspec.Concurrency {
	if s.Concurrency == "" {
		return jobspec.DefaultConcurrency
	}
	return s.Concurrency
}

// Check compares the schedule's nominal times in (from, to] with the fire
// records and the runs the jobs logged (package runlog; runs of other jobs
// are left out). A run that logged no end counts as running until end,
// the end of the test. Duplicates and overlaps are looked for among all
// the job's runs, not only those of the window.
//
// A dependent job (Spec.Parents; fires holds its parents' records too) is
// due, Chronos-like, when every parent has a fire that succeeded, was
// processed by the leader, and ended after the child's previous fire was
// planned: its due time is the latest of those ends, and its next fire,
// planned at or after it, is that time's fire (judged as a nominal time's
// would be, its lateness counted from the due time); a due time with no
// later fire is missed. A fire planned before it was due is a bad
// trigger. This assumes each parent's fires are processed in the order
// they end, as for a parent whose runs do not overlap (not allow).
//
// A skipped record is accepted only where the job's policy calls for it,
// judged by its reason:
//   - concurrency: forbid, when another fire of the job was open at the
//     skip's planning: planned before it, and its run alive then (per the
//     run log) or its record not yet final (ended no more than recordLag
//     before, or never; with CheckRecorded, also: open in etcd at the
//     revision the skip was written, even if skipped later, or closed no
//     more than recordLag before its planning);
//   - concurrency: queue, when another fire of the job was waiting (After)
//     then, planned and not yet started (or started no more than recordLag
//     before: the leader sees the claim through its watch);
//   - misfire (skip, run-all, run-once), when the job has that policy and
//     the record was planned more than the grace after its nominal time;
//     a starting deadline, when the job has one and the record was planned
//     (or, from the queue of runs waiting for a slot, ended) more than the
//     deadline after its nominal time. The planning time is the record's
//     planned_at, the scheduler's own clock, which is the clock its
//     misfire policy reads;
//   - anything else (a pause, a disabled or deleted job: the scenarios do
//     neither) is wrongful, and so is a skipped time that also ran.
func Check(spec Spec, from, to, end time.Time, fires []store.Fire, runs []runlog.Run) Report {
	return CheckRecorded(spec, from, to, end, fires, nil, runs)
}

// CheckRecorded is Check knowing from etcd's history when each fire record
// was created and closed (FiresFromHistory): a forbid skip is then also
// accepted when another fire of the job was open in etcd at the revision
// the skip was written, however long before that its run had ended (an
// executor cut off from etcd records its result only once the link is
// back; until then the leader rightly counts the run open).
func CheckRecorded(spec Spec, from, to, end time.Time, fires []store.Fire, revs map[store.FireID]Revisions, runs []runlog.Run) Report {
	r := Report{Spec: spec}
	byFire := make(map[string]store.Fire, len(fires))
	var jobFires []store.Fire
	for _, f := range fires {
		if f.ID.Job == spec.Job {
			byFire[f.ID.String()] = f
			jobFires = append(jobFires, f)
		}
	}
	var mine []runlog.Run
	for _, run := range runlog.OpenUntil(runs, end) {
		if id, err := store.ParseFireID(run.Fire); err == nil && id.Job == spec.Job {
			mine = append(mine, run)
		}
	}
	runlog.SortByStart(mine)
	started := make(map[string][]runlog.Run)
	for _, run := range mine {
		started[run.Fire] = append(started[run.Fire], run)
	}
	// judge accounts for one expected time t, whose fire is id.
	judge := func(id string, t time.Time) {
		r.Expected++
		f, ok := byFire[id]
		if ok && f.State == store.FireSkipped {
			if why := wrongfulSkip(spec, f, jobFires, revs, started); why != "" {
				r.WrongfulSkips = append(r.WrongfulSkips, fmt.Sprintf("%s skipped (%s): %s", id, f.Reason, why))
			} else {
				r.Skipped++
			}
			return
		}
		if len(started[id]) == 0 {
			r.Missed = append(r.Missed, t)
			if ok {
				r.Unrun = append(r.Unrun, f)
			}
			return
		}
		r.Lateness = append(r.Lateness, started[id][0].Start.Sub(t))
	}
	if len(spec.Parents) > 0 {
		r.BadTriggers = dependentTimes(spec, from, to, fires, jobFires, judge)
	}
	for t := next(spec.Schedule, from); !t.IsZero() && !t.After(to); t = spec.Schedule.Next(t) {
		judge(store.ScheduledFireID(spec.Job, t).String(), t)
	}
	for i := range mine {
		for j := i + 1; j < len(mine); j++ {
			a, b := mine[i], mine[j]
			switch {
			case a.Key() == b.Key():
				r.Duplicates = append(r.Duplicates, fmt.Sprintf("%s attempt %d started twice: %s and %s", a.Fire, a.Attempt, describe(a, end), describe(b, end)))
			case a.Fire == b.Fire && runlog.Overlap(a, b):
				r.Duplicates = append(r.Duplicates, fmt.Sprintf("%s: attempt %d %s overlaps attempt %d %s", a.Fire, a.Attempt, describe(a, end), b.Attempt, describe(b, end)))
			case runlog.Overlap(a, b):
				r.Overlaps = append(r.Overlaps, fmt.Sprintf("%s attempt %d %s overlaps %s attempt %d %s", a.Fire, a.Attempt, describe(a, end), b.Fire, b.Attempt, describe(b, end)))
			}
		}
	}
	return r
}

// dependentTimes walks the fires of a dependent job (mine) in the order
// they were planned against its parents' successes in fires, calls judge
// for each due time in (from, to] with the fire planned for it (see
// Check), and returns the fires planned before they were due.
func dependentTimes(spec Spec, from, to time.Time, fires, mine []store.Fire, judge func(id string, due time.Time)) []string {
	done := make(map[string][]time.Time, len(spec.Parents)) // each parent's ends of processed successes
	for _, f := range fires {
		if slices.Contains(spec.Parents, f.ID.Job) && f.State == store.FireSucceeded && f.Processed {
			done[f.ID.Job] = append(done[f.ID.Job], f.EndedAt)
		}
	}
	for _, ends := range done {
		slices.SortFunc(ends, time.Time.Compare)
	}
	var planned []store.Fire
	for _, f := range mine {
		if f.Trigger == store.TriggerDependency {
			planned = append(planned, f)
		}
	}
	slices.SortStableFunc(planned, func(a, b store.Fire) int { return a.PlannedAt.Compare(b.PlannedAt) })
	// dueAfter is when every parent has succeeded after last, and the
	// parent that was last to (or, ok false, the first that has not yet).
	dueAfter := func(last time.Time) (due time.Time, parent string, ok bool) {
		for _, p := range spec.Parents {
			ends := done[p]
			i, _ := slices.BinarySearchFunc(ends, last, func(e, t time.Time) int {
				if e.After(t) {
					return 1
				}
				return -1
			})
			if i == len(ends) {
				return time.Time{}, p, false
			}
			if ends[i].After(due) {
				due, parent = ends[i], p
			}
		}
		return due, parent, true
	}
	var bad []string
	var last time.Time // when the previous fire was planned
	for i := 0; ; {
		due, parent, ok := dueAfter(last)
		if i < len(planned) && (!ok || planned[i].PlannedAt.Before(due)) {
			f := planned[i]
			bad = append(bad, fmt.Sprintf("%s planned at %s, before parent %s had succeeded since the job's previous fire was planned (%s)",
				f.ID, f.PlannedAt.Format("15:04:05.000"), parent, last.Format("15:04:05.000")))
			last = f.PlannedAt
			i++
			continue
		}
		if !ok || due.After(to) {
			return bad
		}
		if i == len(planned) {
			if due.After(from) {
				judge("", due) // no fire: missed
			}
			return bad
		}
		if due.After(from) {
			judge(planned[i].ID.String(), due)
		}
		last = planned[i].PlannedAt
		i++
	}
}

// next is the schedule's first time after t; none without a schedule.
func next(s jobspec.Schedule, t time.Time) time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.Next(t)
}

// describe prints a run's node, process and interval; a run whose end is
// end logged none.
func describe(r runlog.Run, end time.Time) string {
	to := r.End.Format("15:04:05.000")
	if r.End.Equal(end) {
		to = "no end line"
	}
	return fmt.Sprintf("(%s pid %d, %s to %s)", r.Node, r.PID, r.Start.Format("15:04:05.000"), to)
}

// wrongfulSkip says why the skipped record f is not what the job's policy
// calls for, or "" when it is (see Check).
func wrongfulSkip(spec Spec, f store.Fire, fires []store.Fire, revs map[store.FireID]Revisions, started map[string][]runlog.Run) string {
	if n := len(started[f.ID.String()]); n > 0 {
		return fmt.Sprintf("it ran all the same (%d starts)", n)
	}
	late := f.PlannedAt.Sub(f.Nominal)
	reason := f.Reason
	switch {
	case strings.HasSuffix(reason, "(concurrency: forbid)"):
		if spec.concurrency() != jobspec.ConcurrencyForbid {
			return "the job's concurrency is " + string(spec.concurrency())
		}
		for _, g := range fires {
			if g.ID == f.ID {
				continue
			}
			if openAtRevision(revs, g, f) ||
				g.State != store.FireSkipped && !g.PlannedAt.After(f.PlannedAt) && openAt(g, started[g.ID.String()], f.PlannedAt) {
				return ""
			}
		}
		return "no other run of the job was open when it was planned at " + f.PlannedAt.Format("15:04:05.000")
	case strings.HasSuffix(reason, "(concurrency: queue)"):
		if spec.concurrency() != jobspec.ConcurrencyQueue {
			return "the job's concurrency is " + string(spec.concurrency())
		}
		for _, g := range fires {
			runs := started[g.ID.String()]
			if g.ID != f.ID && g.After != "" && g.State != store.FireSkipped && !g.PlannedAt.After(f.PlannedAt) &&
				(len(runs) == 0 || !runs[0].Start.Add(recordLag).Before(f.PlannedAt)) {
				return ""
			}
		}
		return "no other run of the job was waiting when it was planned at " + f.PlannedAt.Format("15:04:05.000")
	case strings.Contains(reason, "past the starting deadline of"):
		deadline := spec.Misfire.StartingDeadline.D()
		if deadline <= 0 {
			return "the job has no starting deadline"
		}
		if strings.HasPrefix(reason, "skipped: not started") { // from the queue of runs waiting for a slot
			late = f.EndedAt.Sub(f.Nominal)
		}
		if late <= deadline {
			return fmt.Sprintf("only %s after its nominal time, within the starting deadline of %s", late.Round(time.Millisecond), deadline)
		}
		return ""
	case strings.HasSuffix(reason, "(misfire: skip)"):
		return misfired(spec, jobspec.MisfireSkip, late)
	case strings.HasSuffix(reason, "(misfire: run-all)"):
		return misfired(spec, jobspec.MisfireRunAll, late)
	case strings.Contains(reason, "misfire: run-once"):
		return misfired(spec, jobspec.MisfireRunOnce, late)
	}
	return "no policy of the job calls for it"
}

func misfired(spec Spec, policy jobspec.MisfirePolicy, late time.Duration) string {
	have := spec.Misfire.Policy
	if have == "" {
		have = jobspec.DefaultMisfirePolicy
	}
	if have != policy {
		return "the job's misfire policy is " + string(have)
	}
	if late <= spec.Grace {
		return fmt.Sprintf("planned %s after its nominal time, within the misfire grace of %s", late.Round(time.Millisecond), spec.Grace)
	}
	return ""
}

// openAt reports whether fire g was open at t: its run alive then (ends
// extended as Check does) or its record not final, or final no more than
// recordLag before t.
func openAt(g store.Fire, runs []runlog.Run, t time.Time) bool {
	for _, run := range runs {
		if !run.Start.After(t) && !run.End.Add(recordLag).Before(t) {
			return true
		}
	}
	if !g.State.Final() {
		return true // still open at the end of the test
	}
	return !g.EndedAt.IsZero() && !g.EndedAt.Add(recordLag).Before(t)
}

// openAtRevision reports whether, by the revisions revs, the record of g
// was open when the record of f was created, as the leader may have seen
// it: created before it (or in the same transaction, for an earlier
// nominal time: a plan writes its times in order) and closed after it, or
// never, or no more than recordLag before f was planned (the leader's
// watch may not have shown the closing yet). A record created open counts
// even if it was skipped later (a fire waiting for a slot, then past its
// starting deadline).
func openAtRevision(revs map[store.FireID]Revisions, g, f store.Fire) bool {
	rg, rf := revs[g.ID], revs[f.ID]
	if rg.Created == 0 || rf.Created == 0 || rg.Closed == rg.Created {
		return false // unknown, or final when written (skipped): never open
	}
	before := rg.Created < rf.Created || rg.Created == rf.Created && g.Nominal.Before(f.Nominal)
	if !before {
		return false
	}
	return rg.Closed == 0 || rg.Closed > rf.Created || !rg.ClosedNotBefore.Add(recordLag).Before(f.PlannedAt)
}
