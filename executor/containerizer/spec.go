package containerizer

import (
	"strconv"
	"time"

	"github.com/aionsched/aion/jobspec"
)

// Spec is one container to run.
type Spec struct {
	Image string             // the image reference
	Pull  jobspec.PullPolicy // when Run pulls the image
	// Entrypoint and Cmd as the Engine API takes them: an empty Entrypoint
	// keeps the image's, an empty Cmd (with an empty Entrypoint) the
	// image's CMD.
	Entrypoint []string
	Cmd        []string
	Env        []string          // NAME=value, on top of the image's ENV
	WorkingDir string            // inside the container; empty: the image's
	User       string            // user[:group] inside the container; empty: the image's
	Binds      []string          // host:container[:ro|rw]
	Network    string            // the network mode (bridge, host, none, or a network's name); empty: the engine's default
	CapAdd     []string          // capabilities given back; a container starts with none (see hostConfig)
	NanoCPUs   int64             // 0: no CPU limit
	Memory     int64             // bytes; 0: no memory limit
	Labels     map[string]string // see Labels
	// Timeout stops the container after this long (0: never).
	Timeout time.Duration
	// Grace is how long a stopped container has between SIGTERM and SIGKILL.
	Grace time.Duration
	// BeforeStart, if set, is called with the created container's ID
	// before Run starts it (the executor fences it then); an error fails
	// the run, and the container is not started.
	BeforeStart func(containerID string) error
}

// SpecFor maps a job to a container. runArgs are a manual run's arguments
// and env the run's whole environment (the job's, the run's overrides and
// the AION_* variables; never the executor's own).
//
// What runs (see Command): a command job runs its command with /bin/sh -c in
// the image, args are the container's command. Workdir is the working
// directory inside the container. The user is container.user, else the
// job's user, resolved inside the container; it has no capabilities but
// container.cap_add, and cannot gain privileges. resources.cpus and
// resources.memory are hard limits; the memory limit includes swap, so a
// run over it is killed rather than swapped.
func SpecFor(job *jobspec.Job, runArgs, env []string) Spec {
	ct := job.Container
	entrypoint, cmd := Command(job, runArgs)
	s := Spec{
		Image: ct.Image, Pull: ct.Pull,
		Entrypoint: entrypoint, Cmd: cmd, Env: env,
		WorkingDir: job.Workdir, User: ct.User,
		Binds: ct.Volumes, Network: ct.Network, CapAdd: ct.CapAdd,
		NanoCPUs: int64(job.Resources.CPUs * 1e9),
		Memory:   int64(job.Resources.Memory),
		Timeout:  job.Timeout.D(),
	}
	if s.User == "" {
		s.User = job.User
	}
	if s.Pull == "" {
		s.Pull = jobspec.DefaultPullPolicy
	}
	return s
}

// Command gives the container's entrypoint and command for a job:
//
//   - command, no container.entrypoint: /bin/sh -c COMMAND JOB ARGS...,
//     replacing the image's entrypoint, so the command means what it means
//     on a host ($0 is the job's name, a manual run's arguments are $1...).
//   - command with container.entrypoint E: E /bin/sh -c COMMAND JOB ARGS...
//     (E wraps the shell, as an image's docker-entrypoint.sh does).
//   - args: container.entrypoint or the image's entrypoint, with args as
//     its command, as with docker run IMAGE ARGS...; a manual run's
//     arguments replace args[1:].
//   - neither: container.entrypoint or the image's, with a manual run's
//     arguments, or else the image's CMD.
func Command(job *jobspec.Job, runArgs []string) (entrypoint, cmd []string) {
	var custom []string
	if job.Container != nil {
		custom = job.Container.Entrypoint
	}
	switch {
	case job.Command != "":
		shell := append([]string{"-c", job.Command, job.Name}, runArgs...)
		if len(custom) == 0 {
			return []string{"/bin/sh"}, shell
		}
		return custom, append([]string{"/bin/sh"}, shell...)
	case len(job.Args) > 0 && len(runArgs) > 0:
		return custom, append([]string{job.Args[0]}, runArgs...)
	case len(job.Args) > 0:
		return custom, job.Args
	default:
		return custom, runArgs
	}
}

// Labels are the labels of the container of one attempt of a fire on node.
func Labels(fire, job string, attempt int, node string) map[string]string {
	return map[string]string{
		LabelFire: fire, LabelJob: job, LabelAttempt: strconv.Itoa(attempt), LabelNode: node,
	}
}
