// Package supervisor owns one host run from its start to its exit status,
// in a process of its own: the aion binary started as "aion-supervise
// DIR", in the spirit of containerd-shim and conmon. The executor starts
// one per run and talks to it over a Unix socket in the run's directory;
// the supervisor
//
//   - starts the job's process in a process group of its own, with the
//     spec's argv, environment, directory and user, and keeps its output
//     (package runoutput);
//   - stops the group on the executor's request (SIGTERM, then SIGKILL
//     after the grace period) or when the spec's timeout passes;
//   - holds a fence: when it hears no beat from its executor for
//     Spec.Fence (counted on CLOCK_BOOTTIME, so time the machine spent
//     suspended counts), it kills the group at once. The executor beats
//     only while its etcd lease is surely alive, so a paused, cut-off or
//     dead executor's runs are dead before the leader may mark them lost;
//   - writes how the run ended to status.json, then exits.
//
// It outlives its executor: a restarted executor of the same node finds
// the run's directory, connects to the socket again and adopts the run
// (Attach), or reads the status it left.
//
// The run's directory holds spec.json (what to run, written by the
// executor), ctl.sock (the socket), status.json (written once, at the
// end) and supervisor.log (the supervisor's own errors).
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
	// the run. The first beat is due Fence after the supervisor started.
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

// The files of a run's directory.
const (
	specFile   = "spec.json"
	statusFile = "status.json"
	socketFile = "ctl.sock"
	logFile    = "supervisor.log"
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
// synced, mode 0600.
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
	if _, err := tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// message is one line the executor sends on the socket.
type message struct {
	Beat bool   `json:"beat,omitempty"`
	Kill string `json:"kill,omitempty"` // the reason of a kill request
}
