// Package supervisor owns the host runs of an executor node from their
// start to their exit status, in a process of its own: the aion-supervise
// program (or the aion binary started as aion-supervise), in the spirit
// of containerd-shim and conmon. The executor starts one supervisor for
// its runs directory and talks to it over a Unix socket there; the
// supervisor
//
//   - starts each run's process in a process group of its own, with the
//     run's argv, environment, directory and user, and keeps its output
//     (package runoutput);
//   - stops a run on the executor's request (SIGTERM, then SIGKILL after
//     the grace period) or when its timeout passes;
//   - holds a fence on every run: when it hears no beat from its executor
//     for the run's Spec.Fence (counted on CLOCK_BOOTTIME, so time the
//     machine spent suspended counts), it kills the run at once. The
//     executor beats only while its etcd lease is surely alive, so a
//     paused, cut-off or dead executor's runs are dead before the leader
//     may count them lost;
//   - fences the executor's container runs too: for each, a run that
//     starts nothing (Spec.Container) and kills the container through its
//     Docker engine when the fence passes;
//   - tells the connected executor how each run ended.
//
// It outlives its executor: a restarted executor of the same node
// connects to it again (Open), lists its runs (Runs) and adopts those
// still going (Adopt), recording those that ended meanwhile. It exits once
// no run is going and it has heard no beat for the fence.
//
// One supervisor serves all of a node's runs, not one per run: a process
// start per run cost measured 10 times the throughput (BENCHMARKS.md).
// Each run still has its own process group, fence, output and status.
//
// It keeps its runs in memory, not in files: a run's spec comes with its
// start request, its status goes to the executor, and is kept until the
// executor says it is recorded (or, with no executor, until the
// supervisor exits). The runs directory holds only ctl (the socket) and
// supervisor.log (the supervisor's own errors).
package supervisor

import (
	"encoding/json"
	"time"
)

// Spec is what a supervisor runs. A run's environment may hold secrets:
// the file is the executor's only (0600, in a 0700 directory).
type Spec struct {
	Path string   `json:"path"` // the program, as exec.Command resolves it
	Args []string `json:"args"` // argv, Args[0] included
	Env  []string `json:"env"`
	Dir  string   `json:"dir,omitempty"`
	// UID, GID and Groups, when UID is set, are the credential the job
	// runs with.
	UID    *uint32  `json:"uid,omitempty"`
	GID    uint32   `json:"gid,omitempty"`
	Groups []uint32 `json:"groups,omitempty"`

	Output      string `json:"output"`       // the output file
	OutputLimit int64  `json:"output_limit"` // 0: no limit
	TailBytes   int    `json:"tail_bytes"`

	Timeout time.Duration `json:"timeout,omitempty"` // 0: none
	Grace   time.Duration `json:"grace"`             // between SIGTERM and SIGKILL
	// Fence is how long the supervisor waits for a beat before it kills
	// the run.
	Fence time.Duration `json:"fence"`
	// StartAt, when set, is when the job's process starts (not before):
	// a supervisor may be made ready ahead of a run's time.
	StartAt time.Time `json:"start_at,omitzero"`
	// Container, when set, makes the run a fence on a container the
	// executor runs (Path and the rest are unused): the supervisor starts
	// nothing, and kills the container through its engine when the fence
	// passes. The run ends then (Fenced), or when the executor, which
	// has seen the container end, acknowledges it (Ack: Released).
	Container *Container `json:"container,omitempty"`
}

// Container names a container and the Docker engine that runs it.
type Container struct {
	ID string `json:"id"`
	// Host is the engine's address as DOCKER_HOST gives it:
	// unix:///var/run/docker.sock or tcp://HOST:PORT.
	Host string `json:"host"`
	// APIVersion is the Engine API version the executor negotiated
	// (e.g. "1.47"); empty: unversioned paths.
	APIVersion string `json:"api_version,omitempty"`
	// CertPath, for a tcp engine with TLS, is the directory of ca.pem,
	// cert.pem and key.pem, as DOCKER_CERT_PATH.
	CertPath string `json:"cert_path,omitempty"`
}

// Ending says how a run ended.
type Ending string

// The endings of a run.
const (
	Exited   Ending = "exited"    // the process exited by itself (ExitCode)
	Killed   Ending = "killed"    // stopped on the executor's request (Reason)
	Released Ending = "released"  // a container's fence, acknowledged by the executor
	TimedOut Ending = "timed-out" // stopped when Spec.Timeout passed
	Fenced   Ending = "fenced"    // killed: no beat for Spec.Fence
	NoStart  Ending = "no-start"  // the process could not be started (Reason)
)

// Status is how a run ended, as status.json holds it.
type Status struct {
	Ending    Ending    `json:"ending"`
	Reason    string    `json:"reason,omitempty"`
	ExitCode  int       `json:"exit_code"` // 128+N when signal N ended it
	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at"`
	// Escalated: the process group outlived the grace period and got
	// SIGKILL.
	Escalated bool `json:"escalated,omitempty"`
	Output    Kept `json:"output"`
}

// Kept is what was kept of a run's output (runoutput.Kept).
type Kept struct {
	Tail  string `json:"tail,omitempty"`
	Path  string `json:"path,omitempty"`
	Err   string `json:"error,omitempty"`
	Limit int64  `json:"limit,omitempty"`
}

// The files of the runs directory.
const (
	socketFile = "ctl"
	logFile    = "supervisor.log"
)

// RunInfo is a run a supervisor holds, as Runs lists them.
type RunInfo struct {
	ID string `json:"id"`
	// Meta is what the executor gave with the run (Start): for a
	// successor, which attempt it is.
	Meta json.RawMessage `json:"meta,omitempty"`
	// Status is set once the run has ended (and until Ack).
	Status *Status `json:"status,omitempty"`
}

// request is one line an executor sends on the socket.
type request struct {
	Beat  bool          `json:"beat,omitempty"`
	Start *startRequest `json:"start,omitempty"`
	// Kill asks to stop the run with this ID, saying Reason.
	Kill   string `json:"kill,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Ack says the run's end is recorded: the supervisor forgets it (and
	// stops fencing it, for a container).
	Ack string `json:"ack,omitempty"`
	// List asks for every run the supervisor holds.
	List bool `json:"list,omitempty"`
	// Exit asks the supervisor to exit once it has no run (the executor
	// stops, its runs ended).
	Exit bool `json:"exit,omitempty"`
}

type startRequest struct {
	ID   string          `json:"id"`
	Spec Spec            `json:"spec"`
	Meta json.RawMessage `json:"meta,omitempty"`
}

// event is one line the supervisor sends to its executors: a run ended,
// or the answer to a List.
type event struct {
	Ended  string    `json:"ended,omitempty"` // the ID of the run that ended
	Status *Status   `json:"status,omitempty"`
	Listed bool      `json:"listed,omitempty"`
	Runs   []RunInfo `json:"runs,omitempty"`
}
