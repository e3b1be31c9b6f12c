package executor_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/executor/containerizer/containertest"
	"github.com/aionsched/aion/scheduler/store"
)

// startExecutorWith starts executor "a" with its output in outputDir and
// the given output limit (0: the default), and waits for it to register.
func startExecutorWith(t *testing.T, c *clustertest.Cluster, outputDir string, limit int64) {
	t.Helper()
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.OutputDir, cfg.Grace = "a", outputDir, 2*time.Second
	if limit > 0 {
		cfg.OutputLimit = limit
	}
	c.StartExecutorWith(t, cfg)
}

// TestExecutor_OutputPastTheLimitIsTruncatedAndTheRecordSaysSo: past the
// executor's output limit, or the job's output_limit, the output file
// stops growing; the record says it was truncated, at which limit, and its
// tail is still the real end of the output.
func TestExecutor_OutputPastTheLimitIsTruncatedAndTheRecordSaysSo(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	startExecutorWith(t, c, t.TempDir(), 10_000)
	const script = `head -c 50000 /dev/zero | tr '\0' x; echo; echo END`

	for _, tt := range []struct {
		name, field string
		limit       int64
	}{
		{"executor-limit", "", 10_000},
		{"job-limit", "output_limit: 20KiB\n", 20 << 10},
	} {
		c.Apply(t, "name: "+tt.name+"\nschedule: manual\ncommand: "+strconv.Quote(script)+"\n"+tt.field)
		f := c.WaitFinal(t, c.StartFire(t, tt.name, "a", nil), 10*time.Second)
		if f.State != store.FireSucceeded || !f.OutputTruncated || f.OutputLimit != tt.limit || f.OutputError != "" {
			t.Errorf("%s: state %s, truncated %v at %d, output error %q; want succeeded, truncated at %d", tt.name,
				f.State, f.OutputTruncated, f.OutputLimit, f.OutputError, tt.limit)
		}
		info, err := os.Stat(f.OutputPath)
		if err != nil || info.Size() != tt.limit {
			t.Errorf("%s: output file %q: %v; want %d bytes", tt.name, f.OutputPath, sizeOf(info, err), tt.limit)
		}
		if !strings.HasSuffix(f.OutputTail, "x\nEND\n") {
			t.Errorf("%s: tail ends %q; want the real end of the output", tt.name, tailOf(f.OutputTail, 20))
		}
	}

	c.Apply(t, "name: under\nschedule: manual\ncommand: echo fits\n")
	f := c.WaitFinal(t, c.StartFire(t, "under", "a", nil), 10*time.Second)
	if f.OutputTruncated || f.OutputLimit != 0 || f.OutputTail != "fits\n" {
		t.Errorf("run under the limit: truncated %v at %d, tail %q; want whole", f.OutputTruncated, f.OutputLimit, f.OutputTail)
	}
}

// TestExecutor_OutputNotKeptIsInTheRecord: when the job's output
// directory cannot be made (here a regular file stands where it goes,
// which stops root too) the run still runs, and its record says its
// output was not kept and why, with the tail it printed.
func TestExecutor_OutputNotKeptIsInTheRecord(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	dir := t.TempDir()
	startExecutorWith(t, c, dir, 0)
	if err := os.WriteFile(filepath.Join(dir, "blocked"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := runOnce(t, c, "blocked", "echo still-ran")
	if f.State != store.FireSucceeded || f.OutputPath != "" || !strings.Contains(f.OutputError, filepath.Join(dir, "blocked")) {
		t.Errorf("state %s, path %q, output error %q; want succeeded, no path, an error naming the directory",
			f.State, f.OutputPath, f.OutputError)
	}
	if f.OutputTail != "still-ran\n" {
		t.Errorf("tail %q; want what the run printed", f.OutputTail)
	}
}

// TestExecutor_OutputInAnUnwritableDirectoryIsInTheRecord: the same for an
// output directory the executor may not write in (root may, so this needs
// another user).
func TestExecutor_OutputInAnUnwritableDirectoryIsInTheRecord(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which ignores directory permissions; TestExecutor_OutputNotKeptIsInTheRecord covers a directory that cannot be made")
	}
	t.Parallel()
	c := clustertest.Start(t)
	dir := t.TempDir()
	startExecutorWith(t, c, dir, 0)
	// Read-only once the executor has started: the job's directory cannot
	// be made in it.
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Chmod(dir, 0o700); err != nil { // so that the test's directory can be removed
			t.Error(err)
		}
	})
	f := runOnce(t, c, "readonly", "echo still-ran")
	if f.State != store.FireSucceeded || f.OutputPath != "" || !strings.Contains(f.OutputError, "permission denied") {
		t.Errorf("state %s, path %q, output error %q; want succeeded, no path, permission denied", f.State, f.OutputPath, f.OutputError)
	}
}

// TestExecutor_OutputFilesAreNotWorldReadable: output files are 0600 and
// their directories 0700, whatever the umask.
func TestExecutor_OutputFilesAreNotWorldReadable(t *testing.T) {
	old := syscall.Umask(0) // the most permissive: modes must not rely on it
	t.Cleanup(func() { syscall.Umask(old) })
	c := clustertest.Start(t)
	dir := filepath.Join(t.TempDir(), "output")
	startExecutorWith(t, c, dir, 0)
	f := runOnce(t, c, "secret", "echo s3cret")
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(f.OutputPath): 0o700, f.OutputPath: 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
}

// sizeOf describes a Stat result by its size, or its error.
func sizeOf(info os.FileInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return strconv.FormatInt(info.Size(), 10) + " bytes"
}

// TestExecutor_ARetryDoesNotInheritTheOutputWarnings: the next attempt of
// a fire whose output was truncated starts with a clean record; the
// truncation belongs to the earlier attempt.
func TestExecutor_ARetryDoesNotInheritTheOutputWarnings(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	startExecutorWith(t, c, t.TempDir(), 1000)
	c.Apply(t, "name: flaky\nschedule: manual\noutput_limit: 1KiB\nretries: {count: 1, backoff: {initial: 1h, max: 1h}}\ncommand: "+
		strconv.Quote(`head -c 5000 /dev/zero | tr '\0' x; exit 1`)+"\n")
	id := c.RequestRun(t, "flaky", store.Request{})
	f := c.WaitFire(t, id, 10*time.Second, "the retry planned", func(f store.Fire) bool {
		return f.Attempt == 2 && f.State == store.FirePlanned
	})
	if f.OutputTruncated || f.OutputLimit != 0 || f.OutputError != "" || f.OutputTail != "" {
		t.Errorf("planned retry: truncated %v at %d, output error %q, tail of %d bytes; want none of the first attempt's",
			f.OutputTruncated, f.OutputLimit, f.OutputError, len(f.OutputTail))
	}
}

// TestExecutor_AnOutputPathThatIsASymlinkIsRefused: the executor neither
// writes a run's output through, nor sets the mode of, a symbolic link
// standing where the output file goes; the record says the output was not
// kept.
func TestExecutor_AnOutputPathThatIsASymlinkIsRefused(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	dir := t.TempDir()
	startExecutorWith(t, c, dir, 0)
	c.Apply(t, "name: linked\nschedule: manual\ncommand: echo into-the-link\n")
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := store.ManualFireID("linked", time.Now())
	if err := os.Mkdir(filepath.Join(dir, "linked"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "linked", id.Suffix+".1.log")); err != nil {
		t.Fatal(err)
	}
	c.PlanFire(t, store.Fire{ID: id, Node: "a"})
	c.Dispatch(t, "a", store.Dispatch{Fire: id, Attempt: 1})
	f := c.WaitFinal(t, id, 10*time.Second)
	if f.State != store.FireSucceeded || !strings.Contains(f.OutputError, "too many levels of symbolic links") || f.OutputTail != "into-the-link\n" {
		t.Errorf("state %s, output error %q, tail %q; want succeeded, the link refused, the tail kept", f.State, f.OutputError, f.OutputTail)
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != "keep\n" {
		t.Errorf("the link's target now holds %q (%v); want it untouched", data, err)
	}
	if info, err := os.Stat(target); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("the link's target: mode %v (%v); want 0644 untouched", modeOf(info), err)
	}
}

func modeOf(info os.FileInfo) os.FileMode {
	if info == nil {
		return 0
	}
	return info.Mode().Perm()
}

// TestDocker_ContainerOutputPastTheLimitIsTruncated: a container run's
// output is kept as a host run's: capped at output_limit, in a 0600 file,
// with the real end in the tail.
func TestDocker_ContainerOutputPastTheLimitIsTruncated(t *testing.T) {
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	c.Apply(t, fmt.Sprintf(`
name: chatty
schedule: manual
output_limit: 20B
command: echo aaaaaaaaaa bbbbbbbbbb cccccccccc; echo END
container: {image: %s, pull: never, network: none}
`, img))
	startDockerExecutor(t, c, node, executor.DockerOn)
	f := c.RunFire(t, "chatty", node, nil)
	if f.State != store.FireSucceeded || !f.OutputTruncated || f.OutputLimit != 20 || !strings.HasSuffix(f.OutputTail, "cccccccccc\nEND\n") {
		t.Errorf("state %s (%s), truncated %v at %d, tail %q; want succeeded, truncated at 20, the real end in the tail",
			f.State, f.Reason, f.OutputTruncated, f.OutputLimit, f.OutputTail)
	}
	if info, err := os.Stat(f.OutputPath); err != nil || info.Size() != 20 || info.Mode().Perm() != 0o600 {
		t.Errorf("output file %q: %s, mode %v (%v); want 20 bytes, 0600", f.OutputPath, sizeOf(info, err), modeOf(info), err)
	}
	waitNoContainers(t, node)
}

// TestExecutor_OutputOnAFullDiskIsInTheRecord: an output disk that fills
// up while a run writes does not fail the run, and its record says its
// output was not kept whole, with the disk's error; the tail is still the
// end of what it printed. The disk is a 256 KiB tmpfs, which needs the
// right to mount.
func TestExecutor_OutputOnAFullDiskIsInTheRecord(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v: %s); TestExecutor_OutputNotKeptIsInTheRecord covers output that cannot be kept", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	t.Parallel()
	c := clustertest.Start(t)
	startExecutorWith(t, c, dir, 0)
	f := runOnce(t, c, "full", "head -c 600000 /dev/zero | tr '\\0' x; echo; echo the-end")
	if f.State != store.FireSucceeded || !strings.Contains(f.OutputError, "no space left on device") {
		t.Errorf("state %s, output error %q; want succeeded, and an error saying the disk is full", f.State, f.OutputError)
	}
	if !strings.HasSuffix(f.OutputTail, "the-end\n") {
		t.Errorf("tail ends %q; want the end of what the run printed", f.OutputTail[max(len(f.OutputTail)-40, 0):])
	}
}
