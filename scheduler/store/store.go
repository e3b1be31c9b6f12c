// Package store owns what Aion keeps in etcd: the key layout under one
// prefix and the records stored there (job definitions, per-job scheduling
// state, fire records, executor registrations), plus the NATS subjects and
// messages that point at them. Schedulers and executors both speak it.
//
//	<prefix>jobs/<name>             job definition (jobspec.Job as JSON)
//	<prefix>state/<name>            scheduling state: high-water mark, last results
//	<prefix>fires/<name>/<suffix>   one record per planned run (fire ID = name@suffix)
//	<prefix>requests/<job>/<suffix> user requests (Request: run, kill, pause, backfill)
//	<prefix>nodes/<node-id>         executor registration, on the executor's lease
//	<prefix>logkey                  the key that signs log requests (LogSigningKey)
//	<prefix>leader/                 election prefix
package store

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aionsched/aion/jobspec"
)

// DefaultPrefix is the etcd key prefix when none is configured.
const DefaultPrefix = "/aion/"

// Keys builds etcd keys under a prefix.
type Keys struct{ Prefix string }

// Jobs is the prefix of all job definitions.
func (k Keys) Jobs() string { return k.Prefix + "jobs/" }

// Job is the key of one job definition.
func (k Keys) Job(name string) string { return k.Jobs() + name }

// States is the prefix of all job states.
func (k Keys) States() string { return k.Prefix + "state/" }

// State is the key of one job's scheduling state.
func (k Keys) State(name string) string { return k.States() + name }

// Fires is the prefix of all fire records.
func (k Keys) Fires() string { return k.Prefix + "fires/" }

// JobFires is the prefix of one job's fire records.
func (k Keys) JobFires(job string) string { return k.Fires() + job + "/" }

// Fire is the key of one fire record.
func (k Keys) Fire(id FireID) string { return k.JobFires(id.Job) + id.Suffix }

// Nodes is the prefix of executor registrations.
func (k Keys) Nodes() string { return k.Prefix + "nodes/" }

// Node is the key of one executor registration.
func (k Keys) Node(id string) string { return k.Nodes() + id }

// Requests is the prefix of user requests (Request: a manual run, a kill,
// a pause change, a backfill) that any scheduler's API writes and the
// leader acts on.
func (k Keys) Requests() string { return k.Prefix + "requests/" }

// Request is the key of the request for the fire id.
func (k Keys) Request(id FireID) string { return k.Requests() + id.Job + "/" + id.Suffix }

// RequestIDFromKey parses a request key into the fire ID it asks for.
func (k Keys) RequestIDFromKey(key string) (FireID, bool) {
	rest, ok := strings.CutPrefix(key, k.Requests())
	if !ok {
		return FireID{}, false
	}
	job, suffix, ok := strings.Cut(rest, "/")
	return FireID{Job: job, Suffix: suffix}, ok && job != "" && suffix != ""
}

// Request is a user's request to the leader, under requests/<job>/<suffix>:
// a manual run, or, when Kill, Pause or Backfill is set, a kill, a pause
// change or a backfill. The leader acts on it and deletes it in one fenced
// transaction.
type Request struct {
	Env        map[string]string `json:"env,omitempty"`
	Args       []string          `json:"args,omitempty"`
	Downstream bool              `json:"downstream,omitempty"`
	By         string            `json:"by,omitempty"` // who asked
	At         time.Time         `json:"at"`
	// Kill, when set, asks to stop this open fire instead of starting a run.
	Kill string `json:"kill,omitempty"`
	// Pause, when set, pauses or resumes the job instead of starting a run.
	Pause *PauseChange `json:"pause,omitempty"`
	// Backfill, when set, plans every nominal time in a range.
	Backfill *Backfill `json:"backfill,omitempty"`
}

// Backfill plans every nominal time of a job in [From, To] under the fire
// IDs normal runs have, so a time that already ran (or was planned) is not
// planned again: backfilling twice is harmless. At most Parallel of its
// runs go at once (0: no limit).
type Backfill struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Parallel int       `json:"parallel,omitempty"`
}

// MaxBackfill bounds the nominal times one backfill plans.
const MaxBackfill = 10_000

// PauseChange pauses a job (its nominal times are skipped and recorded) or
// resumes it; Catchup, on resume, runs the times skipped while paused as
// the job's misfire policy says (run-once: the latest; run-all: up to
// max_catchup; skip: none).
type PauseChange struct {
	Pause   bool   `json:"pause"`
	Note    string `json:"note,omitempty"`
	Catchup bool   `json:"catchup,omitempty"`
}

// Election is the leader election prefix.
func (k Keys) Election() string { return k.Prefix + "leader/" }

// FireIDFromKey parses a fire record key.
func (k Keys) FireIDFromKey(key string) (FireID, bool) {
	rest, ok := strings.CutPrefix(key, k.Fires())
	if !ok {
		return FireID{}, false
	}
	job, suffix, ok := strings.Cut(rest, "/")
	return FireID{Job: job, Suffix: suffix}, ok && job != "" && suffix != ""
}

// FireID names one planned run: the job and a suffix that is the nominal
// time for scheduled runs (backup@2026-11-24T02:00:00Z), so every leader
// derives the same ID for the same run.
type FireID struct {
	Job    string `json:"job"`
	Suffix string `json:"suffix"`
}

// ScheduledFireID is the ID of the run of job at its nominal time.
func ScheduledFireID(job string, nominal time.Time) FireID {
	return FireID{Job: job, Suffix: nominal.UTC().Format(time.RFC3339Nano)}
}

// ManualFireID is the ID of a run triggered by hand at the given time.
func ManualFireID(job string, at time.Time) FireID {
	return FireID{Job: job, Suffix: "manual-" + at.UTC().Format(time.RFC3339Nano)}
}

// DependentFireID is the ID of the run of child caused by the parent fire
// that completed its set of parents: child@after-<parent job>@<origin>, where
// the origin is the suffix of the scheduled or manual fire that started the
// chain. IDs stay short however deep the graph is.
func DependentFireID(child string, parent FireID) FireID {
	origin := parent.Suffix
	for {
		rest, ok := strings.CutPrefix(origin, "after-")
		if !ok {
			break
		}
		_, inner, ok := strings.Cut(rest, "@")
		if !ok {
			break
		}
		origin = inner
	}
	return FireID{Job: child, Suffix: "after-" + parent.Job + "@" + origin}
}

// String formats the ID as job@suffix.
func (id FireID) String() string { return id.Job + "@" + id.Suffix }

// ParseFireID reads job@suffix.
func ParseFireID(s string) (FireID, error) {
	job, suffix, _ := strings.Cut(s, "@")
	id := FireID{Job: job, Suffix: suffix}
	if err := id.Validate(); err != nil {
		return FireID{}, fmt.Errorf("fire ID %q: %w (want job@suffix, e.g. backup@2026-11-24T02:00:00Z)", s, err)
	}
	return id, nil
}

// Validate checks that the ID can name a key, a file and a log line: a
// valid job name and a suffix without '/', NUL, NATS wildcards ('*', '>'),
// spaces or control characters, and no leading '.'. Aion's own suffixes are
// times and words joined by '-', ':', '.' and '@'. IDs that arrive from
// outside (API paths, NATS messages) must be validated before use.
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
	FirePlanned   FireState = "planned"   // recorded by the leader, waiting for an executor to claim it
	FireRunning   FireState = "running"   // claimed by an executor, which started the process
	FireSucceeded FireState = "succeeded" // exit code 0
	FireFailed    FireState = "failed"    // non-zero exit or could not start
	FireTimedOut  FireState = "timed_out" // killed after the job's timeout
	FireLost      FireState = "lost"      // the executor died while running it
	FireSkipped   FireState = "skipped"   // not run (misfire policy, overlap); Reason says why
	FireCancelled FireState = "cancelled" // killed on request (aion kill, concurrency: replace); never retried
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

// Fire is the record of one planned run, under fires/<job>/<suffix>.
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
	// After names the open fire of the same job this one waits for
	// (concurrency: replace and queue); it is dispatched when that one ends.
	After string `json:"after,omitempty"`
	// Backfill names the backfill request that planned this fire, and
	// Parallel its limit on runs at once.
	Backfill string `json:"backfill,omitempty"`
	Parallel int    `json:"parallel,omitempty"`
	// Attempts holds the earlier attempts of this fire, oldest first.
	Attempts []Attempt `json:"attempts,omitempty"`
	// RequestedBy says who triggered a manual run.
	RequestedBy string `json:"requested_by,omitempty"`
	// Kill, written by the leader on a running attempt (aion kill,
	// concurrency: replace), asks its executor to stop it. The NATS kill
	// message is only a hint to read this: an executor kills only the
	// attempt a record asks it to, with the reason given here.
	Kill *FireKill `json:"kill,omitempty"`

	PlannedAt time.Time `json:"planned_at"`
	// PlannedBy is the scheduler that created the record (the leader then).
	PlannedBy string `json:"planned_by,omitempty"`
	// Lease is the etcd lease of the registration of the executor that
	// claimed the running attempt, and FenceTimeout how long that attempt
	// outlives its executor's silence at most (its supervisor's fence).
	// The leader counts the attempt lost once no registration of its node
	// holds Lease for longer than FenceTimeout plus a second: by then the
	// run is surely dead. A record without FenceTimeout (a container run,
	// or an older executor's) is lost as soon as its node's registration
	// is gone.
	Lease        int64         `json:"lease,omitempty"`
	FenceTimeout time.Duration `json:"fence_timeout,omitempty"`
	// Term is the creation revision of the election key of the leader
	// term that last wrote this record: the value that write's fence
	// compared. Every leader write sets it; an executor's claim and result
	// keep the one they read. Unlike PlannedBy, which a scheduler writes
	// about itself, it can be checked against etcd's history.
	Term int64 `json:"term,omitempty"`
	// StartedAt is when the executor claimed the run; once the run has
	// ended, when its process (not container) actually started.
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	PID       int       `json:"pid,omitempty"`
	ExitCode  *int      `json:"exit_code,omitempty"`
	// OutputTail is the end of the combined stdout and stderr; the whole
	// output stays on the executor (OutputPath).
	OutputTail string `json:"output_tail,omitempty"`
	OutputPath string `json:"output_path,omitempty"`
	// OutputError says why the run's output was not kept, or not all of it
	// (the output directory could not be created, the disk was full, ...);
	// the tail holds what arrived all the same.
	OutputError string `json:"output_error,omitempty"`
	// OutputTruncated says the output passed OutputLimit bytes: the file
	// holds the first OutputLimit bytes, the tail the real end.
	OutputTruncated bool  `json:"output_truncated,omitempty"`
	OutputLimit     int64 `json:"output_limit,omitempty"`

	// Processed is set by the leader once it has recorded a final fire's
	// effects (job state, dependent fires), so a new leader does not
	// repeat them.
	Processed bool `json:"processed,omitempty"`
}

// FireKill is a kill recorded on a running attempt of a fire.
type FireKill struct {
	Attempt int       `json:"attempt"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// KillAsked reports whether the record asks the executor of its current
// attempt to stop it.
func (f Fire) KillAsked() bool {
	return f.State == FireRunning && f.Kill != nil && f.Kill.Attempt == f.Attempt
}

// Attempt is the record of one finished attempt of a fire that was retried.
type Attempt struct {
	Attempt   int       `json:"attempt"`
	Node      string    `json:"node,omitempty"`
	State     FireState `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	ExitCode  *int      `json:"exit_code,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
}

// JobState is the scheduling state of a job, under state/<name>; only the
// leader writes it.
type JobState struct {
	// HighWater is the latest nominal time planned (or deliberately
	// skipped); the next run is the schedule's first time after it.
	HighWater time.Time `json:"high_water,omitzero"`
	// AppliedAt anchors an ISO 8601 schedule with an empty start.
	AppliedAt time.Time `json:"applied_at,omitzero"`

	LastFire    string    `json:"last_fire,omitempty"`
	LastResult  FireState `json:"last_result,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"` // when the last successful run ended
	// LastDone is when the last run that unblocks children ended: a
	// success, or any failure of a soft_fail job.
	LastDone time.Time `json:"last_done,omitzero"`
	// LastTriggered is when the job's last dependency run was planned: a
	// child runs again only when every parent succeeded after it.
	LastTriggered time.Time `json:"last_triggered,omitzero"`
	Skipped       int       `json:"skipped,omitempty"` // nominal times skipped in all
	// Paused jobs skip (and record) their nominal times until resumed.
	Paused    bool      `json:"paused,omitempty"`
	PauseNote string    `json:"pause_note,omitempty"`
	PausedAt  time.Time `json:"paused_at,omitzero"`
	PausedBy  string    `json:"paused_by,omitempty"`
	// Planned counts every fire created for the job. Every creation writes
	// this record, so a transaction compared on its revision knows that no
	// run of the job was planned meanwhile.
	Planned int `json:"planned,omitempty"`
}

// Node is an executor's registration, under nodes/<id> on its lease.
type Node struct {
	ID        string            `json:"id"`
	Labels    map[string]string `json:"labels,omitempty"`
	Slots     int               `json:"slots"`
	StartedAt time.Time         `json:"started_at"`
	// Lock names the lock the executor holds for the node's life ("host:
	// path"): a successor holding the same lock knows this executor is
	// dead and takes the registration over without waiting for its lease.
	Lock string `json:"lock,omitempty"`
	// PID is the executor's process ID.
	PID int `json:"pid,omitempty"`
	// Lease is the etcd lease the registration is written on: runs an
	// executor claims carry it (Fire.Lease), so the leader can tell them
	// from runs of a predecessor of the same node.
	Lease int64 `json:"lease,omitempty"`
	// Policy is what the node allows jobs (users, container settings); the
	// leader places a job only where it allows the job. A registration
	// without one (from before policies) has the default policy.
	Policy *jobspec.NodePolicy `json:"policy,omitempty"`
}

// NodePolicy returns the node's policy, or the default policy when its
// registration has none.
func (n *Node) NodePolicy() *jobspec.NodePolicy {
	if n.Policy == nil {
		return &jobspec.NodePolicy{}
	}
	return n.Policy
}

// Labels executors set on their registration.
const (
	// DockerLabel is "true" on an executor that found a Docker engine; the
	// leader places container jobs only on such nodes.
	DockerLabel = "aion.docker"
	// DockerVersionLabel holds the engine's version on such a node.
	DockerVersionLabel = "aion.docker.version"
)

// LoadSubject carries every executor's LoadReport, once a second.
func LoadSubject(prefix string) string { return prefix + "nodes.load" }

// EventSubject carries a FireEvent for every state change of job's fires.
func EventSubject(prefix, job string) string { return prefix + "events." + job }

// EventsWildcard is the subject that matches every job's EventSubject.
func EventsWildcard(prefix string) string { return prefix + "events.>" }

// validNodeID is what a node ID may be: it is a NATS subject token and an
// etcd key segment, so no dots, wildcards, spaces or slashes.
var validNodeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// ValidNodeID reports whether s can name an executor node: 1-63 letters,
// digits, '-' or '_', starting with a letter or digit.
func ValidNodeID(s string) bool { return validNodeID.MatchString(s) }

var validSubjectPrefix = regexp.MustCompile(`^([A-Za-z0-9_-]+\.)+$`)

// ValidSubjectPrefix reports whether s can start Aion's NATS subjects: one
// or more tokens of letters, digits, '-' or '_', each followed by '.', as
// in "aion.".
func ValidSubjectPrefix(s string) bool { return validSubjectPrefix.MatchString(s) }

// DispatchSubject is the subject an executor receives its Dispatch messages on.
func DispatchSubject(prefix, node string) string { return prefix + "dispatch." + node }

// Dispatch tells an executor to claim and run a fire. It is a hint; the
// fire record is the truth. It carries the record as the leader wrote it
// and its revision, so the executor can claim in one transaction that
// compares both (and reads the job's definition) instead of reading the
// record first; a dispatch whose record does not match etcd's is only a
// prompt to read it. A fire with env overrides (a manual run's --env) is
// dispatched without the copy, so their values stay off NATS.
type Dispatch struct {
	Fire    FireID `json:"fire"`
	Attempt int    `json:"attempt"`
	Rev     int64  `json:"rev,omitempty"`    // the record's mod revision
	Record  []byte `json:"record,omitempty"` // the record's value at Rev
}

// LoadReport is an executor's load, published every second.
type LoadReport struct {
	Node    string            `json:"node"`
	Labels  map[string]string `json:"labels,omitempty"`
	Slots   int               `json:"slots"`
	Running int               `json:"running"`
	Load1   float64           `json:"load1"`
	MemFree uint64            `json:"mem_free"`
	At      time.Time         `json:"at"`
}

// FireEvent announces a fire's new state to watchers (aion dev prints them).
type FireEvent struct {
	Fire     FireID    `json:"fire"`
	State    FireState `json:"state"`
	Node     string    `json:"node,omitempty"`
	At       time.Time `json:"at"`
	ExitCode *int      `json:"exit_code,omitempty"`
	// Summary is the reason of a final state (never output: events go to
	// anyone on NATS).
	Summary string `json:"summary,omitempty"`
}

// LogSubject is the subject an executor answers LogRequest on.
func LogSubject(prefix, node string) string { return prefix + "logs." + node }

// LogRequest asks an executor for a run's output from Offset on. It is
// answered only when signed (Sign) with the log signing key kept in etcd
// and not expired: only schedulers' API servers, which read etcd, can
// sign one (see logauth.go).
type LogRequest struct {
	Fire    FireID    `json:"fire"`
	Attempt int       `json:"attempt"` // 0 means 1
	Offset  int64     `json:"offset"`
	Expires time.Time `json:"expires"`
	// Signature is HMAC-SHA256 of the fields above under the log signing key.
	Signature []byte `json:"signature,omitempty"`
}

// LogChunk is a piece of a run's output: Data starts at the request's
// offset; Size is the output's length when the chunk was read.
type LogChunk struct {
	Data  []byte `json:"data"`
	Size  int64  `json:"size"`
	Error string `json:"error,omitempty"`
}

// MaxLogChunk bounds one LogChunk's data.
const MaxLogChunk = 512 << 10

// KillSubject is the subject an executor receives Kill messages on.
func KillSubject(prefix, node string) string { return prefix + "kill." + node }

// Kill is a hint to an executor that the record of a fire it runs asks it
// to stop the attempt (Fire.Kill): the executor reads the record and acts
// only on what it says, so a forged Kill stops nothing.
type Kill struct {
	Fire    FireID `json:"fire"`
	Attempt int    `json:"attempt"`
}
