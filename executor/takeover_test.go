package executor_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

func writeJob(t *testing.T, dir, name, yamlText string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(yamlText), 0o644); err != nil {
		t.Fatal(err)
	}
}

// alive reports whether a process exists (a zombie counts as gone: it
// cannot be signalled to any effect, but kill(0) still finds it, so look
// at its state).
func alive(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && syscall.Kill(pid, 0) == nil
}

// waitFire polls the API until the fire satisfies cond.
func waitFire(t *testing.T, cl *api.Client, id, what string, cond func(api.Fire) bool) api.Fire {
	t.Helper()
	fid, err := api.ParseFireID(id)
	if err != nil {
		t.Fatal(err)
	}
	var f api.Fire
	clustertest.WaitFor(t, 30*time.Second, what, func() bool {
		var err error
		f, err = cl.Fire(context.Background(), fid)
		return err == nil && cond(f)
	})
	return f
}

// TestTakeover_DevComesBackAfterSIGKILL SIGKILLs `aion dev` while two jobs
// run and starts it again at once on the same data directory: it comes up
// (the node's lock was free, so it takes over the registration its
// predecessor's lease still held) and adopts both runs from their
// supervisors, which outlived the crash: the short one ends and is
// recorded succeeded, once; the long one goes on, the same process, until
// it is killed through the API.
func TestTakeover_DevComesBackAfterSIGKILL(t *testing.T) {
	clustertest.SkipShort(t, "aion dev SIGKILLed and restarted (about 15 s)")
	bin := clustertest.BuildAion(t)
	data, jobs, runs := t.TempDir(), t.TempDir(), runlog.File(t)
	writeJob(t, jobs, "long", "name: long\nschedule: manual\ncommand: "+quote(runlog.Command(runs, "sleep 120"))+"\n")
	writeJob(t, jobs, "short", "name: short\nschedule: manual\ncommand: "+quote(runlog.Command(runs, "sleep 3"))+"\n")
	addr := clustertest.FreeAddr(t)
	dev := clustertest.StartProcess(t, bin, "dev", "dev", "--data-dir", data, "--jobs", jobs, "--listen", addr, "--grace", "1s")
	cl, err := api.NewClient("http://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, cl)
	// dev wrote its admin token before its API answered.
	token, err := os.ReadFile(filepath.Join(data, "token"))
	if err != nil {
		t.Fatal(err)
	}
	if cl, err = api.NewClient("http://"+addr, nil, api.WithToken(strings.TrimSpace(string(token)))); err != nil {
		t.Fatal(err)
	}
	long := runJob(t, cl, "long")
	short := runJob(t, cl, "short")
	var started []runlog.Run
	clustertest.WaitFor(t, 15*time.Second, "both runs to start", func() bool {
		started = runlog.MustRead(t, runs)
		return len(started) == 2
	})
	var longPID int
	for _, r := range started {
		if strings.HasPrefix(r.Fire, "long@") {
			longPID = r.PID
		}
	}

	dev.Kill()
	crashed := time.Now()
	dev.Restart()
	waitHealthy(t, cl)
	t.Logf("aion dev answered again %s after the SIGKILL", time.Since(crashed).Round(time.Millisecond))
	final := func(f api.Fire) bool { return f.State != api.FireRunning && f.State != api.FirePlanned }
	sf := waitFire(t, cl, short, "the short run to be recorded by the restarted dev", final)
	if sf.State != api.FireSucceeded || sf.ExitCode == nil || *sf.ExitCode != 0 || sf.Attempt != 1 {
		t.Errorf("short: %s (%s), attempt %d; want succeeded with exit 0, on its first attempt", sf.State, sf.Reason, sf.Attempt)
	}
	longID, err := api.ParseFireID(long)
	if err != nil {
		t.Fatal(err)
	}
	lf, err := cl.Fire(context.Background(), longID)
	if err != nil {
		t.Fatal(err)
	}
	if lf.State != api.FireRunning || !alive(longPID) {
		t.Fatalf("long after the restart: %s (%s), its shell %d alive %v; want it adopted, still running", lf.State, lf.Reason, longPID, alive(longPID))
	}
	if _, err := cl.Kill(context.Background(), longID, api.KillRequest{}); err != nil {
		t.Fatal(err)
	}
	lf = waitFire(t, cl, long, "the adopted long run to be killed", final)
	if lf.State != api.FireCancelled {
		t.Errorf("long: %s (%s); want cancelled by the kill", lf.State, lf.Reason)
	}
	clustertest.WaitFor(t, 10*time.Second, "the long run's shell to be killed", func() bool { return !alive(longPID) })
	r := runlog.MustRead(t, runs)
	if len(r) != 2 {
		t.Errorf("%d starts logged, want 2: an adopted run must not start again", len(r))
	}
}

func waitHealthy(t *testing.T, cl *api.Client) {
	t.Helper()
	clustertest.WaitFor(t, 30*time.Second, "the API to answer", func() bool {
		return cl.Health(context.Background()) == nil
	})
}

func runJob(t *testing.T, cl *api.Client, job string) string {
	t.Helper()
	resp, err := cl.Run(context.Background(), job, api.RunRequest{})
	if err != nil {
		t.Fatalf("run %s: %v", job, err)
	}
	return resp.Fire
}

// quote makes s a YAML double-quoted scalar.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestTakeover_AKnownExitIsRecordedNotLost runs a retries.on_lost job on
// an `aion executor` cut off from etcd (through a proxy), lets the job
// exit 0 (the executor sees it, but cannot record it), SIGKILLs the
// executor and starts it again on the same output directory within the
// lease: the successor records the run as succeeded with its exit code,
// from the exit journal, and the job does not run a second time.
func TestTakeover_AKnownExitIsRecordedNotLost(t *testing.T) {
	clustertest.SkipShort(t, "aion executor cut off, SIGKILLed and restarted (about 10 s)")
	c := clustertest.Start(t)
	bin := clustertest.BuildAion(t)
	etcdURL, err := url.Parse(c.EtcdURL)
	if err != nil {
		t.Fatal(err)
	}
	link := clustertest.StartProxy(t, etcdURL.Host)
	runs, gate := runlog.File(t), filepath.Join(t.TempDir(), "go")
	c.Apply(t, `
name: once
schedule: manual
retries: {count: 2, on_lost: true}
command: `+quote(runlog.Command(runs, "while [ ! -e "+gate+" ]; do sleep 0.05; done"))+`
`)
	c.StartScheduler(t, "s1")
	x1 := clustertest.StartProcess(t, bin, "x1", "executor", "--node-id", "x1", "--etcd", "http://"+link.Addr(),
		"--nats", c.NATSURL, "--output-dir", t.TempDir(), "--grace", "1s", "--docker", "off")
	c.WaitRegistered(t, "x1")
	id := c.RequestRun(t, "once", store.Request{By: "test"})
	c.WaitFire(t, id, 15*time.Second, "the run to start", func(f store.Fire) bool { return f.State == store.FireRunning })
	clustertest.WaitFor(t, 10*time.Second, "the job to log its start", func() bool { return len(runlog.MustRead(t, runs)) == 1 })
	link.Partition()
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, 10*time.Second, "the job to end", func() bool {
		r := runlog.MustRead(t, runs)
		return len(r) == 1 && r[0].Ended()
	})
	time.Sleep(200 * time.Millisecond) // the executor has waited for it
	x1.Kill()
	if f := c.MustFire(t, id); f.State != store.FireRunning {
		t.Fatalf("fire %s before the restart, want running: the result got through the partition, so this test tests nothing", f.State)
	}
	link.Heal()
	x1.Restart()
	f := c.WaitFinal(t, id, 15*time.Second)
	if f.State != store.FireSucceeded || exitCode(f) != "0" || f.Attempt != 1 {
		t.Errorf("fire: %s, exit %s, attempt %d (%s); want succeeded with exit 0 on attempt 1", f.State, exitCode(f), f.Attempt, f.Reason)
	}
	time.Sleep(2 * time.Second) // a retry, had there been one, would have started
	if r := runlog.MustRead(t, runs); len(r) != 1 {
		t.Errorf("%d runs, want 1: a run whose exit was known must not run again", len(r))
	}
}

// TestTakeover_ALiveExecutorIsNeverTakenOver starts a second executor on
// the output directory of a live one, and another with its node ID but its
// own directory: both fail at once, saying who holds what, and the first
// keeps its registration.
func TestTakeover_ALiveExecutorIsNeverTakenOver(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	dir := t.TempDir()
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.OutputDir = "a", dir
	first := c.StartExecutorWith(t, cfg)

	// A Run that does not fail goes on until this context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	same := cfg
	same.NodeID = "b"
	err := executor.New(same, c.Etcd, c.NATS, c.Log).Run(ctx)
	want := "in use by another live executor (PID " + strconv.Itoa(os.Getpid()) + ", holding " + filepath.Join(dir, ".aion-node.lock")
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second executor on the same directory: %v, want an error containing %q", err, want)
	}
	other := cfg
	other.OutputDir = t.TempDir()
	err = executor.New(other, c.Etcd, c.NATS, c.Log).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), `node ID "a" is in use by a live executor`) || !strings.Contains(err.Error(), dir) {
		t.Errorf("second executor with the same node ID: %v, want in use by the live one (naming its lock in %s)", err, dir)
	}
	if now := c.WaitRegistered(t, "a"); !now.StartedAt.Equal(first.StartedAt) {
		t.Errorf("registration changed from %+v to %+v", first, now)
	}
}
