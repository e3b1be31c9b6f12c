package scheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// reconciler repairs, once a second, what messages cannot: fires planned
// but not claimed are placed and dispatched again, running fires whose
// record asks for a kill get the kill hint again, fires running on an
// executor whose lease is gone become lost, final fires whose effects are
// unrecorded are processed, and requests that met a conflict are acted on
// again.
type reconciler struct {
	keys            store.Keys
	log             *zap.Logger
	redispatchAfter time.Duration
	jobs            *jobTable
	fires           *openFires
	nodes           *placement
	waiting         *waitingQueue
	finisher        *finisher
	intents         *intents
	fence           *fence
	send            *dispatcher
	// orphans holds when each running fire was first seen without its
	// executor (see orphaned).
	orphans map[store.FireID]time.Time
}

func (r *reconciler) reconcile(ctx context.Context, now time.Time) error {
	// Nodes may have come or gone: place what waits, batched, first.
	if err := r.waiting.place(ctx, now, true); err != nil {
		return err
	}
	ids := make([]store.FireID, 0, r.fires.len())
	for id := range r.fires.byID {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmpFireID)
	orphans := make(map[store.FireID]time.Time, len(r.orphans))
	defer func() { r.orphans = orphans }() // only the fires still orphaned stay
	for _, id := range ids {
		of := r.fires.get(id)
		if of == nil {
			continue
		}
		var err error
		switch {
		case of.fire.State == store.FireRunning && r.orphaned(of, now, orphans):
			err = r.markLost(ctx, of, now)
		case of.fire.KillAsked():
			r.send.kill(of.fire) // the hint may have been lost
		case of.fire.State == store.FirePlanned && of.fire.Node != "" && r.unclaimedPastDeadline(of, now):
			err = r.skipUnclaimed(ctx, of, now)
		case of.fire.State == store.FirePlanned && r.fires.ready(of, now) &&
			(of.fire.Node == "" || !r.nodes.live(of.fire.Node) || now.Sub(of.dispatchedAt) > r.redispatchAfter):
			err = r.placeAgain(ctx, of, now)
		}
		if err != nil {
			return err
		}
	}
	if err := r.finisher.processPending(ctx); err != nil {
		return err
	}
	return r.intents.retryDirty(ctx)
}

// unclaimedPastDeadline reports whether a scheduled run placed on a node
// is still unclaimed past its job's starting deadline: its dispatches did
// not reach the executor (NATS down) or found it full. It is skipped then,
// as a run waiting for a slot is (waitingQueue.pastDeadline).
func (r *reconciler) unclaimedPastDeadline(of *openFire, now time.Time) bool {
	e := r.jobs.get(of.fire.ID.Job)
	return e != nil && r.waiting.pastDeadline(e, of, now)
}

// skipUnclaimed records an unclaimed run past its starting deadline as
// skipped, compared on the record's revision: a claim that came first
// wins, and the run goes on.
func (r *reconciler) skipUnclaimed(ctx context.Context, of *openFire, now time.Time) error {
	f := of.fire
	f.State, f.EndedAt = store.FireSkipped, now.UTC()
	f.Reason = fmt.Sprintf("skipped: not started %s after its nominal time, past the starting deadline of %s (dispatched to %s, not claimed)",
		now.Sub(f.Nominal).Round(time.Millisecond), r.jobs.get(f.ID.Job).policy.Misfire.StartingDeadline, f.Node)
	next, err := r.rewrite(ctx, f, of.rev)
	if next == nil {
		return err
	}
	r.log.Warn("run skipped: not claimed past its starting deadline", zap.Stringer("fire", f.ID), zap.String("node", f.Node))
	r.waiting.metrics.skipped.WithLabelValues("deadline").Inc()
	// Closed now, so nothing dispatches it meanwhile; the watch brings its
	// end, which is processed like any run's end.
	r.fires.close(f.ID)
	return nil
}

// placeAgain chooses a node again for a planned fire that was not claimed
// and dispatches it; the record changes (fenced, compared on its revision)
// only if the node does. A fire of a deleted job is skipped.
func (r *reconciler) placeAgain(ctx context.Context, of *openFire, now time.Time) error {
	e := r.jobs.get(of.fire.ID.Job)
	if e == nil {
		f := of.fire
		f.State, f.EndedAt = store.FireSkipped, now.UTC()
		f.Reason = "skipped: the job was deleted before the run started"
		_, err := r.rewrite(ctx, f, of.rev)
		return err
	}
	r.nodes.release(of.fire.Node) // do not count the fire against its own old node
	node, reason := r.nodes.choose(e)
	r.nodes.reserve(of.fire.Node)
	if node == of.fire.Node && reason == of.fire.Reason {
		r.send.dispatch(of, now)
		return nil
	}
	f := of.fire
	f.Node, f.Reason = node, reason
	next, err := r.rewrite(ctx, f, of.rev)
	if next == nil {
		return err
	}
	r.fires.open(next)
	r.send.dispatch(next, now)
	return nil
}

// lostMargin is how much longer than a run's fence the leader waits
// before it counts the run lost: for the supervisor's check interval, the
// kernel's SIGKILL and clocks that run at slightly different rates.
const lostMargin = time.Second

// orphaned reports whether a running fire's executor is gone, for long
// enough that the run is surely dead. Gone: no live registration of its
// node, or one on another lease than the one the attempt was claimed (or
// adopted) under, a successor that did not adopt it. Long enough: the
// run's fence, FenceTimeout, plus lostMargin since this leader first saw
// it gone (it cannot see it before the lease has expired, and the
// supervisor kills the run at most the fence after its executor last
// held the lease surely); at once for a record without a fence. orphans
// keeps when each fire was first seen gone, for the next round.
func (r *reconciler) orphaned(of *openFire, now time.Time, orphans map[store.FireID]time.Time) bool {
	f := of.fire
	if r.nodes.live(f.Node) && (f.Lease == 0 || r.nodes.lease(f.Node) == f.Lease) {
		return false
	}
	if f.FenceTimeout <= 0 {
		return true
	}
	since, seen := r.orphans[f.ID]
	if !seen {
		since = now
	}
	orphans[f.ID] = since
	return now.Sub(since) >= f.FenceTimeout+lostMargin
}

// markLost records that a running fire's executor died.
func (r *reconciler) markLost(ctx context.Context, of *openFire, now time.Time) error {
	f := of.fire
	f.State = store.FireLost
	f.EndedAt = now.UTC()
	f.Reason = fmt.Sprintf("executor %s lost its lease while running it", f.Node)
	if r.nodes.live(f.Node) {
		f.Reason = fmt.Sprintf("executor %s was replaced while running it, and its successor did not adopt the run", f.Node)
	}
	r.log.Warn("fire lost", zap.Stringer("fire", f.ID), zap.String("node", f.Node))
	_, err := r.rewrite(ctx, f, of.rev)
	return err
}

// rewrite replaces a fire record if it is still at rev (fenced) and returns
// it as written. When the record had changed, it returns nil and no error:
// the watch brings the newer record, and the next round looks again.
func (r *reconciler) rewrite(ctx context.Context, f store.Fire, rev int64) (*openFire, error) {
	of, err := r.fence.rewriteFire(ctx, r.keys, f, rev)
	if conflicted(err) {
		return nil, nil
	}
	return of, err
}
