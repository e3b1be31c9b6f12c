package executor

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/executor/runoutput"
	"github.com/aionsched/aion/executor/supervisor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Host runs go through the node's supervisor (package supervisor), a
// process that outlives the executor. Each run is known to it by runID and
// carries a claimMeta: the attempt's record as claimed and the
// claim's revision, from which a restarted executor of the node adopts the
// run (adoptRuns).

// claimMeta is what the supervisor keeps of an attempt for the executor
// (the meta of its run).
type claimMeta struct {
	Fire    store.Fire       `json:"fire"`
	Rev     int64            `json:"rev"`   // the revision the result is compared on
	Fence   int64            `json:"fence"` // AION_FENCE
	Timeout jobspec.Duration `json:"timeout,omitempty"`
	// Container, for a container run, is its container's ID: the
	// supervisor holds only its fence, and a restarted executor resumes
	// it (resumeContainer) with OutputLimit.
	Container   string `json:"container,omitempty"`
	OutputLimit int64  `json:"output_limit,omitempty"`
}

// runsDir holds the node supervisor's socket and log, under the output
// directory.
const runsDir = ".runs"

// runID names an attempt to the supervisor.
func runID(id store.FireID, attempt int) string { return id.String() + " " + strconv.Itoa(attempt) }

// executeHost runs a host job under a supervisor and waits for its end.
//
// fence, AION_FENCE, is the revision of the attempt's claim, which the
// result is compared on.
func (x *Executor) executeHost(ctx context.Context, job *jobspec.Job, from map[string]string, f store.Fire, fence int64) runResult {
	outPath := x.outputPath(f.ID, f.Attempt)
	spec, err := x.hostSpec(job, from, f, fence, outPath)
	if err != nil {
		return runResult{state: store.FireFailed, reason: err.Error()}
	}
	// The directory exists before the run starts (once per job: cached),
	// so a job may write to $AION_OUTPUT itself. If it cannot be made the
	// job runs all the same, and its record says the output was not kept.
	if err := x.ensureDir(filepath.Dir(outPath)); err != nil {
		x.log.Warn("output directory", zap.Stringer("fire", f.ID), zap.Error(err))
	}
	meta, err := json.Marshal(claimMeta{Fire: f, Rev: fence, Fence: fence, Timeout: job.Timeout})
	if err != nil {
		return runResult{state: store.FireFailed, reason: fmt.Sprintf("encode the run's claim: %v", err)}
	}
	run, err := x.sup.Start(runID(f.ID, f.Attempt), spec, meta)
	if err != nil {
		return runResult{state: store.FireFailed, reason: err.Error()}
	}
	return x.supervise(ctx, run, job.Timeout)
}

// hostSpec is what a host run's supervisor runs: the job's command by its
// shell (/bin/sh unless it sets shell) or its argv (manual-run arguments
// replace the argv's or become the shell's $1, $2, ...), its environment
// (envFor) and workdir, as the job's user if set, with the node's output
// limit, grace and fence.
func (x *Executor) hostSpec(job *jobspec.Job, from map[string]string, f store.Fire, fence int64, outPath string) (supervisor.Spec, error) {
	var args []string
	switch {
	case job.Command != "":
		// Manual-run arguments become $1, $2, ...; $0 names the job.
		args = append([]string{job.ShellPath(), "-c", job.Command, job.Name}, f.Args...)
	case len(f.Args) > 0:
		args = append([]string{job.Args[0]}, f.Args...)
	default:
		args = job.Args
	}
	spec := supervisor.Spec{
		Path: args[0], Args: args, Env: envFor(job, from, f, fence, outPath), Dir: job.Workdir,
		Output: outPath, OutputLimit: x.outputLimit(job), TailBytes: x.cfg.TailBytes,
		Timeout: job.Timeout.D(), Grace: min(x.cfg.Grace, 10*time.Second), Fence: x.cfg.Fence,
	}
	if job.User != "" {
		cred, err := credential(job.User)
		if err != nil {
			return spec, err
		}
		if cred.Uid == 0 && !x.cfg.Policy.AllowsRoot() {
			// A user listed under another name (or the executor's own
			// user) whose uid is 0 is root all the same.
			return spec, fmt.Errorf("%w: user %q is root (uid 0), and the node's run_as does not list root", errPolicy, job.User)
		}
		spec.UID, spec.GID = &cred.Uid, cred.Gid
	}
	return spec, nil
}

// supervise holds a supervised run until it ends: it asks the supervisor
// to stop the run when ctx ends (a kill, a shutdown, the lease lost), and
// returns the result its status gives. (The executor's beats keep the run
// alive: beat.)
func (x *Executor) supervise(ctx context.Context, run *supervisor.Run, timeout jobspec.Duration) runResult {
	done := ctx.Done()
	var stopState store.FireState // set once a stop was asked for
	for {
		select {
		case <-run.Done():
			return x.resultOf(run.ID(), run.Status, timeout, stopState)
		case <-done:
			if handingOff(ctx) {
				return runResult{handedOff: true}
			}
			done = nil
			var reason string
			stopState, reason = stopped(ctx)
			if err := run.Kill(reason); err != nil {
				x.log.Warn("ask the supervisor to stop a run", zap.String("run", run.ID()), zap.Error(err))
			}
		}
	}
}

// resultOf makes the status of an ended run (from status) its result;
// stopState is the state of the stop the executor asked for, if it did.
// The supervisor forgets the run once its result is recorded.
func (x *Executor) resultOf(id string, status func() (supervisor.Status, error), timeout jobspec.Duration, stopState store.FireState) runResult {
	res := runResult{supervised: id}
	st, err := status()
	if err != nil {
		res.state, res.reason = store.FireLost, "killed: the node's supervisor died while it ran (see supervisor.log in the output directory's .runs)"
		return res
	}
	res.pid, res.startedAt = st.PID, st.StartedAt
	res.output = runoutput.Kept{Tail: st.Output.Tail, Path: st.Output.Path, Err: st.Output.Err, Limit: st.Output.Limit}
	if st.Ending != supervisor.NoStart {
		code := st.ExitCode
		res.exitCode = &code
	}
	how := " (SIGTERM)"
	if st.Escalated {
		how = fmt.Sprintf(" (SIGTERM, then SIGKILL after the %s grace period)", min(x.cfg.Grace, 10*time.Second))
	}
	switch st.Ending {
	case supervisor.Exited:
		if st.ExitCode != 0 {
			res.state, res.reason = store.FireFailed, fmt.Sprintf("exit status %d", st.ExitCode)
		} else {
			res.state = store.FireSucceeded
		}
	case supervisor.TimedOut:
		res.state, res.reason = store.FireTimedOut, fmt.Sprintf("killed after the %s timeout%s", timeout, how)
	case supervisor.Killed:
		// An adopted run stopped on an earlier executor's request: why is
		// in the reason, the state is unknown here.
		res.state, res.reason = cmp.Or(stopState, store.FireFailed), st.Reason+how
	case supervisor.Fenced:
		res.state, res.reason = store.FireLost, st.Reason
	default:
		res.state, res.reason = store.FireFailed, st.Reason
	}
	return res
}
