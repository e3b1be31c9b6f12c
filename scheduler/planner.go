package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// planner turns due nominal times into fires: it takes the jobs due from
// the top of the job table's heap, applies the misfire and concurrency
// policies, chooses each run's node, and writes the fire records with the
// jobs' new high-water marks in fenced transactions, then dispatches.
type planner struct {
	id           string        // this scheduler, recorded as planned_by
	misfireGrace time.Duration // how late a time may still run normally
	log          *zap.Logger
	metrics      *Metrics
	keys         store.Keys
	jobs         *jobTable
	fires        *openFires
	nodes        *placement
	fence        *fence
	send         *dispatcher
	backoffUntil time.Time // after a conflict, no planning before this
}

// maxFiresPerTxn bounds the fires of one job planned in one transaction:
// a job with more due times (catching up) is planned alone, in batches.
const maxFiresPerTxn = 60

// maxCatchupScan bounds how many missed nominal times are enumerated after
// an outage; times beyond it are skipped in bulk.
const maxCatchupScan = 100_000

// maxSkipRecords bounds how many skipped times of one planning round get a
// fire record each; further ones (after a long outage) are only counted.
const maxSkipRecords = 100

// planDue plans every job whose next nominal time has come. Jobs with a
// few due times (the usual case: one) are planned together, as many per
// fenced transaction as etcd's default limit of 128 operations allows, so
// a thousand jobs due at one instant take a few transactions, not a
// thousand. A job catching up on many times is planned alone, in batches.
//
// A conflict (a compared record changed) ends the round: the jobs are
// planned again from their stored states after replanBackoff, the watch
// events the loop applies meanwhile having refreshed its view.
func (p *planner) planDue(ctx context.Context, now time.Time) error {
	if now.Before(p.backoffUntil) {
		return nil
	}
	err := p.planRound(ctx, now)
	if errors.Is(err, errReplanSoon) {
		// What conflicted may be a record the watch has not brought yet
		// (an open fire a skip depended on): plan again once the loop
		// has had the time to apply it, rather than at once, on the same
		// view.
		p.backoffUntil = now.Add(replanBackoff)
		return nil
	}
	return err
}

// planRound plans every due job, until one conflicts (errReplanSoon).
func (p *planner) planRound(ctx context.Context, now time.Time) error {
	var group []jobPlan
	size := 1 // compares in the group's transaction: the fence, then per job
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := p.planGroup(ctx, group, now)
		if conflicted(err) {
			err = p.reload(ctx, group) // plan each job again from its stored state
			if err == nil {
				err = errReplanSoon
			}
		}
		group, size = group[:0], 1
		return err
	}
	// unplanned puts back a prepared plan that is not written when the
	// round ends: prepare moved the job past its due times.
	unplanned := func(plan jobPlan, err error) error {
		if rerr := p.jobs.reload(ctx, plan.e); rerr != nil {
			return rerr
		}
		return err
	}
	for e := p.jobs.firstDue(); e != nil && !e.next.After(now); e = p.jobs.firstDue() {
		plan := p.prepare(e, now)
		cost := len(plan.entries) + 2 // fire compares (puts), the state's, and an open fire's (writePlan)
		if cost > maxFiresPerTxn {
			if err := flush(); err != nil {
				return unplanned(plan, err)
			}
			if err := p.planCatchup(ctx, plan, now); err != nil {
				return err
			}
			continue
		}
		if size+cost > maxTxnOps {
			if err := flush(); err != nil {
				return unplanned(plan, err)
			}
		}
		group = append(group, plan)
		size += cost
	}
	return flush()
}

// errReplanSoon ends a round of planning after a conflict.
var errReplanSoon = errors.New("conflict: plan again soon")

// replanBackoff is how long planning waits after a conflict.
const replanBackoff = 20 * time.Millisecond

// reload reads the states of the group's jobs again after a conflict.
func (p *planner) reload(ctx context.Context, group []jobPlan) error {
	for _, plan := range group {
		if err := p.jobs.reload(ctx, plan.e); err != nil {
			return err
		}
	}
	return nil
}

// dueTime is a due nominal time and, when it will not run, why.
type dueTime struct {
	at   time.Time
	skip string
}

// jobPlan is what planning writes for one job: a fire record for each due
// time (planned, or skipped with its reason), and the job's state with its
// new high-water mark.
type jobPlan struct {
	e         *jobEntry
	entries   []dueTime
	countOnly int // skipped times that get no record, only a count
	highWater time.Time
}

// prepare lists the due nominal times of one job, applying the misfire
// policy to those later than the grace, and queues the job at its next
// time. Every skipped time gets a skipped fire record (up to
// maxSkipRecords per round, the most recent ones) and is counted. If the
// plan is not committed, the job table's reload queues the job again
// where it was.
func (p *planner) prepare(e *jobEntry, now time.Time) jobPlan {
	var due []time.Time
	t := e.next
	for !t.IsZero() && !t.After(now) && len(due) < maxCatchupScan {
		due = append(due, t)
		t = e.sched.Next(t)
	}
	countOnly := 0
	if !t.IsZero() && !t.After(now) {
		// Too many missed times to list: skip the rest in bulk, counted once.
		countOnly++
		t = e.sched.Next(now)
	}
	decided := p.misfire(e, due, now)
	var entries []dueTime
	recorded := 0
	for i := len(decided) - 1; i >= 0; i-- { // keep the most recent skips
		d := decided[i]
		if d.skip != "" {
			if recorded == maxSkipRecords {
				countOnly++
				continue
			}
			recorded++
		}
		entries = append(entries, d)
	}
	slices.Reverse(entries)
	if countOnly > 0 {
		p.metrics.skipped.WithLabelValues("misfire").Add(float64(countOnly))
		p.log.Warn("nominal times skipped without records", zap.String("job", e.name), zap.Int("count", countOnly))
	}
	p.jobs.setNext(e, t)
	return jobPlan{e: e, entries: entries, countOnly: countOnly, highWater: due[len(due)-1]}
}

// planCatchup plans one job's many due times in transactions of at most
// maxFiresPerTxn fires, each moving the high-water mark to its last time.
func (p *planner) planCatchup(ctx context.Context, plan jobPlan, now time.Time) error {
	entries, countOnly := plan.entries, plan.countOnly
	for len(entries) > 0 {
		batch := entries[:min(len(entries), maxFiresPerTxn)]
		entries = entries[len(batch):]
		hw := plan.highWater
		if len(entries) > 0 {
			hw = batch[len(batch)-1].at
		}
		err := p.planGroup(ctx, []jobPlan{{e: plan.e, entries: batch, countOnly: countOnly, highWater: hw}}, now)
		if conflicted(err) {
			if err := p.jobs.reload(ctx, plan.e); err != nil { // plan again from the stored state
				return err
			}
			return errReplanSoon
		}
		if err != nil {
			return err
		}
		countOnly = 0
	}
	return nil
}

// pausedReason starts the reason of every time skipped while paused.
const pausedReason = "skipped: the job is paused"

// misfire decides, for each due nominal time, whether it runs: times later
// than the grace follow the job's misfire policy, any time older than the
// starting deadline is skipped, and a disabled or paused job skips them
// all.
func (p *planner) misfire(e *jobEntry, due []time.Time, now time.Time) []dueTime {
	job := e.policy
	out := make([]dueTime, len(due))
	var late []int
	onTime := 0
	for i, t := range due {
		out[i].at = t
		age := now.Sub(t).Round(time.Millisecond)
		switch {
		case job.Disabled:
			out[i].skip = "skipped: the job is disabled"
		case e.state.Paused:
			out[i].skip = pausedReason + ": " + e.state.PauseNote
		case job.Misfire.StartingDeadline > 0 && age > job.Misfire.StartingDeadline.D():
			out[i].skip = fmt.Sprintf("skipped: %s late, past the starting deadline of %s", age, job.Misfire.StartingDeadline)
		case age > p.misfireGrace:
			late = append(late, i)
		default:
			onTime++
		}
	}
	keep := 0 // how many of the latest late times run
	switch job.Misfire.Policy {
	case jobspec.MisfireRunAll:
		keep = min(len(late), job.Misfire.MaxCatchup)
	case jobspec.MisfireRunOnce:
		if onTime == 0 && len(late) > 0 {
			keep = 1
		}
	}
	for n, i := range late {
		if n >= len(late)-keep {
			continue
		}
		age := now.Sub(due[i]).Round(time.Millisecond)
		switch job.Misfire.Policy {
		case jobspec.MisfireSkip:
			out[i].skip = fmt.Sprintf("skipped: missed by %s (misfire: skip)", age)
		case jobspec.MisfireRunAll:
			out[i].skip = fmt.Sprintf("skipped: missed by %s, beyond max_catchup %d (misfire: run-all)", age, job.Misfire.MaxCatchup)
		default:
			out[i].skip = fmt.Sprintf("skipped: missed by %s; misfire: run-once runs only the latest missed time", age)
		}
	}
	return out
}

// planGroup writes the plans of several jobs in one fenced transaction —
// their fire records, each created only if absent, and their states, each
// compared on its revision — then dispatches the planned fires. On a
// conflict (errConflict) nothing was written.
func (p *planner) planGroup(ctx context.Context, plans []jobPlan, now time.Time) error {
	t := p.fence.txn()
	states := make([]store.JobState, len(plans))
	var planned []*openFire
	var replaced []store.FireID
	// The fires of this transaction count against their nodes while it is
	// built, so they spread over the nodes; once it is done, the open-fire
	// table counts the committed ones.
	defer func() {
		for _, of := range planned {
			p.nodes.release(of.fire.Node)
		}
	}()
	for i, plan := range plans {
		state, fires, err := p.writePlan(&t, plan, now, &replaced)
		planned = append(planned, fires...) // reserved even when err: released above
		if err != nil {
			return err
		}
		states[i] = state
	}
	rev, err := p.fence.commit(ctx, &t)
	if err != nil {
		return err
	}
	for i, plan := range plans {
		p.jobs.stateWritten(plan.e, states[i], rev)
	}
	for _, of := range planned {
		of.rev = rev
		p.fires.open(of)
	}
	p.send.dispatchAll(planned, now)
	return p.send.stopAll(ctx, replaced, "replaced by a newer run (concurrency: replace)")
}

// writePlan adds one job's plan to t: a record for each due time (planned
// on a node, or skipped by the misfire or concurrency policy) and the
// job's new state. It returns that state and the planned fires, whose
// nodes it has reserved.
func (p *planner) writePlan(t *txn, plan jobPlan, now time.Time, replaced *[]store.FireID) (store.JobState, []*openFire, error) {
	e := plan.e
	state := e.state
	state.HighWater = plan.highWater
	state.Skipped += plan.countOnly
	state.Planned += len(plan.entries)
	ov := p.fires.overlapOf(e.name)
	compared := false // the open fire a skip depends on
	var planned []*openFire
	for _, d := range plan.entries {
		f := store.Fire{
			ID:        store.ScheduledFireID(e.name, d.at),
			Trigger:   store.TriggerSchedule,
			Nominal:   d.at.UTC(),
			Attempt:   1,
			PlannedAt: now.UTC(),
			PlannedBy: p.id,
		}
		var of *openFire
		switch {
		case d.skip != "":
			f.State, f.Processed, f.EndedAt, f.Reason = store.FireSkipped, true, now.UTC(), d.skip
			state.Skipped++
		case ov.admit(e.policy, &f, replaced):
			f.State = store.FirePlanned
			f.Node, f.Reason = p.nodes.choose(e)
			p.nodes.reserve(f.Node)
			of = &openFire{fire: f}
			planned = append(planned, of)
		default:
			state.Skipped++
			// Skipped behind the open fire ov.newest (forbid, queue): the
			// write holds only if that fire's record is as the leader saw
			// it. A leader that resumes from a pause may plan before it
			// has applied the watch events it missed, and would skip
			// behind a run that has ended.
			if !compared {
				t.unchanged(p.keys.Fire(*ov.newest), ov.newestRev)
				compared = true
			}
		}
		data, err := t.createFire(p.keys.Fire(f.ID), &f)
		if err != nil {
			return state, planned, err
		}
		if of != nil {
			of.fire.Term, of.record = f.Term, data // the dispatch carries the record as written
		}
	}
	_, err := t.update(p.keys.State(e.name), e.stateRev, state)
	return state, planned, err
}
