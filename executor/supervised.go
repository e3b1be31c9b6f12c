package executor

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/executor/runoutput"
	"github.com/aionsched/aion/executor/supervisor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Host runs go through a supervisor each (package supervisor), a process
// of their own that outlives the executor. Each has a directory under
// <output>/.runs holding the supervisor's files and claim.json: the
// attempt's record as claimed and the claim's revision, from which a
// restarted executor of the node adopts the run (adoptRuns).
const runsDir = ".runs"

// claimFile is what a run's directory says of its attempt, for adoption.
type claimFile struct {
	Fire    store.Fire       `json:"fire"`
	Rev     int64            `json:"rev"`   // the revision the result is compared on
	Fence   int64            `json:"fence"` // AION_FENCE
	Timeout jobspec.Duration `json:"timeout,omitempty"`
}

// runDir is the directory of one attempt's supervisor: short, because
// its socket's path must fit a Unix socket's 107 bytes.
func (x *Executor) runDir(id store.FireID, attempt int) string {
	sum := sha256.Sum256([]byte(id.String() + " " + strconv.Itoa(attempt)))
	return filepath.Join(x.cfg.OutputDir, runsDir, hex.EncodeToString(sum[:6]))
}

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
	dir := x.runDir(f.ID, f.Attempt)
	if err := runoutput.MakeDir(dir); err != nil {
		return runResult{state: store.FireFailed, reason: fmt.Sprintf("run directory: %v", err)}
	}
	if err := writeClaim(dir, claimFile{Fire: f, Rev: fence, Fence: fence, Timeout: job.Timeout}); err != nil {
		return runResult{state: store.FireFailed, reason: fmt.Sprintf("run directory: %v", err)}
	}
	run, err := x.sup.Start(dir, spec)
	if err != nil {
		_ = os.RemoveAll(dir)
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
			return x.resultOf(run.Dir(), run.Status, timeout, stopState)
		case <-done:
			done = nil
			var reason string
			stopState, reason = stopped(ctx)
			if err := run.Kill(reason); err != nil {
				x.log.Warn("ask the supervisor to stop a run", zap.String("dir", run.Dir()), zap.Error(err))
			}
		}
	}
}

// resultOf takes the status an exited supervisor left (status: from its
// connection or its directory dir) and makes it the run's result; stopState is the state of the stop the executor asked
// for, if it did. The run's directory goes once the result is recorded.
func (x *Executor) resultOf(dir string, status func() (supervisor.Status, error), timeout jobspec.Duration, stopState store.FireState) runResult {
	res := runResult{runDir: dir}
	st, err := status()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "supervisor.log"))
		res.state, res.reason = store.FireLost, fmt.Sprintf("its supervisor died without saying how the run ended (%v): %s", err, lastLine(log))
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

// lastLine is the last non-empty line of a log, for a reason.
func lastLine(log []byte) string {
	lines := string(log)
	for len(lines) > 0 && lines[len(lines)-1] == '\n' {
		lines = lines[:len(lines)-1]
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == '\n' {
			return lines[i+1:]
		}
	}
	if lines == "" {
		return "its log is empty"
	}
	return lines
}

func writeClaim(dir string, c claimFile) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "claim.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, runoutput.FileMode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readClaim(dir string) (claimFile, error) {
	var c claimFile
	data, err := os.ReadFile(filepath.Join(dir, "claim.json"))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(data, &c)
}

// runDirs lists the run directories under the output directory.
func (x *Executor) runDirs() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(x.cfg.OutputDir, runsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(x.cfg.OutputDir, runsDir, e.Name()))
		}
	}
	return dirs, nil
}
