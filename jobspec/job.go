package jobspec

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Job is one job as written in a job file, after defaults are applied. It is
// the definition stored under jobs/<name>; running a job never changes it.
type Job struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	Owner       string `yaml:"owner" json:"owner,omitempty"`
	// Schedule is a cron expression, an ISO 8601 repeating interval, or
	// "manual". Empty when the job runs after its Parents.
	Schedule string `yaml:"schedule" json:"schedule,omitempty"`
	// CronSeconds makes a 6-field cron Schedule start with a seconds field.
	CronSeconds bool `yaml:"cron_seconds" json:"cron_seconds,omitempty"`
	// Timezone is the IANA zone the schedule is computed in (default UTC).
	Timezone string `yaml:"timezone" json:"timezone"`

	Command string `yaml:"command" json:"command,omitempty"` // run by Shell -c
	// Shell is the absolute path of the shell that runs Command on a host;
	// empty means DefaultShell.
	Shell string            `yaml:"shell" json:"shell,omitempty"`
	Args  []string          `yaml:"args" json:"args,omitempty"` // argv, no shell
	Env   map[string]string `yaml:"env" json:"env,omitempty"`
	// EnvFrom takes variables from the executor at run time (a file in
	// its secrets_dir, or its own environment), so their values never
	// enter etcd or the API; they override Env.
	EnvFrom []EnvSource `yaml:"env_from" json:"env_from,omitempty"`
	// SecretEnv names Env variables whose values the API never shows
	// (names that look secret, see LooksSecret, are hidden too).
	SecretEnv []string `yaml:"secret_env" json:"secret_env,omitempty"`
	Workdir   string   `yaml:"workdir" json:"workdir,omitempty"`
	User      string   `yaml:"user" json:"user,omitempty"`
	// Timeout kills the run after this long; 0 means no limit.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
	// OutputLimit caps the output a run keeps (stdout and stderr): past it
	// the output file stops growing and the fire record says it was
	// truncated. 0 means the executor's limit.
	OutputLimit Bytes `yaml:"output_limit" json:"output_limit,omitempty"`

	Retries     Retries     `yaml:"retries" json:"retries"`
	Concurrency Concurrency `yaml:"concurrency" json:"concurrency"`
	Misfire     Misfire     `yaml:"misfire" json:"misfire"`

	// Parents are the jobs that must all succeed before this one runs.
	Parents []string `yaml:"parents" json:"parents,omitempty"`
	// SoftFail lets this job's children run even when it fails: its end,
	// success or failure, counts as done for them.
	SoftFail bool `yaml:"soft_fail" json:"soft_fail,omitempty"`
	// Constraints select executor nodes by label, all of which must hold:
	// "zone=eu", "disk!=hdd", "tier in (a,b)", "gpu", "!spot".
	Constraints []string   `yaml:"constraints" json:"constraints,omitempty"`
	Resources   Resources  `yaml:"resources" json:"resources"`
	Container   *Container `yaml:"container" json:"container,omitempty"`

	Disabled bool              `yaml:"disabled" json:"disabled,omitempty"`
	Labels   map[string]string `yaml:"labels" json:"labels,omitempty"`
	Notify   Notify            `yaml:"notify" json:"notify"`

	// Source is where the job was defined; it is not part of the definition.
	Source Position `yaml:"-" json:"-"`
	// positions maps field paths to where they were written, for set checks.
	positions map[string]Position
	// warnings are habits that do not stop the job from loading but may not
	// do what the author meant (see Warnings).
	warnings ErrorList
}

// Warnings returns what loading the job warned about, each at the field it
// concerns; its message starts with "warning: ". Warnings never stop a job
// from loading.
func (j *Job) Warnings() ErrorList { return j.warnings }

// Warnings returns the warnings of every job, in file and line order.
func Warnings(jobs []*Job) ErrorList {
	var all ErrorList
	for _, j := range jobs {
		all = append(all, j.warnings...)
	}
	all.sort()
	return all
}

// ShellPath returns the shell that runs the job's command: Shell, or
// DefaultShell when it is not set.
func (j *Job) ShellPath() string {
	if j.Shell == "" {
		return DefaultShell
	}
	return j.Shell
}

// EnvSource is one entry of env_from: exactly one of File and Env.
type EnvSource struct {
	// File is a file of KEY=VALUE lines, relative to the executor's
	// secrets_dir; every variable in it is set.
	File string `yaml:"file" json:"file,omitempty"`
	// Env names a variable of the executor's own environment, set under
	// the same name; the executor passes only names in its pass_env.
	Env string `yaml:"env" json:"env,omitempty"`
}

// SecretPlaceholder is shown by the API instead of a secret value.
const SecretPlaceholder = "<hidden>"

// secretWords are the parts of a variable name that make it look secret.
var secretWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "API_KEY", "PRIVATE_KEY", "CREDENTIAL"}

// LooksSecret reports whether a variable name looks like it holds a
// secret (DB_PASSWORD, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, ...).
func LooksSecret(name string) bool {
	upper := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(upper, w) {
			return true
		}
	}
	return false
}

// IsSecretEnv reports whether the API hides the value of the job's Env
// variable name: it is listed in SecretEnv or looks secret.
func (j *Job) IsSecretEnv(name string) bool {
	return LooksSecret(name) || slices.Contains(j.SecretEnv, name)
}

// Redacted returns a copy of the job to show (the API, the CLI): the
// values of its secret Env variables replaced by SecretPlaceholder.
func (j *Job) Redacted() *Job {
	c := *j
	if len(j.Env) > 0 {
		c.Env = make(map[string]string, len(j.Env))
		for k, v := range j.Env {
			if j.IsSecretEnv(k) {
				v = SecretPlaceholder
			}
			c.Env[k] = v
		}
	}
	return &c
}

// Retries says how often a failed run is tried again.
type Retries struct {
	Count   int     `yaml:"count" json:"count"`
	Backoff Backoff `yaml:"backoff" json:"backoff"`
	// OnLost retries runs whose executor died; by default a lost run is
	// reported and not run again.
	OnLost bool `yaml:"on_lost" json:"on_lost,omitempty"`
}

// Backoff is an exponential delay between attempts: Initial, doubled per
// attempt, capped at Max.
type Backoff struct {
	Initial Duration `yaml:"initial" json:"initial"`
	Max     Duration `yaml:"max" json:"max"`
}

// Concurrency says what happens when a run is due while another runs.
type Concurrency string

// The concurrency policies.
const (
	ConcurrencyAllow   Concurrency = "allow"   // start it anyway
	ConcurrencyForbid  Concurrency = "forbid"  // skip the new run and record it as skipped
	ConcurrencyReplace Concurrency = "replace" // cancel the running one, then start
	ConcurrencyQueue   Concurrency = "queue"   // start after the running one ends; at most one waits
)

// MisfirePolicy says what happens to nominal times missed while no leader
// could plan them.
type MisfirePolicy string

// The misfire policies.
const (
	MisfireSkip    MisfirePolicy = "skip"     // record them as skipped
	MisfireRunOnce MisfirePolicy = "run-once" // run once for all of them
	MisfireRunAll  MisfirePolicy = "run-all"  // run each, at most MaxCatchup
)

// Misfire is the catch-up policy.
type Misfire struct {
	Policy MisfirePolicy `yaml:"policy" json:"policy"`
	// MaxCatchup caps run-all: at most this many missed times run (0 or
	// missing means DefaultMaxCatchup).
	MaxCatchup int `yaml:"max_catchup" json:"max_catchup"`
	// StartingDeadline: a missed time older than this is skipped, whatever
	// the policy; 0 means no deadline.
	StartingDeadline Duration `yaml:"starting_deadline" json:"starting_deadline,omitempty"`
}

// Resources are what a run needs from its node.
type Resources struct {
	CPUs   float64 `yaml:"cpus" json:"cpus,omitempty"`
	Memory Bytes   `yaml:"memory" json:"memory,omitempty"`
}

// PullPolicy says when an executor pulls a container image.
type PullPolicy string

// The pull policies.
const (
	PullAlways  PullPolicy = "always"
	PullMissing PullPolicy = "missing"
	PullNever   PullPolicy = "never"
)

// Container runs the job's command or args inside a Docker container.
type Container struct {
	Image      string     `yaml:"image" json:"image"`
	Pull       PullPolicy `yaml:"pull" json:"pull"`
	Volumes    []string   `yaml:"volumes" json:"volumes,omitempty"` // host:container[:ro|rw]
	Network    string     `yaml:"network" json:"network,omitempty"`
	User       string     `yaml:"user" json:"user,omitempty"`
	Entrypoint []string   `yaml:"entrypoint" json:"entrypoint,omitempty"`
	// CapAdd gives the container Linux capabilities back (it starts with
	// none), as names without CAP_ (NET_BIND_SERVICE); each must be in the
	// executor's executor.container_capabilities.
	CapAdd []string `yaml:"cap_add" json:"cap_add,omitempty"`
}

// Notify lists webhooks to be called with the fire record when a run
// ends. It is validated, but nothing calls them yet.
type Notify struct {
	OnFailure []string `yaml:"on_failure" json:"on_failure,omitempty"`
	OnSuccess []string `yaml:"on_success" json:"on_success,omitempty"`
}

// Defaults a sysadmin expects; docs/jobs.md documents each.
const (
	DefaultShell            = "/bin/sh"
	DefaultTimezone         = "UTC"
	DefaultConcurrency      = ConcurrencyForbid
	DefaultMisfirePolicy    = MisfireRunOnce
	DefaultMaxCatchup       = 10
	DefaultBackoffInitial   = 10 * time.Second
	DefaultBackoffMax       = 10 * time.Minute
	DefaultPullPolicy       = PullMissing
	DefaultContainerNetwork = "bridge"
)

// IsManual reports whether the job only runs when triggered by hand.
func (j *Job) IsManual() bool { return j.Schedule == Manual }

// Location returns the job's time zone; the zone was checked by Load.
func (j *Job) Location() *time.Location {
	if loc, err := loadLocation(j.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// ParsedSchedule returns the job's schedule, or nil for manual and dependent
// jobs. now stands in for an ISO 8601 schedule's empty start.
func (j *Job) ParsedSchedule(now time.Time) (Schedule, error) {
	if j.Schedule == "" || j.IsManual() {
		return nil, nil
	}
	return ParseSchedule(j.Schedule, Options{Location: j.Location(), CronSeconds: j.CronSeconds, Now: now})
}

func (j *Job) applyDefaults() {
	if j.Timezone == "" {
		j.Timezone = DefaultTimezone
	}
	if j.Concurrency == "" {
		j.Concurrency = DefaultConcurrency
	}
	if j.Misfire.Policy == "" {
		j.Misfire.Policy = DefaultMisfirePolicy
	}
	if j.Misfire.MaxCatchup == 0 {
		j.Misfire.MaxCatchup = DefaultMaxCatchup
	}
	if j.Retries.Backoff.Initial == 0 {
		j.Retries.Backoff.Initial = Duration(DefaultBackoffInitial)
	}
	if j.Retries.Backoff.Max == 0 {
		j.Retries.Backoff.Max = max(Duration(DefaultBackoffMax), j.Retries.Backoff.Initial)
	}
	if c := j.Container; c != nil {
		if c.Pull == "" {
			c.Pull = DefaultPullPolicy
		}
		if c.Network == "" {
			c.Network = DefaultContainerNetwork
		}
	}
}

// Duration is a time.Duration written as "90s", "1h30m" or "2d" in files.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration as Go does ("1h30m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText accepts Go durations plus a "d" suffix for whole days.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the Go duration form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("bad duration %q: want e.g. 30s, 15m, 1h30m or 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want e.g. 30s, 15m, 1h30m or 7d", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("bad duration %q: must not be negative", s)
	}
	return v, nil
}

// Bytes is a size written as a plain number of bytes or with a unit:
// Ki, Mi, Gi, Ti (powers of 1024) or K, M, G, T (powers of 1000), each
// with an optional B (10MiB, 1GB); a lone B means bytes.
type Bytes int64

// UnmarshalText parses a size.
func (b *Bytes) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	units := []struct {
		suffix string
		mult   float64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"K", 1e3}, {"k", 1e3}, {"M", 1e3 * 1e3}, {"G", 1e9}, {"T", 1e12},
	}
	num, _ := strings.CutSuffix(s, "B")
	mult := 1.0
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			mult, num = u.mult, n
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || v < 0 || v*mult > 1<<50 {
		return fmt.Errorf("bad size %q: want bytes or a number with Ki, Mi, Gi, Ti, K, M, G or T (B optional), e.g. 512Mi or 10MiB", s)
	}
	*b = Bytes(v * mult)
	return nil
}

// String writes the size as a job file would: 10MiB, 1GiB, 1500000 (in
// bytes when no binary unit divides it).
func (b Bytes) String() string {
	for _, u := range []struct {
		size Bytes
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if b >= u.size && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText writes the size as a plain number of bytes.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(b), 10)), nil }
