package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

// runDevUntilOutput runs aion dev with args and a job running command
// every second, until two runs' output files are under want (so the
// first run has ended), then stops it and returns its stderr.
func runDevUntilOutput(t *testing.T, want, command string, args ...string) string {
	t.Helper()
	jobs := t.TempDir()
	writeFile(t, jobs, "tick.yaml", "name: tick\nschedule: \"* * * * * *\"\ncron_seconds: true\ncommand: "+strconv.Quote(command)+"\n")
	d := startDev(t, append([]string{"--jobs", jobs, "--docker", "off"}, args...)...)
	clustertest.WaitFor(t, 20*time.Second, "two output files of tick under "+want, func() bool {
		files, err := filepath.Glob(filepath.Join(want, "tick", "*.log"))
		return err == nil && len(files) >= 2
	})
	if code := d.stop(t); code != 0 {
		t.Errorf("dev exited %d\nstderr:\n%s", code, d.stderr)
	}
	return d.stderr.String()
}

// TestDev_DataDirOwnsTheOutputUnlessOutputDirIsGiven: aion dev keeps runs'
// output under --data-dir even when a config file names an
// executor.output_dir (it says it ignores it); --output-dir on the command
// line wins.
func TestDev_DataDirOwnsTheOutputUnlessOutputDirIsGiven(t *testing.T) {
	clustertest.SkipShort(t, "starts aion dev or waits for a server to go")
	t.Chdir(t.TempDir())
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	config := writeFile(t, t.TempDir(), "aion.yaml", "executor:\n  output_dir: "+elsewhere+"\n")

	t.Run("config file", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		stderr := runDevUntilOutput(t, filepath.Join(data, "output"), "echo tick", "--config", config, "--data-dir", data)
		if _, err := os.Stat(elsewhere); !os.IsNotExist(err) {
			t.Errorf("the config file's output_dir %s was used (stat: %v); dev keeps output in --data-dir", elsewhere, err)
		}
		if !strings.Contains(stderr, "executor.output_dir "+elsewhere+" is ignored") {
			t.Errorf("dev did not say it ignores the config file's output_dir; stderr:\n%s", stderr)
		}
	})
	t.Run("flag", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		stderr := runDevUntilOutput(t, out, "echo tick", "--config", config, "--data-dir", filepath.Join(t.TempDir(), "data"), "--output-dir", out)
		if strings.Contains(stderr, "is ignored") {
			t.Errorf("dev warned although --output-dir was given; stderr:\n%s", stderr)
		}
	})
}

// TestDev_OutputLimitFlagCapsEveryRun: --output-limit (executor.output_limit)
// caps the output file of runs whose job sets no output_limit.
func TestDev_OutputLimitFlagCapsEveryRun(t *testing.T) {
	clustertest.SkipShort(t, "starts aion dev or waits for a server to go")
	t.Chdir(t.TempDir())
	data := filepath.Join(t.TempDir(), "data")
	runDevUntilOutput(t, filepath.Join(data, "output"), "head -c 5000 /dev/zero | tr '\\0' x", "--data-dir", data, "--output-limit", "1KiB")
	files, err := filepath.Glob(filepath.Join(data, "output", "tick", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files) // by nominal time: the first run has ended
	if info, err := os.Stat(files[0]); err != nil || info.Size() != 1024 {
		t.Errorf("%s: %v; want 1024 bytes", files[0], sizeOrError(info, err))
	}
}

// TestExecutor_BadOutputLimitIsAUsageError: a size that does not parse
// stops aion executor before it connects, naming the flag's config key.
func TestExecutor_BadOutputLimitIsAUsageError(t *testing.T) {
	t.Chdir(t.TempDir())
	code, _, stderr := runAion(t, "executor", "--output-limit", "lots")
	if code != 2 || !strings.Contains(stderr, "executor.output_limit") || !strings.Contains(stderr, `"lots"`) {
		t.Errorf("executor --output-limit lots: exit %d, stderr %q; want 2 and the key and value", code, stderr)
	}
}

func sizeOrError(info os.FileInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return strconv.FormatInt(info.Size(), 10) + " bytes"
}
