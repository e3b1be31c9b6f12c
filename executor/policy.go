package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/aionsched/aion/jobspec"
)

// withOwnUser returns the policy with User and UID set to the user this
// process runs as: a job without user: runs as it.
func withOwnUser(p jobspec.NodePolicy) jobspec.NodePolicy {
	p.UID = strconv.Itoa(os.Geteuid())
	p.User = p.UID
	if u, err := user.LookupId(p.UID); err == nil {
		p.User = u.Username
	}
	return p
}

// errPolicy marks a run refused by the node's policy.
var errPolicy = errors.New("refused by the node's policy")

// allowed checks a claimed job against the node's policy, as the leader
// did when it placed it (it may have been dispatched here all the same:
// an old leader, a changed policy, a forged dispatch). For a container
// job, volumes' host paths are checked with their symbolic links resolved
// (and the policy's prefixes too), and the job returned mounts the
// resolved paths, so a link changed after the check does not move the
// mount. The returned job is the one to run.
func (x *Executor) allowed(job *jobspec.Job) (*jobspec.Job, error) {
	if job.Container == nil || len(job.Container.Volumes) == 0 {
		if err := x.cfg.Policy.Check(job); err != nil {
			return nil, fmt.Errorf("%w: %w", errPolicy, err)
		}
		return job, nil
	}
	if err := x.cfg.Policy.Check(job); err != nil { // as written, as the leader checked
		return nil, fmt.Errorf("%w: %w", errPolicy, err)
	}
	resolved := *job
	ct := *job.Container
	ct.Volumes = make([]string, len(job.Container.Volumes))
	for i, v := range job.Container.Volumes {
		host, rest, _ := strings.Cut(v, ":")
		real, err := resolvePath(host)
		if err != nil {
			return nil, fmt.Errorf("%w: host path %q: %w", errPolicy, host, err)
		}
		ct.Volumes[i] = real + ":" + rest
	}
	resolved.Container = &ct
	// The policy's prefixes count resolved and as written (the socket
	// listed as /var/run/docker.sock is the one at /run); the job's paths
	// are all resolved, so an entry as written only matches a path with
	// no link in it.
	policy := x.cfg.Policy
	policy.Mounts = slices.Clone(x.cfg.Policy.Mounts)
	for _, m := range x.cfg.Policy.Mounts {
		if real, err := resolvePath(m); err == nil && real != m {
			policy.Mounts = append(policy.Mounts, real)
		}
	}
	if err := policy.Check(&resolved); err != nil {
		return nil, fmt.Errorf("%w (symbolic links resolved): %w", errPolicy, err)
	}
	return &resolved, nil
}

// resolvePath returns the absolute path p names with every symbolic link
// resolved. A path that does not exist yet (the engine creates a missing
// bind source) is resolved up to its deepest existing directory, the rest
// appended.
func resolvePath(p string) (string, error) {
	p = filepath.Clean(p)
	var missing []string
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{real}, missing...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, lerr := os.Lstat(p); lerr == nil {
			return "", fmt.Errorf("%s is a symbolic link to nothing", p)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		missing = append([]string{filepath.Base(p)}, missing...)
		p = parent
	}
}
