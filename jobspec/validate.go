package jobspec

import (
	"fmt"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // zone names validate the same on hosts without /usr/share/zoneinfo
)

// Limits on sizes, so that a job definition stays a small etcd value.
const (
	MaxCommandBytes = 64 << 10
	MaxEnvBytes     = 64 << 10
	MaxParents      = 64
	MaxTextBytes    = 4 << 10 // description, owner, label values
	// MaxJobBytes bounds a whole definition as stored in etcd (JSON), well
	// below etcd's default request limit of 1.5 MiB.
	MaxJobBytes = 1 << 20
	// MaxAliasValues bounds the values that aliases (*name) expand to in one
	// file, so that a small file cannot expand into millions of values.
	MaxAliasValues = 100_000
)

var (
	validName    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	validEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	validUser    = regexp.MustCompile(`^([a-z_][a-z0-9_.-]{0,31}|[0-9]{1,10})(:([a-z_][a-z0-9_.-]{0,31}|[0-9]{1,10}))?$`)
	validLabel   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
)

// ValidName reports whether s can be a job name: 1-63 lower-case letters,
// digits, '-' or '_', starting with a letter or digit. Such names are safe in
// etcd keys, file names and NATS subjects.
func ValidName(s string) bool { return validName.MatchString(s) }

// checker collects the problems of one job.
type checker struct {
	pos Position            // the job's mapping, for fields that are missing
	at  map[string]Position // where each field was written
	// undecoded holds the fields whose value did not decode (and so were
	// reported already).
	undecoded map[string]bool
	errs      ErrorList
	warns     ErrorList
}

// errorf reports a problem at the field.
func (c *checker) errorf(field, format string, args ...any) {
	c.errs = append(c.errs, c.locate(field).errorf(field, format, args...))
}

// warnf reports a warning at the field: a habit that does not stop the job
// from loading.
func (c *checker) warnf(field, format string, args ...any) {
	c.warns = append(c.warns, c.locate(field).errorf(field, "warning: "+format, args...))
}

// locate returns where the field was written, or where the nearest
// enclosing field was when the field itself is missing.
func (c *checker) locate(field string) Position {
	for f := field; f != ""; {
		if at, ok := c.at[f]; ok {
			return at
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return c.pos
}

func (c *checker) job(j *Job) {
	c.name(j)
	c.schedule(j)
	c.command(j)
	c.text("description", j.Description)
	c.text("owner", j.Owner)
	if j.Workdir != "" && !path.IsAbs(j.Workdir) {
		c.errorf("workdir", "must be an absolute path, got %q", j.Workdir)
	}
	if j.User != "" && !validUser.MatchString(j.User) {
		c.errorf("user", "want a user name or uid, optionally with :group, got %q", j.User)
	}
	c.outputLimit(j.OutputLimit)
	c.retries(j.Retries)
	c.oneOf("concurrency", string(j.Concurrency), ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace, ConcurrencyQueue)
	c.misfire(j.Misfire)
	c.parents(j)
	for i, expr := range j.Constraints {
		if _, err := ParseSelector(expr); err != nil {
			c.errorf(fmt.Sprintf("constraints[%d]", i), "%v", err)
		}
	}
	if j.Resources.CPUs < 0 || j.Resources.CPUs > 1024 {
		c.errorf("resources.cpus", "must be between 0 and 1024, got %v", j.Resources.CPUs)
	}
	if j.Container != nil {
		c.container(j.Container)
	}
	c.labels(j.Labels)
	c.urls("notify.on_failure", j.Notify.OnFailure)
	c.urls("notify.on_success", j.Notify.OnSuccess)
}

func (c *checker) name(j *Job) {
	switch {
	case j.Name == "":
		c.errorf("name", "missing: every job needs a name")
	case !validName.MatchString(j.Name):
		c.errorf("name", "%q is not a valid name: use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit", j.Name)
	}
}

func (c *checker) schedule(j *Job) {
	hasParents := len(j.Parents) > 0
	switch {
	case j.Schedule == "" && !hasParents:
		c.errorf("schedule", `missing: give a schedule (cron, ISO 8601, or "manual" for a job only run by hand) or parents`)
		return
	case j.Schedule != "" && hasParents:
		c.errorf("schedule", "a job runs either on a schedule or after its parents, not both: remove schedule or parents")
		return
	}
	loc, err := loadLocation(j.Timezone)
	if err != nil {
		c.errorf("timezone", "%v", err)
		return
	}
	if j.Schedule == "" || j.IsManual() {
		if j.CronSeconds {
			c.errorf("cron_seconds", "only applies to a cron schedule")
		}
		return
	}
	s, err := ParseSchedule(j.Schedule, Options{Location: loc, CronSeconds: j.CronSeconds, Now: time.Now()})
	if err != nil {
		c.errorf("schedule", "%v", err)
		return
	}
	if _, isCron := s.(*CronSchedule); !isCron && j.CronSeconds {
		c.errorf("cron_seconds", "only applies to a cron schedule with fields")
	}
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf(`"Local" depends on the machine: name an IANA zone such as Europe/Berlin`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: want an IANA name such as Europe/Berlin or America/New_York", name)
	}
	return loc, nil
}

func (c *checker) command(j *Job) {
	switch {
	case j.Command == "" && len(j.Args) == 0 && j.Container == nil:
		c.errorf("command", "missing: give command (run by /bin/sh -c) or args (run without a shell)")
	case j.Command != "" && len(j.Args) > 0:
		c.errorf("args", "give command or args, not both")
	}
	size := len(j.Command)
	for _, a := range j.Args {
		size += len(a)
	}
	if size > MaxCommandBytes {
		field := "command"
		if j.Command == "" {
			field = "args" // report it where it was written
		}
		c.errorf(field, "too long: %d bytes, the limit is %d", size, MaxCommandBytes)
	}
	if len(j.Args) > 0 && j.Args[0] == "" {
		c.errorf("args[0]", "the program to run must not be empty")
	}
	c.shell(j)
	if strings.Contains(j.Command, `\%`) {
		c.warnf("command", `\%% is crontab's escape for %%; Aion runs the command as written, where %% needs no escape and the backslash stays inside quotes: write %%`)
	}
	envSize := 0
	for _, k := range sortedKeys(j.Env) {
		envSize += len(k) + len(j.Env[k])
		field := "env." + k
		switch {
		case !validEnvName.MatchString(k):
			c.errorf(field, "%q is not a valid variable name: use letters, digits and '_', not starting with a digit", k)
		case strings.HasPrefix(k, "AION_"):
			c.errorf(field, "names starting with AION_ are set by Aion for every run")
		case strings.ContainsRune(j.Env[k], 0):
			c.errorf(field, "value contains a NUL byte")
		}
	}
	if envSize > MaxEnvBytes {
		c.errorf("env", "too large: %d bytes, the limit is %d", envSize, MaxEnvBytes)
	}
	c.secrets(j)
}

// secrets checks env_from and secret_env, and warns about env values
// whose names look secret: they are stored in etcd (the API hides them).
func (c *checker) secrets(j *Job) {
	for i, src := range j.EnvFrom {
		field := fmt.Sprintf("env_from[%d]", i)
		switch {
		case (src.File == "") == (src.Env == ""):
			c.errorf(field, "give file (KEY=VALUE lines in the executor's secrets_dir) or env (a variable of the executor's environment), one per entry")
		case src.File != "" && (!filepath.IsLocal(src.File) || strings.ContainsRune(src.File, 0)):
			c.errorf(field+".file", "must be a relative path inside the executor's secrets_dir (no '..', not absolute), got %q", src.File)
		case src.Env != "" && !validEnvName.MatchString(src.Env):
			c.errorf(field+".env", "%q is not a valid variable name: use letters, digits and '_', not starting with a digit", src.Env)
		case strings.HasPrefix(src.Env, "AION_"):
			c.errorf(field+".env", "names starting with AION_ are set by Aion for every run")
		}
	}
	for i, name := range j.SecretEnv {
		if _, ok := j.Env[name]; !ok {
			c.errorf(fmt.Sprintf("secret_env[%d]", i), "%q is not a variable of env (values from env_from are never stored, so need no marking)", name)
		}
	}
	for _, k := range sortedKeys(j.Env) {
		if LooksSecret(k) && validEnvName.MatchString(k) {
			c.warnf("env."+k, "%s looks like a secret: the API hides its value, but it is stored in etcd with the job; take it from the executor with env_from instead", k)
		}
	}
}

// shell checks the shell that runs a host command: an absolute path, for
// command jobs only.
func (c *checker) shell(j *Job) {
	switch {
	case j.Shell == "":
	case len(j.Args) > 0:
		c.errorf("shell", "only applies to command: args run without a shell")
	case j.Container != nil:
		c.errorf("shell", "only applies to host runs: a container runs its command with /bin/sh -c")
	case !path.IsAbs(j.Shell) || path.Clean(j.Shell) != j.Shell:
		c.errorf("shell", "must be an absolute path, e.g. /bin/bash, got %q", j.Shell)
	case strings.ContainsAny(j.Shell, " \t\x00"):
		c.errorf("shell", "must be the shell's path alone, without arguments or blanks, got %q", j.Shell)
	}
}

func (c *checker) text(field, value string) {
	if len(value) > MaxTextBytes {
		c.errorf(field, "too long: %d bytes, the limit is %d", len(value), MaxTextBytes)
	}
}

// outputLimit refuses an output_limit written as 0: leaving it out means
// the executor's limit.
func (c *checker) outputLimit(limit Bytes) {
	if _, set := c.at["output_limit"]; set && limit <= 0 && !c.undecoded["output_limit"] {
		c.errorf("output_limit", "must be more than 0; leave it out for the executor's limit")
	}
}

func (c *checker) retries(r Retries) {
	if r.Count < 0 || r.Count > 100 {
		c.errorf("retries.count", "must be between 0 and 100, got %d", r.Count)
	}
	if r.Backoff.Max < r.Backoff.Initial {
		c.errorf("retries.backoff.max", "must not be less than backoff.initial (%s)", r.Backoff.Initial)
	}
}

func (c *checker) misfire(m Misfire) {
	c.oneOf("misfire.policy", string(m.Policy), MisfireSkip, MisfireRunOnce, MisfireRunAll)
	if m.MaxCatchup < 1 || m.MaxCatchup > 10_000 {
		c.errorf("misfire.max_catchup", "must be between 1 and 10000 (0 or missing means %d), got %d", DefaultMaxCatchup, m.MaxCatchup)
	}
}

func (c *checker) parents(j *Job) {
	if len(j.Parents) > MaxParents {
		c.errorf("parents", "too many parents: %d, the limit is %d", len(j.Parents), MaxParents)
	}
	seen := make(map[string]bool)
	for i, p := range j.Parents {
		field := fmt.Sprintf("parents[%d]", i)
		switch {
		case !validName.MatchString(p):
			c.errorf(field, "%q is not a valid job name", p)
		case p == j.Name:
			c.errorf(field, "a job cannot be its own parent")
		case seen[p]:
			c.errorf(field, "%q is listed twice", p)
		}
		seen[p] = true
	}
}

func (c *checker) container(ct *Container) {
	if ct.Image == "" {
		c.errorf("container.image", "missing: name the image to run, e.g. busybox:1.36")
	} else if strings.ContainsAny(ct.Image, " \t\n") {
		c.errorf("container.image", "%q is not a valid image reference", ct.Image)
	}
	c.oneOf("container.pull", string(ct.Pull), PullAlways, PullMissing, PullNever)
	for i, v := range ct.Volumes {
		parts := strings.Split(v, ":")
		field := fmt.Sprintf("container.volumes[%d]", i)
		switch {
		case len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "":
			c.errorf(field, "want host-path:container-path[:ro|rw], got %q", v)
		case !path.IsAbs(parts[1]):
			c.errorf(field, "container path %q must be absolute", parts[1])
		case len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw":
			c.errorf(field, "mode must be ro or rw, got %q", parts[2])
		case !path.IsAbs(parts[0]):
			c.errorf(field, "host path %q must be absolute (named volumes are not supported)", parts[0])
		case path.Clean(parts[0]) != parts[0]:
			c.errorf(field, "host path %q must be clean: write %q", parts[0], path.Clean(parts[0]))
		}
	}
	if err := checkNetwork(ct.Network); err != nil {
		c.errorf("container.network", "%v", err)
	}
	if ct.User != "" && !validUser.MatchString(ct.User) {
		c.errorf("container.user", "want a user name or uid, optionally with :group, got %q", ct.User)
	}
	for i, name := range ct.CapAdd {
		if err := checkCapability(name); err != nil {
			c.errorf(fmt.Sprintf("container.cap_add[%d]", i), "%v", err)
		}
	}
}

// validNetworkName is what Docker accepts as a network's name.
var validNetworkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// checkNetwork checks a container network mode: bridge, host, none,
// container:NAME, or the name of a network.
func checkNetwork(mode string) error {
	if name, ok := strings.CutPrefix(mode, "container:"); ok {
		if !validNetworkName.MatchString(name) {
			return fmt.Errorf("%q: container: needs a container's name or ID, e.g. container:db", mode)
		}
		return nil
	}
	if !validNetworkName.MatchString(mode) {
		return fmt.Errorf("%q is not a network mode: want bridge, host, none, container:NAME or a network's name", mode)
	}
	return nil
}

func (c *checker) labels(labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		field := "labels." + k
		if !validLabel.MatchString(k) {
			c.errorf(field, "%q is not a valid label key: letters, digits, '.', '_', '-', '/', at most 63", k)
		}
		if v := labels[k]; v != "" && !validLabel.MatchString(v) {
			c.errorf(field, "%q is not a valid label value: letters, digits, '.', '_', '-', '/', at most 63", v)
		}
	}
}

func (c *checker) urls(field string, urls []string) {
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.errorf(fmt.Sprintf("%s[%d]", field, i), "want an http:// or https:// URL, got %q", raw)
		}
	}
}

func (c *checker) oneOf(field, value string, allowed ...any) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = fmt.Sprint(a)
		if names[i] == value {
			return
		}
	}
	c.errorf(field, "%q is not one of %s", value, strings.Join(names, ", "))
}

// CheckSet checks what only the whole set of jobs shows: names unique across
// files, parents that exist, and no dependency cycle.
func CheckSet(jobs []*Job) ErrorList { return CheckSetWith(jobs, nil) }

// CheckSetWith is CheckSet for jobs added to stored ones: stored maps each
// stored job that stays (and is not in jobs) to its parents. A parent may
// be a stored job, and a cycle may run through stored jobs; problems are
// reported on the jobs, never on stored ones.
func CheckSetWith(jobs []*Job, stored map[string][]string) ErrorList {
	var errs ErrorList
	byName := make(map[string]*Job, len(jobs))
	for _, j := range jobs {
		if first, dup := byName[j.Name]; dup {
			errs = append(errs, j.fieldPos("name").errorf("name", "job %q is already defined at %s", j.Name, first.Source))
			continue
		}
		byName[j.Name] = j
	}
	graph := make(map[string]*Job, len(byName)+len(stored))
	for name, parents := range stored {
		graph[name] = &Job{Name: name, Parents: parents}
	}
	maps.Copy(graph, byName)
	for _, j := range jobs {
		if byName[j.Name] != j {
			continue
		}
		for i, p := range j.Parents {
			if _, ok := graph[p]; !ok && validName.MatchString(p) && p != j.Name {
				field := fmt.Sprintf("parents[%d]", i)
				errs = append(errs, j.fieldPos(field).errorf(field, "unknown job %q", p))
			}
		}
	}
	for _, cycle := range findCycles(graph) {
		i := slices.IndexFunc(cycle, func(name string) bool { return byName[name] != nil })
		if i < 0 {
			continue // among stored jobs only: not this set's problem
		}
		j := byName[cycle[i]]
		errs = append(errs, j.fieldPos("parents").errorf("parents", "dependency cycle: %s", strings.Join(cycle, " -> ")))
	}
	return errs
}

func (j *Job) fieldPos(field string) Position {
	if p, ok := j.positions[field]; ok {
		return p
	}
	return j.Source
}

// findCycles returns each dependency cycle once, written in run order
// (parent -> child) from its alphabetically first job and back to it.
func findCycles(jobs map[string]*Job) [][]string {
	const (
		unvisited = iota
		onStack
		done
	)
	state := make(map[string]int, len(jobs))
	var stack []string
	var cycles [][]string
	seen := make(map[string]bool)
	var visit func(name string)
	visit = func(name string) {
		state[name] = onStack
		stack = append(stack, name)
		for _, p := range jobs[name].Parents {
			if _, ok := jobs[p]; !ok || p == name {
				continue // unknown and self parents are reported on their own
			}
			switch state[p] {
			case unvisited:
				visit(p)
			case onStack:
				// stack[i:] walks child -> parent; reverse it into run order.
				i := slices.Index(stack, p)
				cycle := slices.Clone(stack[i:])
				slices.Reverse(cycle)
				start := slices.Index(cycle, slices.Min(cycle))
				cycle = append(cycle[start:], cycle[:start]...)
				if key := strings.Join(cycle, " "); !seen[key] {
					seen[key] = true
					cycles = append(cycles, append(cycle, cycle[0]))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, name := range sortedKeys(jobs) {
		if state[name] == unvisited {
			visit(name)
		}
	}
	return cycles
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
