package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

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
	f.State, f.Reason, f.PID = result.state, result.reason, result.pid
	f.ExitCode = result.exitCode
	f.EndedAt = time.Now().UTC()
	result.output.record(&f)
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
	output   kept
	// cleanup, if set, runs once the result is recorded (a container run
	// removes its container).
	cleanup func()
	// startedAt is when the process was started (zero: as claimed).
	startedAt time.Time
}

// execute runs the job: a container job in its container, any other in its
// own process group, so a timeout or shutdown kills everything it started.
// Either way its output goes to a keeper (see output.go).
//
// fence is the attempt's fencing token (AION_FENCE): the revision of its
// claim, which only grows from one attempt or run to the next.
func (x *Executor) execute(ctx context.Context, job *jobspec.Job, f store.Fire, fence int64) runResult {
	from, err := x.envFrom(job)
	if err != nil {
		return runResult{state: store.FireFailed, reason: err.Error()}
	}
	out := x.newKeeper(job, x.outputPath(f.ID, f.Attempt))
	if job.Container == nil {
		return x.executeHost(ctx, job, from, f, fence, out)
	}
	res := x.executeContainer(ctx, job, from, f, fence, out)
	res.output = out.close()
	if res.output.err != nil {
		x.log.Warn("output not kept whole", zap.Stringer("fire", f.ID), zap.String("file", out.path), zap.Error(res.output.err))
	}
	return res
}

// executeHost runs a host job: it starts the process with its output
// going through a pipe to out, waits for it to end, time out or be
// stopped, and reads how it ended and what was kept of its output.
func (x *Executor) executeHost(ctx context.Context, job *jobspec.Job, from map[string]string, f store.Fire, fence int64, keep *keeper) runResult {
	// The directory exists before the run starts (once per job: cached),
	// so a job may write to $AION_OUTPUT itself. If it cannot be made the
	// job runs all the same, and its record says the output was not kept.
	if err := x.ensureDir(filepath.Dir(keep.path)); err != nil {
		keep.err = fmt.Errorf("output directory: %w", err)
	}
	out, err := startOutput(keep)
	if err != nil {
		return runResult{state: store.FireFailed, reason: fmt.Sprintf("output pipe: %v", err)}
	}
	cmd, err := hostCommand(job, from, f, fence, keep.path, out.w, x.cfg.Policy.AllowsRoot())
	if err != nil {
		out.finish(0)
		return runResult{state: store.FireFailed, reason: err.Error()}
	}
	startedAt := time.Now()
	if err := cmd.Start(); err != nil {
		out.finish(0)
		return runResult{state: store.FireFailed, reason: fmt.Sprintf("start: %v", err)}
	}
	out.started()
	res := runResult{pid: cmd.Process.Pid, startedAt: startedAt}
	var waitErr error
	res.state, res.reason, waitErr = x.waitHost(ctx, job, cmd)
	code := exitCode(cmd.ProcessState)
	res.exitCode = &code
	if res.state == "" {
		res.state, res.reason = exitState(waitErr, code)
	}
	x.journalExit(f, res)
	res.output = out.finish(outputDrain)
	if res.output.err != nil {
		x.log.Warn("output not kept whole", zap.Stringer("fire", f.ID), zap.String("file", keep.path), zap.Error(res.output.err))
	}
	return res
}

// journalExit notes how a host run ended in the exit journal, before the
// result goes to etcd, so a successor can record it if this executor dies
// in between. A failed write only costs that: it is logged.
func (x *Executor) journalExit(f store.Fire, res runResult) {
	e := exitEntry{Fire: f.ID.String(), Attempt: f.Attempt, State: res.state, Reason: res.reason, ExitCode: res.exitCode,
		PID: res.pid, StartedAt: res.startedAt.UTC(), EndedAt: time.Now().UTC()}
	if err := x.exits.add(e); err != nil {
		x.log.Warn("exit journal", zap.Stringer("fire", f.ID), zap.Error(err))
	}
}

// hostCommand builds the process of a host run, not yet started: the
// job's command run by its shell (/bin/sh unless it sets shell) or argv (manual-run arguments replace the argv's or
// become the shell's $1, $2, ...), its environment and workdir, stdout and
// stderr to out, in a process group of its own, as the job's user if set.
//
// allowsRoot says whether the node's policy lets jobs name root: a user
// that resolves to uid 0 is refused otherwise, whatever its name.
func hostCommand(job *jobspec.Job, from map[string]string, f store.Fire, fence int64, outPath string, out *os.File, allowsRoot bool) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	switch {
	case job.Command != "":
		// Manual-run arguments become $1, $2, ...; $0 names the job.
		cmd = exec.Command(job.ShellPath(), append([]string{"-c", job.Command, job.Name}, f.Args...)...)
	case len(f.Args) > 0:
		cmd = exec.Command(job.Args[0], f.Args...)
	default:
		cmd = exec.Command(job.Args[0], job.Args[1:]...)
	}
	cmd.Env = envFor(job, from, f, fence, outPath)
	cmd.Dir = job.Workdir
	cmd.Stdout, cmd.Stderr = out, out // an *os.File: Wait never waits on copying
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if job.User != "" {
		cred, err := credential(job.User)
		if err != nil {
			return nil, err
		}
		if cred.Uid == 0 && !allowsRoot {
			// A user listed under another name (or the executor's own
			// user) whose uid is 0 is root all the same.
			return nil, fmt.Errorf("%w: user %q is root (uid 0), and the node's run_as does not list root", errPolicy, job.User)
		}
		cmd.SysProcAttr.Credential = cred
	}
	return cmd, nil
}

// waitHost waits for a started host run to end. When the job's timeout
// passes or ctx ends first it kills the process group, and returns the
// state and reason to record; otherwise state is "". Either way it returns
// the result of Wait, once the whole group is gone.
func (x *Executor) waitHost(ctx context.Context, job *jobspec.Job, cmd *exec.Cmd) (state store.FireState, reason string, waitErr error) {
	pid := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var timeout <-chan time.Time
	if job.Timeout > 0 {
		timer := time.NewTimer(job.Timeout.D())
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case waitErr = <-waited:
	case <-timeout:
		state, reason = store.FireTimedOut, fmt.Sprintf("killed after the %s timeout", job.Timeout)
		reason, waitErr = x.stopGroup(pid, waited, reason)
	case <-ctx.Done():
		state, reason = stopped(ctx)
		reason, waitErr = x.stopGroup(pid, waited, reason)
	}
	// Whatever the process left behind in its group goes too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return state, reason, waitErr
}

// exitCode is the exit code of an ended process, 128+N when signal N
// killed it.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// exitState is the state and reason of a host run that ended by itself,
// from its Wait result and exit code.
func exitState(waitErr error, code int) (store.FireState, string) {
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
		return store.FireSucceeded, ""
	case errors.As(waitErr, &exitErr):
		return store.FireFailed, fmt.Sprintf("exit status %d", code)
	default:
		return store.FireFailed, waitErr.Error()
	}
}

// outputDrain is how long a run's end waits for the last of its output:
// the process group is killed by then, so only a process that left the
// group can hold the pipe longer.
const outputDrain = 500 * time.Millisecond

// stopped is the state and reason of a run stopped because ctx ended: a
// kill request cancels it, anything else (the executor stopping, or losing
// its registration) fails it with the cause.
func stopped(ctx context.Context) (store.FireState, string) {
	var killed killedError
	switch cause := context.Cause(ctx); {
	case errors.As(cause, &killed):
		return store.FireCancelled, killed.reason
	case cause != nil && cause != context.Canceled:
		return store.FireFailed, cause.Error()
	default:
		return store.FireFailed, "killed: the executor stopped"
	}
}

// stopGroup stops a run's process group (killGroup) and returns the
// reason with how it went and the leader's Wait result: SIGTERM, or SIGKILL
// after the grace period.
func (x *Executor) stopGroup(pid int, waited <-chan error, reason string) (string, error) {
	waitErr, grace, killed := x.killGroup(pid, waited)
	if killed {
		return fmt.Sprintf("%s (SIGTERM, then SIGKILL after the %s grace period)", reason, grace), waitErr
	}
	return reason + " (SIGTERM)", waitErr
}

// killGroup sends SIGTERM to the process group, then SIGKILL after the
// grace period (at most 10 s), and returns the process group leader's Wait
// result, the grace period, and whether SIGKILL was needed.
func (x *Executor) killGroup(pid int, waited <-chan error) (waitErr error, grace time.Duration, killed bool) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	grace = min(x.cfg.Grace, 10*time.Second)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case err := <-waited:
		return err, grace, false
	case <-timer.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return <-waited, grace, true
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
