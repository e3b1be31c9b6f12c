package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/executor/containerizer"
	"github.com/aionsched/aion/executor/runoutput"
	"github.com/aionsched/aion/executor/supervisor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// dockerPingTimeout bounds the look for a Docker engine at start.
const dockerPingTimeout = 3 * time.Second

// connectDocker looks for a Docker engine as the docker mode says. When it
// finds one, the node's labels say so (store.DockerLabel=true and the engine's
// version), and the engine is returned; the caller closes it. With no
// engine, it returns nil, or an error in mode on.
func (x *Executor) connectDocker(ctx context.Context) (*containerizer.Engine, error) {
	if x.cfg.Docker == DockerOff {
		x.log.Info("Docker is off: this node runs host jobs only")
		return nil, nil
	}
	pingCtx, cancel := context.WithTimeout(ctx, dockerPingTimeout)
	defer cancel()
	engine, err := containerizer.Connect(pingCtx, x.log, containerizer.WithPullTimeout(x.cfg.PullTimeout))
	if err != nil {
		if x.cfg.Docker == DockerOn {
			return nil, fmt.Errorf("executor: docker mode is on, but no engine answers: %w", err)
		}
		x.log.Info("no Docker engine: this node runs host jobs only", zap.Error(err))
		return nil, nil
	}
	labels := maps.Clone(x.cfg.Labels)
	if labels == nil {
		labels = make(map[string]string)
	}
	labels[store.DockerLabel] = "true"
	if v := labelValue(engine.Version()); v != "" {
		labels[store.DockerVersionLabel] = v
	}
	x.cfg.Labels = labels
	x.log.Info("Docker engine found: this node runs container jobs too",
		zap.String("version", engine.Version()), zap.String("api", engine.APIVersion()))
	return engine, nil
}

var notInLabel = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// labelValue makes s a valid label value ("20.10.24+dfsg1" becomes
// "20.10.24-dfsg1"), or "" when it cannot.
func labelValue(s string) string {
	v := notInLabel.ReplaceAllString(s, "-")
	if _, err := jobspec.ParseSelector("k=" + v); err != nil {
		return ""
	}
	return v
}

// removeLeftoverContainers kills and removes the containers a dead
// predecessor of this node left, but those adopted (keep, by ID). Their
// fires are lost already, or will be when the predecessor's lease ends;
// this replaces, for containers, the process-group sweep of killOrphans.
func (x *Executor) removeLeftoverContainers(ctx context.Context, keep map[string]bool) []containerizer.Leftover {
	if x.containers == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	removed, err := x.containers.RemoveLeftovers(ctx, x.cfg.NodeID, keep)
	for _, l := range removed {
		x.log.Warn("removed a container left by a previous executor", zap.String("fire", l.Fire),
			zap.Int("attempt", l.Attempt), zap.String("container", l.ContainerID), zap.String("state", l.State))
	}
	if err != nil {
		x.log.Error("remove containers left by a previous executor", zap.Error(err))
	}
	return removed
}

// executeContainer runs a container job. Its output goes to out, which
// keeps it as a host run's (the same per-attempt file, limit and tail), so
// the record and aion logs work alike. The container is removed after the
// result is recorded (runResult.cleanup).
//
// Before it starts, the container is fenced: the node's supervisor holds
// it as a run (fenceContainer), and kills it if the executor goes silent,
// as it kills a host run; the fence is released once the container has
// ended, and says then whether it killed the container. If the
// supervisor dies meanwhile, the container is stopped, as a host run dies
// with its supervisor: nothing would fence it.
func (x *Executor) executeContainer(ctx context.Context, job *jobspec.Job, from map[string]string, f store.Fire, fence int64, out io.Writer) runResult {
	var res runResult
	if x.containers == nil {
		res.state, res.reason = store.FireFailed, "container jobs need an executor with a Docker engine, and "+x.cfg.NodeID+" has none"
		return res
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	spec := containerizer.SpecFor(job, f.Args, envList(runEnv(make(map[string]string), job, from, f, fence)))
	spec.Labels = containerizer.Labels(f.ID.String(), f.ID.Job, f.Attempt, x.cfg.NodeID)
	spec.Grace = min(x.cfg.Grace, 10*time.Second)
	var fenced *supervisor.Run
	spec.BeforeStart = func(containerID string) error {
		meta := claimMeta{Fire: f, Rev: fence, Fence: fence, Timeout: job.Timeout, Container: containerID, OutputLimit: x.outputLimit(job)}
		run, err := x.fenceContainer(containerID, meta)
		if err != nil {
			return err
		}
		fenced = run
		go stopWithoutFence(ctx, cancel, run)
		return nil
	}
	ran, err := x.containers.Run(ctx, spec, out)
	if ran.Detached {
		return runResult{handedOff: true}
	}
	if id := ran.ContainerID; id != "" {
		res.cleanup = func() { x.removeContainer(context.WithoutCancel(ctx), id, f.ID) }
	}
	x.containerResult(ctx, &res, ran, err, spec, job.Timeout)
	if fenced != nil {
		x.releaseFence(fenced, &res)
	}
	return res
}

// resumeContainer holds the container run a predecessor of this executor
// left (adoptRuns), fenced by the run a: it follows the container to its
// end, its output rewritten whole from the engine's log, and returns its
// result.
func (x *Executor) resumeContainer(ctx context.Context, a adoption) runResult {
	f := a.claim.Fire
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go stopWithoutFence(ctx, cancel, a.run)
	// The engine gives the output again from the start: it replaces what
	// the predecessor kept, at its first byte.
	out := &runoutput.Keeper{Path: x.outputPath(f.ID, f.Attempt), Limit: a.claim.OutputLimit, TailBytes: x.cfg.TailBytes,
		Create: func(path string) (*os.File, error) {
			file, err := x.createOutput(path)
			if err == nil {
				err = file.Truncate(0)
			}
			return file, err
		}}
	spec := containerizer.Spec{Timeout: a.claim.Timeout.D(), Grace: min(x.cfg.Grace, 10*time.Second),
		Labels: containerizer.Labels(f.ID.String(), f.ID.Job, f.Attempt, x.cfg.NodeID)}
	var res runResult
	ran, err := x.containers.Resume(ctx, a.claim.Container, spec, out)
	res.output = out.Close()
	if ran.Detached {
		return runResult{handedOff: true}
	}
	res.cleanup = func() { x.removeContainer(context.WithoutCancel(ctx), a.claim.Container, f.ID) }
	x.containerResult(ctx, &res, ran, err, spec, a.claim.Timeout)
	if errors.Is(err, containerizer.ErrGone) {
		res.state, res.reason = store.FireLost, "its container was gone when a restarted executor took the run over"
	}
	x.releaseFence(a.run, &res)
	return res
}

// stopWithoutFence stops a container run (cancel) if the supervisor that
// fences it (run) dies before ctx ends.
func stopWithoutFence(ctx context.Context, cancel context.CancelCauseFunc, run *supervisor.Run) {
	select {
	case <-run.Done():
		if _, err := run.Status(); err != nil {
			cancel(errSupervisorGone)
		}
	case <-ctx.Done():
	}
}

// releaseFence releases the fence of a container that has ended, and
// makes res lost if the fence killed it first: the executor was silent
// for the fence meanwhile, and the leader counts such runs lost. The
// supervisor says which came first: a fence that ended is told on the
// socket before the answer to a release sent after.
func (x *Executor) releaseFence(fence *supervisor.Run, res *runResult) {
	if err := x.sup.Ack(fence.ID()); err != nil {
		x.log.Debug("release the fence of an ended container", zap.String("run", fence.ID()), zap.Error(err))
	}
	select {
	case <-fence.Done():
	case <-time.After(5 * time.Second):
		x.log.Warn("the supervisor did not answer the release of a container's fence", zap.String("run", fence.ID()))
		return
	}
	if st, err := fence.Status(); err == nil && (st.Ending == supervisor.Fenced || st.Ending == supervisor.Killed) {
		res.state, res.reason = store.FireLost, st.Reason
	}
}

// errSupervisorGone is the cause of a container run stopped because the
// supervisor fencing it died.
var errSupervisorGone = errors.New("killed: the node's supervisor died while it ran (see supervisor.log in the output directory's .runs)")

// fenceContainer asks the node's supervisor to fence the created container
// of the attempt meta names.
func (x *Executor) fenceContainer(containerID string, meta claimMeta) (*supervisor.Run, error) {
	data, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode the run's claim: %w", err)
	}
	addr := x.containers.Address()
	spec := supervisor.Spec{Fence: x.cfg.Fence, Container: &supervisor.Container{
		ID: containerID, Host: addr.Host, APIVersion: addr.APIVersion, CertPath: addr.CertPath}}
	run, err := x.sup.Start(runID(meta.Fire.ID, meta.Fire.Attempt), spec, data)
	if err != nil {
		return nil, fmt.Errorf("fence the container: %w", err)
	}
	return run, nil
}

// removeContainer removes the container of a finished run of fire id.
func (x *Executor) removeContainer(ctx context.Context, containerID string, id store.FireID) {
	if err := x.containers.Remove(ctx, containerID); err != nil {
		x.log.Warn("remove the container of a finished run; the next start of this executor removes it",
			zap.Stringer("fire", id), zap.Error(err))
	}
}

// containerResult sets res from how the container ran (Run's or
// Resume's result and error).
func (x *Executor) containerResult(ctx context.Context, res *runResult, ran containerizer.Result, err error, spec containerizer.Spec, timeout jobspec.Duration) {
	res.pid = ran.PID
	if err == nil {
		code := ran.ExitCode
		res.exitCode = &code
	}
	switch {
	case ran.TimedOut:
		res.state, res.reason = store.FireTimedOut, fmt.Sprintf("killed after the %s timeout", timeout)
	case errors.Is(context.Cause(ctx), errSupervisorGone):
		res.state, res.reason = store.FireLost, errSupervisorGone.Error()
	case ran.Stopped || (err != nil && ctx.Err() != nil):
		res.state, res.reason = stopped(ctx)
	case err != nil:
		res.state, res.reason = store.FireFailed, err.Error()
	case ran.OOMKilled && ran.ExitCode != 0:
		res.state, res.reason = store.FireFailed, "killed: out of memory"
		if spec.Memory > 0 {
			res.reason += fmt.Sprintf(" (limit %s)", formatBytes(spec.Memory))
		}
	case ran.ExitCode == 0:
		res.state = store.FireSucceeded
	default:
		res.state, res.reason = store.FireFailed, fmt.Sprintf("exit status %d", ran.ExitCode)
	}
}

// formatBytes writes a size as a job file would: 32MiB, 1GiB, 1500000 B.
func formatBytes(b int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if b >= u.size && b%u.size == 0 {
			return fmt.Sprintf("%d%s", b/u.size, u.name)
		}
	}
	if b >= 1<<20 {
		return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d B", b)
}
