package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/executor/runoutput"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// handle claims a dispatched fire and runs it. A dispatch that does not
// match the record (already claimed, another node, another attempt) is
// dropped: each attempt starts at most once.
func (x *Executor) handle(ctx context.Context, d store.Dispatch) {
	log := x.log.With(zap.Stringer("fire", d.Fire))
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	x.mu.Lock()
	if _, dup := x.running[d.Fire]; dup || len(x.running) >= x.cfg.Slots {
		x.mu.Unlock()
		return
	}
	x.running[d.Fire] = activeRun{attempt: d.Attempt, cancel: cancel}
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.running, d.Fire)
		x.mu.Unlock()
	}()

	c, ok, err := x.claimBatched(ctx, d)
	if err != nil {
		log.Warn("claim", zap.Error(err))
	}
	if !ok {
		return
	}
	f, claimRev := c.fire, c.rev
	x.emit(f)

	var result runResult
	job, err := c.job, c.jobErr
	if err == nil {
		job, err = x.allowed(c.job)
	}
	if err != nil {
		log.Warn("run refused", zap.Error(err))
		result = runResult{state: store.FireFailed, reason: err.Error()}
	} else {
		result = x.execute(runCtx, job, f, claimRev)
	}
	x.finish(ctx, f, claimRev, result, log)
}

// finish records the result of the attempt f, claimed at claimRev, and
// publishes its event.
func (x *Executor) finish(ctx context.Context, f store.Fire, claimRev int64, result runResult, log *zap.Logger) {
	if result.handedOff {
		log.Debug("run handed off to the next executor of the node")
		return
	}
	f.State, f.Reason, f.PID = result.state, result.reason, result.pid
	f.ExitCode = result.exitCode
	f.EndedAt = time.Now().UTC()
	recordOutput(result.output, &f)
	if !result.startedAt.IsZero() {
		f.StartedAt = result.startedAt.UTC() // the process itself, not the claim
	}
	// Record the result even when shutting down: it must not be lost.
	recordCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer done()
	rev, err := x.recordBatched(recordCtx, f, claimRev)
	if result.cleanup != nil {
		defer result.cleanup() // after the result is recorded, or could not be
	}
	if result.supervised != "" && err == nil {
		// Recorded, or superseded (marked lost): the supervisor may
		// forget it. Kept on an error, for a restarted executor to record.
		if err := x.sup.Ack(result.supervised); err != nil {
			log.Debug("tell the supervisor a result is recorded", zap.Error(err))
		}
	}
	switch {
	case err != nil:
		log.Error("record result", zap.Error(err))
	case rev == 0:
		log.Warn("result not recorded: the fire record changed while running (marked lost?)")
	default:
		x.emit(f)
		log.Debug("run finished", zap.String("state", string(f.State)), zap.Intp("exit_code", f.ExitCode),
			zap.Duration("took", f.EndedAt.Sub(f.StartedAt)))
	}
}

func (x *Executor) emit(f store.Fire) {
	ev := store.FireEvent{Fire: f.ID, State: f.State, Node: x.cfg.NodeID, At: time.Now().UTC(), ExitCode: f.ExitCode}
	if f.State.Final() {
		// The reason only: a run's output may hold anything, and events go
		// to anyone on NATS (aion logs reads output, from the executor).
		ev.Summary = f.Reason
		if len(ev.Summary) > 200 {
			ev.Summary = ev.Summary[:200] + "…"
		}
	}
	data, err := json.Marshal(ev)
	if err != nil { // strings and the current time: it cannot fail
		x.log.Error("encode fire event; not published", zap.Stringer("fire", f.ID), zap.Error(err))
		return
	}
	if err := x.nats.Publish(store.EventSubject(x.cfg.SubjectPrefix, f.ID.Job), data); err != nil {
		x.log.Debug("publish event", zap.Error(err))
	}
}

type runResult struct {
	state    store.FireState
	reason   string
	exitCode *int
	pid      int
	output   runoutput.Kept
	// cleanup, if set, runs once the result is recorded (a container run
	// removes its container).
	cleanup func()
	// supervised is a supervised run's ID: the supervisor forgets it once
	// the result is recorded.
	supervised string
	// startedAt is when the process was started (zero: as claimed).
	startedAt time.Time
	// handedOff: the run goes on under the supervisor, for the next
	// executor of the node (ErrHandOff); there is no result to record.
	handedOff bool
}

// execute runs the job: a container job in its container, any other under
// a supervisor, in its own process group, so a timeout or shutdown kills
// everything it started. Either way its output is kept by a
// runoutput.Keeper.
//
// fence is the attempt's fencing token (AION_FENCE): the revision of its
// claim, which only grows from one attempt or run to the next.
func (x *Executor) execute(ctx context.Context, job *jobspec.Job, f store.Fire, fence int64) runResult {
	from, err := x.envFrom(job)
	if err != nil {
		return runResult{state: store.FireFailed, reason: err.Error()}
	}
	if job.Container == nil {
		return x.executeHost(ctx, job, from, f, fence)
	}
	out := x.newKeeper(job, x.outputPath(f.ID, f.Attempt))
	res := x.executeContainer(ctx, job, from, f, fence, out)
	res.output = out.Close()
	if res.output.Err != "" {
		x.log.Warn("output not kept whole", zap.Stringer("fire", f.ID), zap.String("file", out.Path), zap.String("error", res.output.Err))
	}
	return res
}

// stopped is the state and reason of a run stopped because ctx ended: a
// kill request cancels it, a lost registration loses it (the leader would
// count it lost too), anything else (the executor stopping) fails it with
// the cause.
func stopped(ctx context.Context) (store.FireState, string) {
	var killed killedError
	switch cause := context.Cause(ctx); {
	case errors.As(cause, &killed):
		return store.FireCancelled, killed.reason
	case errors.Is(cause, errLeaseLost):
		return store.FireLost, cause.Error()
	case cause != nil && cause != context.Canceled:
		return store.FireFailed, cause.Error()
	default:
		return store.FireFailed, "killed: the executor stopped"
	}
}

// credential resolves "user[:group]" (names or numbers) for running as them.
func credential(spec string) (*syscall.Credential, error) {
	name, group, _ := strings.Cut(spec, ":")
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			if g, err = user.LookupGroupId(group); err != nil {
				return nil, fmt.Errorf("group %q: %w", group, err)
			}
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	if os.Geteuid() != 0 && uint64(os.Geteuid()) != uid {
		return nil, fmt.Errorf("running as %q needs an executor running as root", spec)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
