package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/executor/supervisor"
	"github.com/aionsched/aion/scheduler/store"
)

// TestScenario_OutputDiskFull fills the output disk of executor x1 (a
// 1 MiB tmpfs, which holds the node's lock file and the supervisor's
// socket and log, under .runs, too) with a run that prints 4 MiB, while
// an every-second job with a line of output runs beside it. Then, the
// disk still full, it SIGKILLs the node's supervisor, and later the
// executor itself, which is started again. It proves: the big run is
// recorded succeeded with an output error naming the file and the full
// disk, and the tail of what it printed; on the full disk every nominal
// time of the small job still runs once and is recorded, with the output
// error and its tail (or is recorded lost, claimed by x1 just before a
// kill), through a new supervisor (its socket and log made on
// the full disk) and a restarted executor (its lock file on the full
// disk), and another executor starts on the full disk for the first time
// (its lock file, runs directory, socket and log all new there) and runs
// its run; no duplicate; a clean history.
func TestScenario_OutputDiskFull(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (aion processes for about 30 s)")
	disk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a 1 MiB tmpfs to fill, which needs the right to mount (%v: %s); TestExecutor_OutputOnAFullDiskIsInTheRecord needs it too",
			err, strings.TrimSpace(string(out)))
	}
	// Registered before the processes, so it runs after they are stopped;
	// a supervisor outlives its executor by up to the fence (3 s).
	t.Cleanup(func() {
		var out []byte
		var err error
		for range 20 {
			if out, err = exec.Command("umount", disk).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Errorf("umount %s: %v: %s", disk, err, out)
	})
	w := newWorld(t, []string{"s1"}, nil)
	w.executors["x1"] = clustertest.StartProcess(t, w.bin, "x1", "executor", "--node-id", "x1", "--labels", "node=x1", "--output-dir", disk,
		"--grace", "1s", "--etcd", w.c.EtcdURL, "--nats", w.c.NATSURL)
	jobs := w.apply(t, fmt.Sprintf(`
jobs:
  - name: big
    schedule: manual
    constraints: ["node=x1"]
    command: %q
  - name: fresh
    schedule: manual
    constraints: ["node=x2"]
    command: %q
  - name: small
    schedule: "* * * * * *"
    cron_seconds: true
    concurrency: allow
    command: %q
`, runlog.Command(w.runLog, `head -c 4194304 /dev/zero | tr '\0' x; echo; echo the-end`), runlog.Command(w.runLog, "echo fresh-output"),
		runlog.Command(w.runLog, "echo small-output")))
	w.waitLeader(t, "")
	w.c.WaitRegistered(t, "x1")
	runsDir := filepath.Join(disk, ".runs")
	firstSupervisor := supervisorOf(t, runsDir)
	time.Sleep(2 * time.Second)
	from := time.Now()

	id := w.c.RequestRun(t, "big", store.Request{By: "test"})
	big := w.c.WaitFinal(t, id, 30*time.Second)
	fullAt := time.Now()
	free := freeBytes(t, disk)
	t.Logf("big run: %s, output error %q, %d bytes free on the disk after it", big.State, big.OutputError, free)
	if big.State != store.FireSucceeded || !strings.Contains(big.OutputError, "no space left on device") ||
		!strings.Contains(big.OutputError, filepath.Join(disk, "big")) {
		t.Errorf("big run: %s (%s), output error %q; want succeeded, and an output error naming its file in %s and the full disk",
			big.State, big.Reason, big.OutputError, disk)
	}
	if !strings.HasSuffix(big.OutputTail, "the-end\n") {
		t.Errorf("big run: tail ends %q; want the end of what it printed", big.OutputTail[max(len(big.OutputTail)-40, 0):])
	}
	if free >= 4096 {
		t.Fatalf("%d bytes free after the big run; want the disk full (less than a page)", free)
	}

	time.Sleep(4 * time.Second)
	// The supervisor dies: the next run starts a new one, whose socket
	// and log are made on the full disk.
	if err := syscall.Kill(firstSupervisor, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	kills := []time.Time{time.Now()}
	var second int
	clustertest.WaitFor(t, 10*time.Second, "a new supervisor", func() bool {
		second = findSupervisor(runsDir)
		return second != 0 && second != firstSupervisor
	})
	t.Logf("supervisor %d SIGKILLed; supervisor %d started for the next run", firstSupervisor, second)
	time.Sleep(4 * time.Second)
	// The executor dies and starts again: it takes the node's lock, whose
	// file is on the full disk, and attaches to the supervisor. Another
	// executor starts on the full disk for the first time: its lock file,
	// runs directory, socket and log are new.
	w.executors["x1"].Kill()
	kills = append(kills, time.Now())
	w.executors["x1"].Restart()
	restartedAt := time.Now()
	waitRegisteredAs(t, w.c, "x1", w.executors["x1"].PID())
	t.Logf("x1 SIGKILLed and started again: registered %s after; its supervisor %d (the one it had: %v)",
		time.Since(restartedAt).Round(time.Millisecond), findSupervisor(runsDir), findSupervisor(runsDir) == second)
	w.executors["x2"] = clustertest.StartProcess(t, w.bin, "x2", "executor", "--node-id", "x2", "--labels", "node=x2",
		"--output-dir", filepath.Join(disk, "x2"), "--grace", "1s", "--etcd", w.c.EtcdURL, "--nats", w.c.NATSURL)
	waitRegisteredAs(t, w.c, "x2", w.executors["x2"].PID())
	fresh := w.c.WaitFinal(t, w.c.RequestRun(t, "fresh", store.Request{By: "test"}), 20*time.Second)
	t.Logf("x2, started on the full disk, ran a run: %s, output error %q, tail %q", fresh.State, fresh.OutputError, fresh.OutputTail)
	if fresh.State != store.FireSucceeded || !strings.Contains(fresh.OutputError, "no space left on device") || fresh.OutputTail != "fresh-output\n" {
		t.Errorf("the run on x2: %s (%s), output error %q, tail %q; want succeeded, the full disk named, the tail kept",
			fresh.State, fresh.Reason, fresh.OutputError, fresh.OutputTail)
	}
	time.Sleep(5 * time.Second)
	to := time.Now().Add(-2 * time.Second)

	reports := w.check(t, from, to, jobs["small"], jobs["big"], jobs["fresh"])
	small := reports[0]
	t.Logf("small: %s", small)
	t.Logf("first small run after x1's restart started %s after it", firstStartAfter(runlog.MustRead(t, w.runLog), "small", restartedAt).Round(time.Millisecond))
	small.Missed = slices.DeleteFunc(small.Missed, func(nominal time.Time) bool {
		f, ok := w.c.Fire(t, store.ScheduledFireID("small", nominal))
		return ok && lostByAKill(f, kills)
	})
	if len(small.Missed) != 0 {
		t.Errorf("small: missed %v; want none: runs start and are recorded while the output disk is full", small.Missed)
	}
	recorded, withError, lost, byNode := 0, 0, 0, map[string]int{}
	for _, f := range w.c.Fires(t, "small") {
		if !f.Nominal.After(fullAt) || f.Nominal.After(to) {
			continue
		}
		recorded++
		byNode[f.Node]++
		switch {
		case !f.State.Final():
			t.Errorf("%s: still %s; want its end recorded", f.ID, f.State)
		case f.State == store.FireLost && lostByAKill(f, kills):
			lost++
			t.Logf("%s: lost by a kill: claimed %s, %s", f.ID, f.StartedAt.Format("15:04:05.000"), f.Reason)
		case f.State != store.FireSucceeded:
			t.Errorf("%s: %s (%s); want succeeded, or lost when claimed by x1 before a kill and open at it", f.ID, f.State, f.Reason)
		case !strings.Contains(f.OutputError, "no space left on device") || f.OutputTail != "small-output\n":
			t.Errorf("%s: output error %q, tail %q; want the full disk named, and the tail kept", f.ID, f.OutputError, f.OutputTail)
		default:
			withError++
		}
	}
	t.Logf("small: %d runs recorded while the disk was full (by node %v): %d succeeded with the disk's error and their tail, %d lost by the kills; supervisor.log %s",
		recorded, byNode, withError, lost, sizeOfFile(filepath.Join(runsDir, "supervisor.log")))
	if free := freeBytes(t, disk); free >= 4096 {
		t.Errorf("%d bytes free at the end; want the disk still full", free)
	}
}

// lostByAKill reports whether f is a run of x1 recorded lost that it had
// claimed before one of the kills (of its supervisor, of itself) and that
// was still open then: a run killed with its supervisor, or claimed by an
// executor killed before it could start it, which the leader counts lost
// (retried only with retries.on_lost). Its nominal time has a record, but
// no run.
func lostByAKill(f store.Fire, kills []time.Time) bool {
	if f.State != store.FireLost || f.Node != "x1" {
		return false
	}
	for _, k := range kills {
		if !f.StartedAt.After(k) && !f.EndedAt.Before(k) {
			return true
		}
	}
	return false
}

// waitRegisteredAs waits for node's registration by the executor process
// pid (a dead predecessor's stays until its lease expires).
func waitRegisteredAs(t *testing.T, c *clustertest.Cluster, node string, pid int) {
	t.Helper()
	clustertest.WaitFor(t, 15*time.Second, fmt.Sprintf("%s to register as process %d", node, pid), func() bool {
		resp, err := c.Etcd.Get(t.Context(), c.Keys.Node(node))
		var n store.Node
		return err == nil && len(resp.Kvs) == 1 && json.Unmarshal(resp.Kvs[0].Value, &n) == nil && n.PID == pid
	})
}

// supervisorOf waits for the supervisor of the runs directory dir and
// returns its PID.
func supervisorOf(t *testing.T, dir string) int {
	t.Helper()
	var pid int
	clustertest.WaitFor(t, 10*time.Second, "the supervisor of "+dir, func() bool {
		pid = findSupervisor(dir)
		return pid != 0
	})
	return pid
}

// findSupervisor is the PID of the live supervisor process of the runs
// directory dir (its argv is aion-supervise DIR FENCE), or 0.
func findSupervisor(dir string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(data), "\x00")
		if len(args) >= 2 && args[0] == supervisor.ProcessName && args[1] == dir && alive(pid) {
			return pid
		}
	}
	return 0
}

// freeBytes is what the file system of path has free.
func freeBytes(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// sizeOfFile describes the size of the file at path, or why it has none.
func sizeOfFile(path string) string {
	info, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	return strconv.FormatInt(info.Size(), 10) + " bytes"
}
