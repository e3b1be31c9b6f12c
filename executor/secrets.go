package executor

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/aionsched/aion/jobspec"
)

// A job's env_from is resolved here, on the node, when it runs: its
// values never enter etcd, NATS or the API. What a job author can read
// through it is what the executor's configuration allows: files inside
// SecretsDir (os.Root: no '..' or symbolic link leads out of it) and the
// variables of the executor's own environment named in PassEnv.

// maxSecretsFile bounds one env_from file.
const maxSecretsFile = 1 << 20

var validEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envFrom returns the variables a job's env_from gives, later entries
// overriding earlier ones. An entry that cannot be resolved fails the run:
// the error names the entry and why, never a value.
func (x *Executor) envFrom(job *jobspec.Job) (map[string]string, error) {
	if len(job.EnvFrom) == 0 {
		return nil, nil
	}
	env := make(map[string]string)
	for i, src := range job.EnvFrom {
		field := fmt.Sprintf("env_from[%d]", i)
		switch {
		case src.File != "":
			if err := x.readEnvFile(src.File, env); err != nil {
				return nil, fmt.Errorf("%s: file %s: %w", field, src.File, err)
			}
		case src.Env != "":
			if !slices.Contains(x.cfg.PassEnv, src.Env) {
				return nil, fmt.Errorf("%s: env %s: not passed by executor %s (executor.pass_env lists the variables jobs may take)", field, src.Env, x.cfg.NodeID)
			}
			v, ok := os.LookupEnv(src.Env)
			if !ok {
				return nil, fmt.Errorf("%s: env %s: not set in the environment of executor %s", field, src.Env, x.cfg.NodeID)
			}
			env[src.Env] = v
		default:
			return nil, fmt.Errorf("%s: gives neither file nor env", field)
		}
	}
	return env, nil
}

// readEnvFile adds to env the KEY=VALUE lines of a file in SecretsDir.
// Blank lines and lines starting with '#' are skipped; the value is the
// rest of the line as written (no quotes are removed).
func (x *Executor) readEnvFile(name string, env map[string]string) error {
	if x.cfg.SecretsDir == "" {
		return fmt.Errorf("executor %s has no executor.secrets_dir, so jobs cannot read files through env_from", x.cfg.NodeID)
	}
	root, err := os.OpenRoot(x.cfg.SecretsDir)
	if err != nil {
		return fmt.Errorf("secrets directory: %w", err)
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no such file in %s", x.cfg.SecretsDir)
	}
	if err != nil {
		return fmt.Errorf("in %s: %w", x.cfg.SecretsDir, err)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 0, 64<<10), maxSecretsFile)
	for n := 1; lines.Scan(); n++ {
		line := strings.TrimSuffix(lines.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok || !validEnvName.MatchString(k):
			return fmt.Errorf("line %d: want KEY=VALUE with KEY letters, digits and '_'", n)
		case strings.HasPrefix(k, "AION_"):
			return fmt.Errorf("line %d: %s: names starting with AION_ are set by Aion for every run", n, k)
		case strings.ContainsRune(v, 0):
			return fmt.Errorf("line %d: %s: the value contains a NUL byte", n, k)
		}
		env[k] = v
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}
