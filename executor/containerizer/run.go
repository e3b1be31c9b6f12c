package containerizer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
)

// Result is how a container ended.
type Result struct {
	// ContainerID names the container once created, even when Run fails
	// later; the caller removes it (Remove) once the result is recorded.
	ContainerID string
	// PID is the container's first process as the host sees it, read just
	// after the start; 0 when the container had ended by then.
	PID      int
	ExitCode int // 128+N when killed by signal N
	// OOMKilled: the kernel killed a process of the container for going
	// over its memory limit.
	OOMKilled bool
	// TimedOut: Spec.Timeout passed and the container was stopped.
	TimedOut bool
	// Stopped: ctx ended and the container was stopped.
	Stopped bool
	// Detached: ctx ended with the cause ErrDetach, and the container
	// was left running.
	Detached bool
}

// ErrDetach, as the cause of the end of Run's or Resume's context
// (context.WithCancelCause), makes them return at once, leaving the
// container running, for another process to Resume.
var ErrDetach = errors.New("containerizer: leave the container running")

// ImageError says why a run's image is not there to run.
type ImageError struct {
	Image string             // the image reference, as the job gives it
	Pull  jobspec.PullPolicy // the run's pull policy
	Err   error              // the pull's error; nil when the image is missing and pull is never
}

// Error says which image is missing, under which policy, and why.
func (e *ImageError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("image %q not found locally and pull is %s", e.Image, e.Pull)
	}
	return fmt.Sprintf("pull image %q (pull: %s): %v", e.Image, e.Pull, e.Err)
}

// Unwrap returns the pull's error, if any.
func (e *ImageError) Unwrap() error { return e.Err }

// Run pulls the image as the spec's policy says, creates the container,
// starts it with its stdout and stderr written to out (in the order the
// engine sends them), and waits for it to end. It stops the container
// (SIGTERM, then SIGKILL after Grace) when the timeout passes or ctx ends.
//
// An error means the container did not run to an end (no image, bad
// configuration, engine unreachable). Either way, a Result with a
// ContainerID names a container the caller must Remove.
func (e *Engine) Run(ctx context.Context, s Spec, out io.Writer) (Result, error) {
	if err := e.ensureImage(ctx, s.Image, s.Pull); err != nil {
		return Result{}, err
	}
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: containerConfig(s), HostConfig: hostConfig(s)})
	if err != nil {
		return Result{}, fmt.Errorf("create container: %w", err)
	}
	res := Result{ContainerID: created.ID}
	log := e.log.With(zap.String("container", shortID(created.ID)), zap.String("fire", s.Labels[LabelFire]))
	for _, w := range created.Warnings {
		log.Info("engine warning on create", zap.String("warning", w))
	}
	// Whatever happens next, the engine must not be left waiting on us: calls
	// that end the container run even when ctx has ended.
	bg := context.WithoutCancel(ctx)

	// Attach before start, as docker run does, so no output is lost.
	attached, err := e.cli.ContainerAttach(ctx, created.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return res, fmt.Errorf("attach to container: %w", err)
	}
	defer attached.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(out, out, attached.Reader)
		copied <- err
	}()
	waitCtx, stopWaiting := context.WithCancel(bg)
	defer stopWaiting()
	if s.BeforeStart != nil {
		if err := s.BeforeStart(created.ID); err != nil {
			return res, err
		}
	}
	if _, err := e.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return res, fmt.Errorf("start container: %w", err)
	}
	// Waiting for "not running" after the start returns at once if it has
	// already ended.
	waited := e.cli.ContainerWait(waitCtx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	res.PID = e.readPID(bg, created.ID, log)

	ended, err := e.waitEnd(ctx, s, created.ID, &res, log, waited)
	if err != nil || res.Detached {
		return res, err
	}
	res.ExitCode = int(ended.StatusCode)
	if ended.Error != nil && ended.Error.Message != "" {
		return res, fmt.Errorf("wait for container: %s", ended.Error.Message)
	}
	awaitOutput(copied, log)
	if err := e.readEnd(bg, created.ID, &res); err != nil {
		return res, err
	}
	return res, nil
}

// Resume takes up a container Run started (by an executor that died):
// it writes the container's whole output to out, from its start, as the
// engine kept it (nothing, with a log driver the engine cannot read
// back), and waits for the container's end as Run does: s's
// timeout counts from the container's start, s's grace applies to a
// stop. It returns ErrGone when the container is not there.
func (e *Engine) Resume(ctx context.Context, id string, s Spec, out io.Writer) (Result, error) {
	res := Result{ContainerID: id}
	bg := context.WithoutCancel(ctx)
	info, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return res, ErrGone
	case err != nil:
		return res, fmt.Errorf("inspect container: %w", err)
	}
	log := e.log.With(zap.String("container", shortID(id)), zap.String("fire", s.Labels[LabelFire]))
	if state := info.Container.State; state != nil {
		res.PID = state.Pid
		if started, err := time.Parse(time.RFC3339Nano, state.StartedAt); err == nil && s.Timeout > 0 {
			s.Timeout = max(s.Timeout-time.Since(started), time.Nanosecond)
		}
	}
	copied := make(chan error, 1)
	if logs, err := e.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}); err != nil {
		// A log driver the engine cannot read back (none, syslog): what
		// the run printed since is not kept.
		log.Warn("the container's output cannot be read back; what it prints now is not kept", zap.Error(err))
		copied <- nil
	} else {
		defer logs.Close()
		go func() {
			_, err := stdcopy.StdCopy(out, out, logs)
			copied <- err
		}()
	}
	waitCtx, stopWaiting := context.WithCancel(bg)
	defer stopWaiting()
	waited := e.cli.ContainerWait(waitCtx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	ended, err := e.waitEnd(ctx, s, id, &res, log, waited)
	if err != nil || res.Detached {
		return res, err
	}
	res.ExitCode = int(ended.StatusCode)
	awaitOutput(copied, log)
	if err := e.readEnd(bg, id, &res); err != nil {
		return res, err
	}
	return res, nil
}

// ErrGone says a container is not there (removed, or never made).
var ErrGone = errors.New("containerizer: no such container")

// readPID reads the host PID of a started container's first process. The
// engine may answer an inspect just after the start before it has noted
// the PID (seen on a loaded machine), so a container that is not yet
// known to run is asked again, for up to a second; 0 means it ended first
// or the engine did not say.
func (e *Engine) readPID(ctx context.Context, id string, log *zap.Logger) int {
	const tries, pause = 20, 50 * time.Millisecond
	for i := range tries {
		info, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		switch {
		case err != nil:
			log.Warn("inspect the started container for its PID", zap.Error(err))
			return 0
		case info.Container.State == nil:
			return 0
		case info.Container.State.Pid > 0:
			return info.Container.State.Pid
		case info.Container.State.Status != container.StateCreated && info.Container.State.Status != container.StateRunning:
			return 0 // ended (or being removed) before it was seen running
		}
		if i < tries-1 {
			time.Sleep(pause)
		}
	}
	log.Warn("the engine gave no PID for the started container")
	return 0
}

// waitEnd waits for the started container id to end. When the spec's
// timeout passes or ctx ends first it stops the container (and notes which
// in res) and goes on waiting for the end; when ctx ends with ErrDetach,
// it returns at once (res.Detached).
func (e *Engine) waitEnd(ctx context.Context, s Spec, id string, res *Result, log *zap.Logger,
	waited client.ContainerWaitResult) (container.WaitResponse, error) {
	bg := context.WithoutCancel(ctx)
	var timeout <-chan time.Time
	if s.Timeout > 0 {
		timer := time.NewTimer(s.Timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	done := ctx.Done()
	for {
		select {
		case <-timeout:
			timeout, res.TimedOut = nil, true
			log.Debug("timeout: stopping container", zap.Duration("timeout", s.Timeout))
			e.stop(bg, id, s.Grace)
		case <-done:
			if errors.Is(context.Cause(ctx), ErrDetach) {
				res.Detached = true
				return container.WaitResponse{}, nil
			}
			done, res.Stopped = nil, true
			log.Debug("stopping container", zap.NamedError("cause", context.Cause(ctx)))
			e.stop(bg, id, s.Grace)
		case ended := <-waited.Result:
			return ended, nil
		case err := <-waited.Error:
			return container.WaitResponse{}, fmt.Errorf("wait for container: %w", err)
		}
	}
}

// awaitOutput waits for the copy of an ended container's output. The
// engine closes the attached stream once the output is all sent; a broken
// engine must not hold the run forever.
func awaitOutput(copied <-chan error, log *zap.Logger) {
	select {
	case err := <-copied:
		if err != nil {
			log.Warn("container output", zap.Error(err))
		}
	case <-time.After(10 * time.Second):
		log.Warn("container ended but its output stream did not; the output may be cut short")
	}
}

// readEnd reads from the engine how the ended container id exited: its
// exit code and whether it was killed for its memory.
func (e *Engine) readEnd(ctx context.Context, id string, res *Result) error {
	info, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect ended container: %w", err)
	}
	if state := info.Container.State; state != nil {
		res.ExitCode, res.OOMKilled = state.ExitCode, state.OOMKilled
	}
	return nil
}

// stop sends SIGTERM and, after grace (rounded up to whole seconds, as the
// API takes it), SIGKILL; it returns when the container has stopped.
func (e *Engine) stop(ctx context.Context, id string, grace time.Duration) {
	secs := int(math.Ceil(max(grace, 0).Seconds()))
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	if _, err := e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		e.log.Warn("stop container; killing it", zap.String("container", shortID(id)), zap.Error(err))
		if _, err := e.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			e.log.Warn("kill container", zap.String("container", shortID(id)), zap.Error(err))
		}
	}
}

// Remove removes a container, killing it first if it still runs. A
// container that is already gone is not an error.
func (e *Engine) Remove(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", shortID(id), err)
	}
	return nil
}

// ensureImage makes the image present per the pull policy.
func (e *Engine) ensureImage(ctx context.Context, ref string, pull jobspec.PullPolicy) error {
	_, err := e.cli.ImageInspect(ctx, ref)
	switch {
	case err != nil && !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect image %q: %w", ref, err)
	case err == nil && pull != jobspec.PullAlways:
		return nil
	case err != nil && pull == jobspec.PullNever:
		return &ImageError{Image: ref, Pull: pull}
	}
	if err := e.pull(ctx, ref); err != nil {
		return &ImageError{Image: ref, Pull: pull, Err: err}
	}
	return nil
}

// errPullTimeout is the cause of a pull that took longer than allowed.
var errPullTimeout = errors.New("containerizer: pull timed out")

// pull pulls ref within the engine's pull timeout. The engine reports
// failures inside the progress stream, so the stream is read to the end
// (Wait).
func (e *Engine) pull(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeoutCause(ctx, e.pullTimeout, errPullTimeout)
	defer cancel()
	started := time.Now()
	e.log.Info("pulling image", zap.String("image", ref))
	err := func() error {
		progress, err := e.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
		if err != nil {
			return err
		}
		defer progress.Close()
		return progress.Wait(ctx)
	}()
	if errors.Is(context.Cause(ctx), errPullTimeout) {
		return fmt.Errorf("no image after %s (the pull timeout)", e.pullTimeout)
	}
	if err != nil {
		return err
	}
	e.log.Info("image pulled", zap.String("image", ref), zap.Duration("took", time.Since(started)))
	return nil
}

func containerConfig(s Spec) *container.Config {
	return &container.Config{
		Image: s.Image, Entrypoint: s.Entrypoint, Cmd: s.Cmd,
		Env: s.Env, WorkingDir: s.WorkingDir, User: s.User, Labels: s.Labels,
	}
}

// hostConfig is how the engine runs a spec's container. Whatever a job
// says, it is never privileged, it starts with no capabilities (root in
// the container is then a user like any other, but for the owner of its
// own files) and takes only those the spec gives back, and no process in
// it gains privileges (setuid binaries, file capabilities).
func hostConfig(s Spec) *container.HostConfig {
	hc := &container.HostConfig{
		Binds:       s.Binds,
		NetworkMode: container.NetworkMode(s.Network),
		Resources:   container.Resources{NanoCPUs: s.NanoCPUs, Memory: s.Memory},
		Privileged:  false,
		CapDrop:     []string{"ALL"},
		CapAdd:      s.CapAdd,
		SecurityOpt: []string{"no-new-privileges"},
	}
	if s.Memory > 0 {
		hc.Resources.MemorySwap = s.Memory // no swap beyond the limit
	}
	return hc
}

func shortID(id string) string { return id[:min(len(id), 12)] }
