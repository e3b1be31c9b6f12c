package jobspec

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// NodePolicy is what an executor node allows the jobs it runs: the users a
// host run may run as and the container settings it accepts. The executor
// is configured with it and advertises it in its registration; the leader
// places a job only on a node whose policy allows it, and the executor
// checks again when it claims a run. Both call Check, so the two never
// disagree. It lives here, in the job model, because the scheduler must
// not import the executor and both already share jobspec.
//
// The zero value is the default policy: host runs only as the executor's
// own user (never as root by a job's user:), no host paths mounted,
// networks bridge and none, any image.
type NodePolicy struct {
	// User and UID are the user the executor runs as. A job without
	// user: runs as it; a job naming it (by name or uid) needs no entry
	// in RunAs, unless it is root.
	User string `json:"user,omitempty"`
	UID  string `json:"uid,omitempty"`
	// RunAs lists the users a job's user: may name, as jobs write them
	// (a name or a uid, with :group only when that group is listed with
	// it, e.g. "aion:docker"). root (or 0) only when listed.
	RunAs []string `json:"run_as,omitempty"`
	// Mounts lists the host path prefixes container volumes may mount:
	// an entry allows itself and every path below it. / and the Docker
	// socket (or a directory holding it) only when listed exactly.
	Mounts []string `json:"mounts,omitempty"`
	// Networks lists network modes allowed besides bridge and none: host,
	// container:NAME, or a network's name, exactly as jobs write them.
	Networks []string `json:"networks,omitempty"`
	// Images lists glob patterns (path.Match: * never crosses a /) an
	// image reference, as the job writes it, must match; empty: any.
	Images []string `json:"images,omitempty"`
	// Capabilities lists the Linux capabilities (names without CAP_) a
	// container's cap_add may give back; containers start with none.
	Capabilities []string `json:"capabilities,omitempty"`
}

// DefaultNetworks are the container network modes every node allows.
var defaultNetworks = []string{"bridge", "none"}

// DockerSockets are the host paths of the Docker engine's socket. A
// volume that is, or holds, one of them gives the container the engine,
// and so the host: it is allowed only when NodePolicy.Mounts lists the
// socket itself.
var DockerSockets = []string{"/var/run/docker.sock", "/run/docker.sock"}

// Validate reports an entry of the policy that cannot work, naming the
// configuration key it comes from.
func (p *NodePolicy) Validate() error {
	for _, u := range p.RunAs {
		if !validUser.MatchString(u) {
			return fmt.Errorf("executor.run_as: %q: want a user name or uid, optionally with :group", u)
		}
	}
	for _, m := range p.Mounts {
		if !path.IsAbs(m) || path.Clean(m) != m {
			return fmt.Errorf("executor.container_mounts: %q: want an absolute, clean host path such as /srv/data", m)
		}
	}
	for _, n := range p.Networks {
		if err := checkNetwork(n); err != nil {
			return fmt.Errorf("executor.container_networks: %w", err)
		}
	}
	for _, pat := range p.Images {
		if _, err := path.Match(pat, ""); err != nil || pat == "" {
			return fmt.Errorf("executor.container_images: %q is not a valid pattern (path.Match syntax: *, ?, [a-z])", pat)
		}
	}
	for _, name := range p.Capabilities {
		if err := checkCapability(name); err != nil {
			return fmt.Errorf("executor.container_capabilities: %w", err)
		}
	}
	return nil
}

// Check reports why the policy forbids the job, or nil when it allows it.
// Host paths are compared as the job writes them (validation made them
// absolute and clean); an executor resolves symbolic links first (see
// CheckVolumes) and calls Check with the resolved job.
func (p *NodePolicy) Check(j *Job) error {
	if j.Container == nil {
		return p.checkUser(j.User)
	}
	// A container's user (container.user, else user) is a user inside the
	// container: it runs without capabilities (but those cap_add gives
	// back, if allowed), without new privileges and with only the allowed
	// mounts, so the host's run-as list does not apply to it.
	ct := j.Container
	if len(p.Images) > 0 && !slices.ContainsFunc(p.Images, func(pat string) bool { ok, _ := path.Match(pat, ct.Image); return ok }) {
		return fmt.Errorf("image %q matches none of the allowed patterns (allows: %s)", ct.Image, strings.Join(p.Images, ", "))
	}
	network := ct.Network
	if network == "" {
		network = DefaultContainerNetwork
	}
	if !slices.Contains(defaultNetworks, network) && !slices.Contains(p.Networks, network) {
		return fmt.Errorf("network %q is not allowed (allows: %s)", network, strings.Join(append(slices.Clone(defaultNetworks), p.Networks...), ", "))
	}
	for _, v := range ct.Volumes {
		host, _, _ := strings.Cut(v, ":")
		if err := p.checkMount(host); err != nil {
			return err
		}
	}
	for _, name := range ct.CapAdd {
		if !slices.Contains(p.Capabilities, name) {
			return fmt.Errorf("capability %s is not allowed (allows: %s)", name, orNone(p.Capabilities))
		}
	}
	return nil
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// capabilities are the Linux capabilities, as Docker's cap_add takes them
// (capabilities(7), without CAP_).
var capabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
	"KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
	"NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE",
	"SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
	"WAKE_ALARM",
}

// checkCapability checks a capability's name as jobs and the policy
// write it: upper case, without CAP_, one capability (not ALL).
func checkCapability(name string) error {
	switch upper, _ := strings.CutPrefix(strings.ToUpper(name), "CAP_"); {
	case slices.Contains(capabilities, name):
		return nil
	case upper == "ALL":
		return fmt.Errorf("%q: name each capability; ALL would give the container the host's root powers", name)
	case slices.Contains(capabilities, upper):
		return fmt.Errorf("%q: write %s", name, upper)
	default:
		return fmt.Errorf("%q is not a Linux capability (see capabilities(7); write NET_BIND_SERVICE for CAP_NET_BIND_SERVICE)", name)
	}
}

// checkUser checks a host run's user: (empty: the executor's own user).
func (p *NodePolicy) checkUser(spec string) error {
	if spec == "" || slices.Contains(p.RunAs, spec) {
		return nil
	}
	name, group, _ := strings.Cut(spec, ":")
	switch {
	case group == "" && slices.Contains(p.RunAs, name):
		return nil
	case group == "" && !isRoot(name) && name != "" && (name == p.User || name == p.UID):
		return nil // the executor's own user, and not root
	}
	return fmt.Errorf("user %q is not allowed (allows: %s)", spec, p.allowedUsers())
}

func isRoot(user string) bool { return user == "root" || user == "0" }

// AllowsRoot reports whether jobs may name root (or uid 0) as their user.
func (p *NodePolicy) AllowsRoot() bool { return slices.ContainsFunc(p.RunAs, isRoot) }

// allowedUsers lists the users the policy lets jobs name.
func (p *NodePolicy) allowedUsers() string {
	users := slices.Clone(p.RunAs)
	if p.User != "" && !isRoot(p.User) && !slices.Contains(users, p.User) {
		users = append([]string{p.User}, users...)
	}
	if len(users) == 0 {
		return "no user: jobs run as the executor's own user, without user:"
	}
	return strings.Join(users, ", ")
}

// checkMount checks one volume's host path: below an allowed prefix, and
// neither / nor a path holding the Docker socket unless listed as such.
func (p *NodePolicy) checkMount(host string) error {
	if host == "/" && !slices.Contains(p.Mounts, "/") {
		return fmt.Errorf(`host path "/" is allowed only when the executor lists "/" itself`)
	}
	socketListed := slices.ContainsFunc(DockerSockets, func(sock string) bool { return slices.Contains(p.Mounts, sock) })
	for _, sock := range DockerSockets {
		if within(sock, host) && !socketListed {
			return fmt.Errorf("host path %q gives the container the Docker socket %s: allowed only when the executor lists the socket itself", host, sock)
		}
	}
	allowed := slices.ContainsFunc(p.Mounts, func(prefix string) bool { return within(host, prefix) })
	switch {
	case allowed:
		return nil
	case len(p.Mounts) == 0:
		return fmt.Errorf("host path %q is not allowed (the node allows no host paths)", host)
	default:
		return fmt.Errorf("host path %q is not allowed (allows: %s)", host, strings.Join(p.Mounts, ", "))
	}
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Summary says in a few words what the policy allows, for logs and
// waiting reasons.
func (p *NodePolicy) Summary() string {
	images := "any"
	if len(p.Images) > 0 {
		images = strings.Join(p.Images, ", ")
	}
	return fmt.Sprintf("users: %s; host paths: %s; networks: %s; images: %s; capabilities: %s", p.allowedUsers(), orNone(p.Mounts),
		strings.Join(append(slices.Clone(defaultNetworks), p.Networks...), ", "), images, orNone(p.Capabilities))
}
