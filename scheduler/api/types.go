package api

import (
	"time"

	"github.com/aionsched/aion/jobspec"
)

// The request and response bodies of the API. Server and Client use the
// same types, so a change here is a change of the wire format.

// Limits of the API.
const (
	// MaxBodyBytes bounds a request body (an apply sends whole job files).
	MaxBodyBytes = 8 << 20
	// DefaultFireLimit and MaxFireLimit bound fire listings.
	DefaultFireLimit = 20
	MaxFireLimit     = 1000
	// DefaultJobLimit and MaxJobLimit bound one page of GET /v1/jobs.
	DefaultJobLimit = 500
	MaxJobLimit     = 5000
)

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Problems lists the individual problems, one line each: for job files
	// "file:line:col: field: message", as `aion validate` prints them.
	Problems []string `json:"problems,omitempty"`
}

// File is one job file sent to POST /v1/apply.
type File struct {
	// Name is the path as the user gave it; problems are reported with it.
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ApplyRequest is the body of POST /v1/apply.
type ApplyRequest struct {
	Files []File `json:"files"`
	// Set names the apply set the jobs are recorded in; prune deletes only
	// jobs of this set. A job recorded in another set is refused unless
	// force_conflicts moves it into this one.
	Set string `json:"set,omitempty"`
	// DefaultSet is the set when Set is empty (default: the file names,
	// sorted, joined by commas). A job recorded in another set then stays
	// in it, updated, and is no conflict; jobs of no set join it.
	DefaultSet string `json:"default_set,omitempty"`
}

// ApplyResult lists the jobs an apply created, updated, left unchanged and
// deleted (with prune), each sorted by name.
type ApplyResult struct {
	Created   []string `json:"created"`
	Updated   []string `json:"updated"`
	Unchanged []string `json:"unchanged"`
	Deleted   []string `json:"deleted"`
	// Kept lists, with prune, the stored jobs in none of the files that
	// were left because they belong to another apply set or to none.
	Kept []string `json:"kept"`
	// Owners gives the apply set ("" for none) of each job of the result
	// that is recorded in another set than this apply's.
	Owners map[string]string `json:"owners,omitempty"`
}

// ApplyResponse says what an apply changed (or would change, with DryRun).
type ApplyResponse struct {
	ApplyResult
	Set      string `json:"set"`
	DryRun   bool   `json:"dry_run"`
	Prune    bool   `json:"prune"`
	PruneAll bool   `json:"prune_all"`
}

// JobSummary is one row of GET /v1/jobs.
type JobSummary struct {
	Name string `json:"name"`
	// Schedule is the cron or ISO 8601 expression, "manual", or
	// "after a, b" for a job run after its parents.
	Schedule string   `json:"schedule"`
	Parents  []string `json:"parents,omitempty"`
	Timezone string   `json:"timezone"`
	Disabled bool     `json:"disabled"`
	// Paused jobs skip (and record) their nominal times until resumed.
	Paused bool `json:"paused,omitempty"`
	// Next is the next nominal time, in the job's zone; absent for manual,
	// dependent, disabled and paused jobs and for schedules that have ended.
	Next        time.Time `json:"next,omitzero"`
	LastFire    string    `json:"last_fire,omitempty"`
	LastResult  FireState `json:"last_result,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// JobList is the body of GET /v1/jobs: one page of the jobs that match
// the query (JobQuery), sorted by name.
type JobList struct {
	Jobs []JobSummary `json:"jobs"`
	// Next, when not empty, is the after= of the next page: there may be
	// more jobs that match.
	Next string `json:"next,omitempty"`
}

// JobQuery are the query parameters of GET /v1/jobs
// (?state=&name=&label=&limit=&after=); every one is optional.
type JobQuery struct {
	// State keeps the jobs whose last result is this fire state, or those
	// "paused" or "disabled".
	State string
	// Name keeps the jobs whose name matches this glob (path.Match: *, ?,
	// [a-z]).
	Name string
	// Labels keep the jobs that carry every one of these labels, as
	// "key=value".
	Labels []string
	// Limit bounds the page (1 to MaxJobLimit; 0 means DefaultJobLimit).
	Limit int
	// After starts the page after this job name (JobList.Next).
	After string
}

// NextRun is one coming nominal time of a job, with how DST moved it.
type NextRun struct {
	Time time.Time `json:"time"` // in the job's zone
	// Wall is the wall time the schedule asked for (2006-01-02T15:04:05);
	// it differs from Time's reading when a DST jump skipped it.
	Wall string `json:"wall"`
	// Shift is "", "gap" (skipped by a DST jump: runs right after it),
	// "repeated-first" or "repeated-second" (a wall time that occurs twice).
	Shift string `json:"shift,omitempty"`
	Note  string `json:"note,omitempty"` // Shift in words
}

// JobDetail is the body of GET /v1/jobs/{name}.
type JobDetail struct {
	Job   *jobspec.Job `json:"job"`
	State JobState     `json:"state"`
	Next  []NextRun    `json:"next"`
	// Fires are the most recent fire records, newest first.
	Fires []Fire `json:"fires"`
}

// RunRequest is the body of POST /v1/jobs/{name}/run; it may be empty.
type RunRequest struct {
	// Env overrides the job's environment for this run only.
	Env map[string]string `json:"env,omitempty"`
	// Args replace an args job's arguments, or become $1, $2, ... of a
	// command job, for this run only.
	Args []string `json:"args,omitempty"`
	// Downstream also runs the jobs that depend on this one afterwards;
	// without it a manual run runs the job alone.
	Downstream bool `json:"downstream,omitempty"`
}

// RunResponse is the answer to a run request: the ID the fire will have
// once the leader plans it (GET /v1/fires/{job}/{suffix} is 404 until then).
type RunResponse struct {
	Fire string `json:"fire"`
}

// EnableResponse is the answer to enable and disable.
type EnableResponse struct {
	Job      string `json:"job"`
	Disabled bool   `json:"disabled"`
	// Changed is false when the job already was in the asked state.
	Changed bool `json:"changed"`
}

// DeleteResponse is the answer to DELETE /v1/jobs/{name}.
type DeleteResponse struct {
	Deleted  string   `json:"deleted"`
	Cascaded []string `json:"cascaded,omitempty"` // descendants deleted with it (cascade=true)
}

// FireList is the body of GET /v1/jobs/{name}/fires, newest first.
type FireList struct {
	Fires []Fire `json:"fires"`
}

// LogChunk is a piece of a fire's output, from GET
// /v1/fires/{job}/{suffix}/log?offset=N (&attempt=K for attempt K of a
// retried fire, 1 the first; without it the latest). Data starts at Offset; Size is
// the output's length when it was read. Output is complete once Final is
// true and Offset+len(Data) has reached Size.
type LogChunk struct {
	Fire  string    `json:"fire"`
	State FireState `json:"state"`
	Node  string    `json:"node,omitempty"`
	Final bool      `json:"final"`
	// Attempt is the attempt whose output this is; a retry starts a new
	// output, so a client following a fire starts again at offset 0.
	Attempt int    `json:"attempt"`
	Offset  int64  `json:"offset"`
	Data    []byte `json:"data"`
	Size    int64  `json:"size"`
	// Note says why there is no output, when there is none to fetch.
	Note string `json:"note,omitempty"`
}

// NodeInfo is one executor in GET /v1/nodes: its registration and, when
// this scheduler has heard one, its latest load report.
type NodeInfo struct {
	Node
	Running    int       `json:"running"`
	Load1      float64   `json:"load1"`
	MemFree    uint64    `json:"mem_free"`
	LastReport time.Time `json:"last_report,omitzero"` // zero: no report heard yet
}

// NodeList is the body of GET /v1/nodes, sorted by ID.
type NodeList struct {
	Nodes []NodeInfo `json:"nodes"`
}

// KillRequest asks to stop an open fire; it has no fields (the token
// says who asked).
type KillRequest struct{}

// KillResponse is the answer to a kill request.
type KillResponse struct {
	Fire   string `json:"fire"`
	Status string `json:"status"` // "kill requested"
}

// PauseRequest pauses (note) or resumes (catchup) a job.
type PauseRequest struct {
	Note    string `json:"note,omitempty"`
	Catchup bool   `json:"catchup,omitempty"`
}

// PauseResponse is the answer to a pause or resume request; the leader
// applies it to the job's state shortly after.
type PauseResponse struct {
	Catchup bool   `json:"catchup"`
	Job     string `json:"job"`
	Pause   bool   `json:"pause"` // false: resume
}

// BackfillRequest plans every nominal time of a job in [From, To]. A range
// end may instead be a date (YYYY-MM-DD) of the job's zone: FromDate is
// from the start of that day, ToDate to its end (the whole day included).
type BackfillRequest struct {
	From     time.Time `json:"from,omitzero"`
	To       time.Time `json:"to,omitzero"`
	FromDate string    `json:"from_date,omitempty"`
	ToDate   string    `json:"to_date,omitempty"`
	Parallel int       `json:"parallel,omitempty"`
	DryRun   bool      `json:"dry_run,omitempty"`
}

// BackfillTime is one nominal time of a backfill and whether a fire for it
// exists already (then the backfill leaves it alone).
type BackfillTime struct {
	Fire   string    `json:"fire"`
	At     time.Time `json:"at"`
	Exists bool      `json:"exists"`
}

// BackfillResponse lists the times a backfill covers; Request names the
// backfill (empty for a dry run).
type BackfillResponse struct {
	Request string         `json:"request,omitempty"`
	Times   []BackfillTime `json:"times"`
	New     int            `json:"new"`
}

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// TokenInfo is one token as the API shows it: never its secret nor its
// hash. CreatedBy is the token that made it ("etcd" when made with etcd
// access, "aion dev" for dev's own).
type TokenInfo struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// CreateTokenResponse is the answer to POST /v1/tokens: the token and its
// secret, which is shown this once (the server keeps only its hash).
type CreateTokenResponse struct {
	TokenInfo
	Secret string `json:"secret"`
}

// TokenList is the body of GET /v1/tokens, sorted by name.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// RevokeTokenResponse is the answer to DELETE /v1/tokens/{name}.
type RevokeTokenResponse struct {
	Revoked string `json:"revoked"`
}
