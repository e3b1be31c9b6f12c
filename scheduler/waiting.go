package scheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// waitingQueue holds the planned fires that have no node because every
// eligible executor was full (or none was registered), and places them,
// oldest nominal time first, as soon as slots may be free: when runs end or
// an executor registers, in one fenced transaction compared on every
// record's revision. Without it they would wait for the next reconcile,
// one transaction each: under a burst larger than the executors' slots,
// most runs of a second started seconds late or not in their second at
// all. Fires left over (no slot, or beyond one transaction) wait for the
// next run to end, or for reconcile.
//
// A scheduled run that was planned in time but has waited for a slot past
// its job's starting deadline is skipped instead, as Kubernetes CronJob
// does with a run that cannot start in time: under overload, jobs with a
// deadline shed their late runs rather than start them all late. Retries,
// queued runs and backfills wait for other reasons and are left alone. The
// skip ends the fire like a run's end, so it becomes the job's last
// result.
type waitingQueue struct {
	keys    store.Keys
	log     *zap.Logger
	metrics *Metrics
	jobs    *jobTable
	fires   *openFires // set by newTerm: the table that feeds this queue
	nodes   *placement
	fence   *fence
	send    *dispatcher

	waiting map[store.FireID]*openFire
	// order holds the waiting fires oldest first (sorted lazily, when
	// sorted is false); entries no longer in waiting are stale and skipped.
	order  []*openFire
	sorted bool
	freed  bool // a fire closed since place last ran: slots may be free
}

// maxMisses bounds how many waiting fires place tries to place after free
// slots were found unusable by them (constraints): the rest wait for the
// next run to end.
const maxMisses = 64

// add puts a planned fire without a node in the queue (or replaces its
// older record there).
func (w *waitingQueue) add(of *openFire) {
	w.waiting[of.fire.ID] = of
	w.order, w.sorted = append(w.order, of), false
}

// drop takes a fire out of the queue: it got a node or it closed.
func (w *waitingQueue) drop(id store.FireID) { delete(w.waiting, id) }

// slotFreed says a fire with a node closed: its slot may take a waiting one.
func (w *waitingQueue) slotFreed() { w.freed = true }

// len is the number of waiting fires.
func (w *waitingQueue) len() int { return len(w.waiting) }

func (w *waitingQueue) current(of *openFire) bool { return w.waiting[of.fire.ID] == of }

// place places waiting fires on free slots, when a slot may have been
// freed since it last ran. With sweep (reconcile, once a second) it also
// looks through the whole queue for fires past their starting deadline,
// not only up to the first that finds no slot, and runs even if no slot
// was freed.
func (w *waitingQueue) place(ctx context.Context, now time.Time, sweep bool) error {
	if len(w.waiting) == 0 {
		w.order, w.sorted = nil, true
		return nil
	}
	if !w.freed && !sweep {
		return nil
	}
	w.freed = false
	w.sort()
	defer w.trim()
	b := placeBatch{w: w, now: now, t: w.fence.txn(), free: w.nodes.freeSlots(), backfills: make(map[string]int)}
	defer b.release()
	for _, of := range w.order {
		if b.t.size()+1 == maxTxnOps || (!b.looking() && !sweep) {
			break
		}
		if err := b.consider(of); err != nil {
			return err
		}
	}
	if b.t.empty() {
		return nil
	}
	rev, err := w.fence.commit(ctx, &b.t)
	if conflicted(err) {
		return nil // the watch brings the newer records; reconcile places the rest
	}
	if err != nil {
		return err
	}
	for _, of := range b.placed {
		of.rev = rev
		w.fires.open(of)
	}
	w.send.dispatchAll(b.placed, now)
	if len(b.skipped) > 0 {
		w.log.Warn("runs skipped: they waited for a free slot past their starting deadline", zap.Int("count", len(b.skipped)))
		w.metrics.skipped.WithLabelValues("deadline").Add(float64(len(b.skipped)))
	}
	for _, id := range b.skipped {
		// Closed now, so nothing places it meanwhile; the watch brings
		// its end, which is processed like any run's end.
		w.fires.close(id)
	}
	return nil
}

// placeBatch is one transaction of the waiting queue being built: the
// fires it places (their nodes reserved until it is done, so they spread)
// and those it skips for their deadline.
type placeBatch struct {
	w         *waitingQueue
	now       time.Time
	t         txn
	placed    []*openFire
	skipped   []store.FireID
	free      int            // slots still free on live nodes
	misses    int            // fires no free node could take: past maxMisses, stop looking
	backfills map[string]int // backfill fires placed in this batch, per backfill
}

// looking reports whether placing more fires can still succeed.
func (b *placeBatch) looking() bool { return b.free > 0 && b.misses < maxMisses }

// consider adds one waiting fire to the batch: skipped past its deadline,
// placed on a node, or left waiting.
func (b *placeBatch) consider(of *openFire) error {
	w, now := b.w, b.now
	e := w.jobs.get(of.fire.ID.Job)
	if !w.current(of) || e == nil {
		return nil // reconcile deals with a fire of a deleted job
	}
	f := of.fire
	switch {
	case w.pastDeadline(e, of, now):
		f.State, f.EndedAt = store.FireSkipped, now.UTC()
		f.Reason = fmt.Sprintf("skipped: not started %s after its nominal time, past the starting deadline of %s (%s)",
			now.Sub(f.Nominal).Round(time.Millisecond), e.policy.Misfire.StartingDeadline, of.fire.Reason)
		b.skipped = append(b.skipped, f.ID)
	case !b.looking() || !w.fires.ready(of, now):
		return nil
	case f.Backfill != "" && f.Parallel > 0 && of.dispatchedAt.IsZero() &&
		w.fires.backfillGoing(f.ID.Job, f.Backfill)+b.backfills[f.Backfill] >= f.Parallel:
		return nil // ready counts the backfill's runs going, not those placed just now
	default:
		node, _ := w.nodes.choose(e)
		if node == "" {
			b.misses++ // no eligible node is free; other jobs may have one
			return nil
		}
		f.Node, f.Reason = node, ""
		w.nodes.reserve(node)
		b.free--
		if f.Backfill != "" && of.dispatchedAt.IsZero() {
			b.backfills[f.Backfill]++ // not yet counted as going
		}
	}
	data, err := b.t.updateFire(w.keys.Fire(f.ID), of.rev, &f)
	if f.Node != "" {
		b.placed = append(b.placed, &openFire{fire: f, record: data})
	}
	return err
}

// release gives back the slots the batch reserved; once it is committed,
// the open-fire table counts the placed fires.
func (b *placeBatch) release() {
	for _, of := range b.placed {
		b.w.nodes.release(of.fire.Node)
	}
}

// sort orders the queue oldest nominal time first, dropping stale entries.
func (w *waitingQueue) sort() {
	if w.sorted {
		return
	}
	w.order = slices.DeleteFunc(w.order, func(of *openFire) bool { return !w.current(of) })
	slices.SortFunc(w.order, func(a, b *openFire) int {
		if c := a.fire.Nominal.Compare(b.fire.Nominal); c != 0 {
			return c
		}
		return cmpFireID(a.fire.ID, b.fire.ID)
	})
	w.sorted = true
}

// trim drops the stale entries (placed or skipped fires) from the front.
func (w *waitingQueue) trim() {
	i := 0
	for i < len(w.order) && !w.current(w.order[i]) {
		i++
	}
	w.order = w.order[i:]
}

// pastDeadline reports whether a waiting scheduled run has waited for a
// slot past its job's starting deadline: its first attempt, planned in
// time, not queued behind another run nor part of a backfill.
func (w *waitingQueue) pastDeadline(e *jobEntry, of *openFire, now time.Time) bool {
	f := of.fire
	deadline := e.policy.Misfire.StartingDeadline.D()
	return deadline > 0 && f.Trigger == store.TriggerSchedule && f.Attempt == 1 && f.After == "" && f.Backfill == "" &&
		f.PlannedAt.Sub(f.Nominal) <= deadline && now.Sub(f.Nominal) > deadline && w.fires.ready(of, now)
}
