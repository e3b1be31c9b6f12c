package api

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aionsched/aion/jobspec"
)

// The records the API shows: fires, their attempts, job state and executor
// registrations. They have the JSON shape of what the cluster stores (the
// server converts, in apiserver/convert.go), but they are the API's own:
// a change of storage is not a change of the wire format.

// FireID names one fire: job@suffix, where the suffix is the nominal time
// of a scheduled run or says how the run came to be (manual-<time>,
// after-<parent>@<origin>).
type FireID struct {
	Job    string `json:"job"`
	Suffix string `json:"suffix"`
}

// String formats the ID as job@suffix.
func (id FireID) String() string { return id.Job + "@" + id.Suffix }

// ParseFireID reads job@suffix and checks it as the server does, so that
// a bad ID is refused before anything is sent.
func ParseFireID(s string) (FireID, error) {
	job, suffix, _ := strings.Cut(s, "@")
	id := FireID{Job: job, Suffix: suffix}
	if err := id.Validate(); err != nil {
		return FireID{}, fmt.Errorf("fire ID %q: %w (want job@suffix, e.g. backup@2026-11-24T02:00:00Z)", s, err)
	}
	return id, nil
}

// Validate checks that the ID is one the server accepts in a path: a valid
// job name and a suffix of 1 to 200 bytes without '/', '*', '>', spaces or
// control characters, not starting with '.'.
func (id FireID) Validate() error {
	switch {
	case !jobspec.ValidName(id.Job):
		return fmt.Errorf("bad job name %q", id.Job)
	case id.Suffix == "" || len(id.Suffix) > 200:
		return errors.New("suffix must be 1 to 200 bytes")
	case strings.HasPrefix(id.Suffix, "."):
		return fmt.Errorf("bad suffix %q: it must not start with '.'", id.Suffix)
	case strings.IndexFunc(id.Suffix, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("/*>", r) }) >= 0:
		return fmt.Errorf("bad suffix %q: no '/', '*', '>', spaces or control characters", id.Suffix)
	}
	return nil
}

// FireState is where a fire is in its life.
type FireState string

// The fire states. Planned and running are open; the rest are final.
const (
	FirePlanned   FireState = "planned"   // waiting for an executor to claim it
	FireRunning   FireState = "running"   // claimed by an executor, which started the process
	FireSucceeded FireState = "succeeded" // exit code 0
	FireFailed    FireState = "failed"    // non-zero exit or could not start
	FireTimedOut  FireState = "timed_out" // killed after the job's timeout
	FireLost      FireState = "lost"      // the executor died while running it
	FireSkipped   FireState = "skipped"   // not run (misfire policy, overlap); Reason says why
	FireCancelled FireState = "cancelled" // killed on request; never retried
)

// Final reports whether the state is an end state.
func (s FireState) Final() bool { return s != FirePlanned && s != FireRunning }

// Trigger says why a fire exists.
type Trigger string

// The triggers.
const (
	TriggerSchedule   Trigger = "schedule"
	TriggerManual     Trigger = "manual"
	TriggerDependency Trigger = "dependency"
	TriggerBackfill   Trigger = "backfill"
)

// Fire is the record of one planned run.
type Fire struct {
	ID      FireID    `json:"id"`
	Trigger Trigger   `json:"trigger"`
	Nominal time.Time `json:"nominal"` // the scheduled time (the trigger time for other runs)
	State   FireState `json:"state"`
	Reason  string    `json:"reason,omitempty"` // why it waits, was skipped or failed
	Attempt int       `json:"attempt"`
	Node    string    `json:"node,omitempty"` // executor chosen, then the one that claimed it
	// Env overrides the job's environment for this run only (manual runs).
	Env map[string]string `json:"env,omitempty"`
	// Args, for a manual run, replace the arguments of an args job, or are
	// passed to a command job as $1, $2, ...
	Args []string `json:"args,omitempty"`
	// Downstream, for a manual run, also runs the dependent jobs afterwards.
	Downstream bool `json:"downstream,omitempty"`
	// NotBefore delays the dispatch of a planned retry (backoff).
	NotBefore time.Time `json:"not_before,omitzero"`
	// After names the open fire of the same job this one waits for.
	After string `json:"after,omitempty"`
	// Backfill names the backfill request that planned this fire, and
	// Parallel its limit on runs at once.
	Backfill string `json:"backfill,omitempty"`
	Parallel int    `json:"parallel,omitempty"`
	// Attempts holds the earlier attempts of this fire, oldest first.
	Attempts []Attempt `json:"attempts,omitempty"`
	// RequestedBy says who triggered a manual run.
	RequestedBy string `json:"requested_by,omitempty"`
	// Kill is the kill the leader recorded on a running attempt (aion kill,
	// concurrency: replace), which its executor acts on.
	Kill *FireKill `json:"kill,omitempty"`

	PlannedAt time.Time `json:"planned_at"`
	PlannedBy string    `json:"planned_by,omitempty"` // the scheduler that planned it
	// Term is the leader term that last wrote the record: the creation
	// revision of its election key, which that write's fence compared.
	Term int64 `json:"term,omitempty"`
	// Lease is the registration lease of the executor that claimed (or
	// adopted) the running attempt; FenceTimeout how long the attempt
	// outlives that executor's silence at most.
	Lease        int64         `json:"lease,omitempty"`
	FenceTimeout time.Duration `json:"fence_timeout,omitempty"`
	// StartedAt is when the executor claimed the run; once the run has
	// ended, when its process actually started.
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	PID       int       `json:"pid,omitempty"`
	ExitCode  *int      `json:"exit_code,omitempty"`
	// OutputTail is the end of the combined stdout and stderr; the whole
	// output stays on the executor (OutputPath), see Client.Log.
	OutputTail string `json:"output_tail,omitempty"`
	OutputPath string `json:"output_path,omitempty"`
	// OutputError says why the run's output was not kept, or not all of it
	// (the output directory could not be created, the disk was full, ...).
	OutputError string `json:"output_error,omitempty"`
	// OutputTruncated says the output passed OutputLimit bytes: the full
	// output holds the first OutputLimit bytes, OutputTail the real end.
	OutputTruncated bool  `json:"output_truncated,omitempty"`
	OutputLimit     int64 `json:"output_limit,omitempty"`
	// Processed is set once the leader has recorded a final fire's effects
	// (job state, dependent fires): no attempt follows then.
	Processed bool `json:"processed,omitempty"`
}

// OutputWarning says, in one line, what was not kept of the fire's
// output: why it was not kept (OutputError), and that it was truncated at
// its limit; "" when all of it was kept.
func (f Fire) OutputWarning() string {
	var parts []string
	if f.OutputError != "" {
		parts = append(parts, "output not kept: "+f.OutputError)
	}
	if f.OutputTruncated {
		limit := jobspec.Bytes(f.OutputLimit).String()
		parts = append(parts, fmt.Sprintf("output truncated at %s (the output limit): the full output holds its first %s, the record's tail its end", limit, limit))
	}
	return strings.Join(parts, "; ")
}

// FireKill is a kill recorded on a running attempt.
type FireKill struct {
	Attempt int       `json:"attempt"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// Attempt is one finished attempt of a fire that was retried.
type Attempt struct {
	Attempt   int       `json:"attempt"`
	Node      string    `json:"node,omitempty"`
	State     FireState `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	ExitCode  *int      `json:"exit_code,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
}

// JobState is the scheduling state of a job, as the leader keeps it.
type JobState struct {
	// HighWater is the latest nominal time planned (or deliberately
	// skipped); the next run is the schedule's first time after it.
	HighWater time.Time `json:"high_water,omitzero"`
	// AppliedAt anchors an ISO 8601 schedule with an empty start.
	AppliedAt time.Time `json:"applied_at,omitzero"`

	LastFire    string    `json:"last_fire,omitempty"`
	LastResult  FireState `json:"last_result,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"` // when the last successful run ended
	// LastDone is when the last run that unblocks children ended.
	LastDone time.Time `json:"last_done,omitzero"`
	// LastTriggered is when the job's last dependency run was planned.
	LastTriggered time.Time `json:"last_triggered,omitzero"`
	Skipped       int       `json:"skipped,omitempty"` // nominal times skipped in all
	// Paused jobs skip (and record) their nominal times until resumed.
	Paused    bool      `json:"paused,omitempty"`
	PauseNote string    `json:"pause_note,omitempty"`
	PausedAt  time.Time `json:"paused_at,omitzero"`
	PausedBy  string    `json:"paused_by,omitempty"`
	// Planned counts every fire created for the job.
	Planned int `json:"planned,omitempty"`
}

// Node is an executor's registration.
type Node struct {
	ID        string            `json:"id"`
	Labels    map[string]string `json:"labels,omitempty"`
	Slots     int               `json:"slots"`
	StartedAt time.Time         `json:"started_at"`
	// Lock is the node lock the executor holds ("host:path" of its
	// output directory's .aion-node.lock); PID is the executor's process.
	Lock string `json:"lock,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// Lease is the etcd lease the registration is written on.
	Lease int64 `json:"lease,omitempty"`
	// Policy is what the node allows jobs: the users they may run as and
	// the host paths, networks and images of container jobs (absent: an
	// executor from before policies, which has the default policy).
	Policy *jobspec.NodePolicy `json:"policy,omitempty"`
}
