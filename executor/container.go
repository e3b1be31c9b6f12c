package executor

import (
	"context"
	"fmt"
	"io"
	"maps"
	"regexp"
	"time"

	"go.uber.org/zap"

	"github.com/aionsched/aion/executor/containerizer"
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
// predecessor of this node left. Their fires are lost already, or will be
// when the predecessor's lease ends; this replaces, for containers, the
// process-group sweep of killOrphans.
func (x *Executor) removeLeftoverContainers(ctx context.Context) []containerizer.Leftover {
	if x.containers == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	removed, err := x.containers.RemoveLeftovers(ctx, x.cfg.NodeID)
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
func (x *Executor) executeContainer(ctx context.Context, job *jobspec.Job, from map[string]string, f store.Fire, fence int64, out io.Writer) runResult {
	var res runResult
	if x.containers == nil {
		res.state, res.reason = store.FireFailed, "container jobs need an executor with a Docker engine, and "+x.cfg.NodeID+" has none"
		return res
	}
	spec := containerizer.SpecFor(job, f.Args, envList(runEnv(make(map[string]string), job, from, f, fence)))
	spec.Labels = containerizer.Labels(f.ID.String(), f.ID.Job, f.Attempt, x.cfg.NodeID)
	spec.Grace = min(x.cfg.Grace, 10*time.Second)
	ran, err := x.containers.Run(ctx, spec, out)
	if id := ran.ContainerID; id != "" {
		res.cleanup = func() {
			if err := x.containers.Remove(context.WithoutCancel(ctx), id); err != nil {
				x.log.Warn("remove the container of a finished run; the next start of this executor removes it",
					zap.Stringer("fire", f.ID), zap.Error(err))
			}
		}
	}
	res.pid = ran.PID
	if err == nil {
		code := ran.ExitCode
		res.exitCode = &code
	}
	switch {
	case ran.TimedOut:
		res.state, res.reason = store.FireTimedOut, fmt.Sprintf("killed after the %s timeout", job.Timeout)
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
	return res
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
