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
//   - writes how each run ended to the run's status.json and tells the
//     connected executor.
//
// It outlives its executor: a restarted executor of the same node
// connects to it again (Open) and adopts its runs (Adopt), or reads the
// status of those that ended meanwhile. It exits once it has no run and
// has heard no beat for the fence.
//
// One supervisor serves all of a node's runs, not one per run: a process
// start per run cost measured 10 times the throughput (BENCHMARKS.md).
// Each run still has its own process group, fence, output and status.
//
// Files: <runs>/ctl (the socket), <runs>/supervisor.log (the supervisor's
// own errors), and per run <runs>/<run>/spec.json (what to run, written by
// the executor) and <runs>/<run>/status.json (written once, at the end).
package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
}

// Ending says how a run ended.
type Ending string

// The endings of a run.
const (
	Exited   Ending = "exited"    // the process exited by itself (ExitCode)
	Killed   Ending = "killed"    // stopped on the executor's request (Reason)
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

// The files of the runs directory, and of each run's.
const (
	socketFile = "ctl"
	logFile    = "supervisor.log"
	specFile   = "spec.json"
	statusFile = "status.json"
)

// ReadStatus reads the status a supervisor left in dir; os.ErrNotExist
// when it left none (it still runs, or died without a word).
func ReadStatus(dir string) (Status, error) {
	var st Status
	data, err := os.ReadFile(filepath.Join(dir, statusFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("status of %s: %w", dir, err)
	}
	return st, nil
}

// writeJSON writes v to dir/name atomically (a temporary file renamed),
// mode 0600. It is not synced: it must outlive the executor, which the
// page cache does, not the machine (whose crash kills the runs too).
func writeJSON(dir, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// request is one line an executor sends on the socket.
type request struct {
	Beat   bool   `json:"beat,omitempty"`
	Start  string `json:"start,omitempty"` // a run's directory, holding its spec.json
	Kill   string `json:"kill,omitempty"`  // a run's directory
	Reason string `json:"reason,omitempty"`
	// Exit asks the supervisor to exit once it has no run (the executor
	// stops, its runs ended).
	Exit bool `json:"exit,omitempty"`
}

// event is one line the supervisor sends to every connected executor: a
// run ended.
type event struct {
	Run    string `json:"run"` // the run's directory
	Status Status `json:"status"`
}
