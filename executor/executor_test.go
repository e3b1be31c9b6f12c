package executor_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/scheduler/store"
)

// startExecutor runs executor id with 4 slots and waits for it to register.
func startExecutor(t *testing.T, c *clustertest.Cluster, id string) {
	t.Helper()
	c.StartExecutor(t, id, 4, nil)
	c.WaitRegistered(t, id)
}

// TestExecutor_DuplicateDispatchesStartOnce sends the same dispatch to two
// executors, many times: the claim transaction lets exactly one start, once.
func TestExecutor_DuplicateDispatchesStartOnce(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	runs := filepath.Join(t.TempDir(), "runs.log")
	c.Apply(t, `
name: once
schedule: manual
command: echo "$AION_FIRE_ID $AION_ATTEMPT $AION_JOB" >> `+runs+`; sleep 0.2
`)
	startExecutor(t, c, "a")
	startExecutor(t, c, "b")
	id := store.ManualFireID("once", time.Now())
	c.PlanFire(t, store.Fire{ID: id, Node: "a"})
	for range 10 {
		c.Dispatch(t, "a", store.Dispatch{Fire: id, Attempt: 1})
		c.Dispatch(t, "b", store.Dispatch{Fire: id, Attempt: 1}) // not b's: dropped
	}
	f := c.WaitFinal(t, id, 10*time.Second)
	if f.State != store.FireSucceeded || f.Node != "a" {
		t.Errorf("fire: state %s on %q (%s), want succeeded on a", f.State, f.Node, f.Reason)
	}
	data, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(data)), id.String()+" 1 once"; got != want {
		t.Errorf("job log = %q, want exactly one start %q", got, want)
	}
	if f.ExitCode == nil || *f.ExitCode != 0 {
		t.Errorf("exit code %v", f.ExitCode)
	}
}

// TestExecutor_ArgsEnvWorkdirAndOutput runs argv without a shell, with the
// job's env, the fire's overrides and the workdir, and keeps the output.
func TestExecutor_ArgsEnvWorkdirAndOutput(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	dir := t.TempDir()
	c.Apply(t, `
name: argv
schedule: manual
workdir: `+dir+`
args: ["/bin/sh", "-c", "pwd; echo $GREETING $WHO; echo to-stderr >&2; exit 4", "ignored"]
env:
  GREETING: hello
  WHO: job
`)
	startExecutor(t, c, "a")
	id := store.ManualFireID("argv", time.Now())
	c.PlanFire(t, store.Fire{ID: id, Node: "a", Env: map[string]string{"WHO": "override"}})
	c.Dispatch(t, "a", store.Dispatch{Fire: id, Attempt: 1})
	got := c.WaitFinal(t, id, 10*time.Second)
	if got.State != store.FireFailed || got.ExitCode == nil || *got.ExitCode != 4 {
		t.Errorf("state %s exit %v, want failed with 4", got.State, got.ExitCode)
	}
	for _, want := range []string{dir, "hello override", "to-stderr"} {
		if !strings.Contains(got.OutputTail, want) {
			t.Errorf("output %q lacks %q", got.OutputTail, want)
		}
	}
	full, err := os.ReadFile(got.OutputPath)
	if err != nil || string(full) != got.OutputTail {
		t.Errorf("full output at %s = %q, %v; want the same as the tail", got.OutputPath, full, err)
	}
}

// TestExecutor_LogRequestsStayInsideTheOutputDirectory asks for a path
// outside the output directory over NATS in a signed request, as a
// scheduler that went wrong could.
func TestExecutor_LogRequestsStayInsideTheOutputDirectory(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	startExecutor(t, c, "a")
	for _, id := range []store.FireID{{Job: "x", Suffix: "../../../../etc/hostname"}, {Job: "..", Suffix: "etc"}} {
		chunk := c.AskLog(t, "a", store.LogRequest{Fire: id}) // signed, as a scheduler would
		if len(chunk.Data) != 0 || !strings.Contains(chunk.Error, "bad log request") {
			t.Errorf("request for %v answered %q (error %q), want a refusal", id, chunk.Data, chunk.Error)
		}
	}
}

// TestExecutor_LostLeaseKillsRunsAndRegistersAgain revokes the node's lease
// while a job runs, as etcd does when the node cannot reach it for longer
// than the TTL: the job is killed (the leader counts it lost and may run it
// elsewhere), and the node registers again and takes new work.
func TestExecutor_LostLeaseKillsRunsAndRegistersAgain(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (lease revoked mid-run, about 7 s)")
	c := clustertest.Start(t)
	marker := filepath.Join(t.TempDir(), "survived")
	c.Apply(t, `
name: long
schedule: manual
command: sleep 3; touch `+marker+`
`)
	startExecutor(t, c, "a")
	first := c.StartFire(t, "long", "a", nil)
	running := c.WaitFire(t, first, 5*time.Second, "the run to start", func(f store.Fire) bool { return f.State == store.FireRunning })
	lease := c.RevokeRegistration(t, "a")
	clustertest.WaitFor(t, 10*time.Second, "a new registration", func() bool {
		resp, err := c.Etcd.Get(t.Context(), c.Keys.Node("a"))
		return err == nil && len(resp.Kvs) == 1 && clientv3.LeaseID(resp.Kvs[0].Lease) != lease
	})
	// Had it gone on, the run's sleep 3 would have ended and the marker
	// appeared by 4 s after its start.
	time.Sleep(time.Until(running.StartedAt.Add(4 * time.Second)))
	if _, err := os.Stat(marker); err == nil {
		t.Error("the run went on after its node lost its registration")
	}
	if f := c.MustFire(t, first); f.State != store.FireLost || !strings.Contains(f.Reason, "registration") {
		t.Errorf("first fire: %s (%s), want lost for the lost registration", f.State, f.Reason)
	}
	second := store.ManualFireID("long", time.Now().Add(time.Second))
	c.PlanFire(t, store.Fire{ID: second, Node: "a"})
	c.Dispatch(t, "a", store.Dispatch{Fire: second, Attempt: 1})
	if f := c.WaitFinal(t, second, 10*time.Second); f.State != store.FireSucceeded {
		t.Errorf("second fire after registering again: %s (%s)", f.State, f.Reason)
	}
}

// TestExecutor_ForgedDispatchRunsTheStoredRecord sends a dispatch whose
// copy of the record is not what etcd holds (here: an env override the
// leader never wrote) at the record's real revision: the claim compares the
// value, so the executor goes by the stored record.
func TestExecutor_ForgedDispatchRunsTheStoredRecord(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	out := filepath.Join(t.TempDir(), "out")
	c.Apply(t, `
name: honest
schedule: manual
command: echo "who=${WHO:-nobody}" >> `+out+`
`)
	startExecutor(t, c, "a")
	id := store.ManualFireID("honest", time.Now())
	c.PlanFire(t, store.Fire{ID: id, Node: "a"})
	resp, err := c.Etcd.Get(t.Context(), c.Keys.Fire(id))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read fire: %v", err)
	}
	forged := c.MustFire(t, id)
	forged.Env = map[string]string{"WHO": "mallory"}
	data := clustertest.JSON(t, forged)
	for range 3 {
		c.Dispatch(t, "a", store.Dispatch{Fire: id, Attempt: 1, Rev: resp.Kvs[0].ModRevision, Record: data})
	}
	c.WaitFinal(t, id, 10*time.Second)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "who=nobody\n" {
		t.Errorf("job wrote %q, want one run of the stored record: %q", got, "who=nobody\n")
	}
	if f := c.MustFire(t, id); f.State != store.FireSucceeded || len(f.Env) != 0 {
		t.Errorf("fire %s with env %v, want succeeded without the forged env", f.State, f.Env)
	}
}

// TestExecutor_BurstOfDispatchesEachRunsOnce dispatches 100 fires at once
// (the claims and results are committed in batches) and some of them
// twice: each runs exactly once and records its result.
func TestExecutor_BurstOfDispatchesEachRunsOnce(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	runs := runlog.File(t)
	c.Apply(t, `
name: burst
schedule: manual
concurrency: allow
command: `+strconv.Quote(runlog.Command(runs, "true"))+`
`)
	c.StartExecutor(t, "a", 200, nil)
	c.WaitRegistered(t, "a")
	base := time.Now()
	var ds []store.Dispatch
	for i := range 100 {
		id := store.ManualFireID("burst", base.Add(time.Duration(i)*time.Millisecond))
		c.PlanFire(t, store.Fire{ID: id, Node: "a"})
		resp, err := c.Etcd.Get(t.Context(), c.Keys.Fire(id))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("read fire: %v", err)
		}
		ds = append(ds, store.Dispatch{Fire: id, Attempt: 1, Rev: resp.Kvs[0].ModRevision, Record: resp.Kvs[0].Value})
	}
	for i, d := range ds {
		c.Dispatch(t, "a", d)
		if i%3 == 0 {
			c.Dispatch(t, "a", d)
		}
	}
	clustertest.WaitFor(t, 20*time.Second, "100 results", func() bool {
		return len(clustertest.Final(c.Fires(t, "burst"))) == 100
	})
	for _, f := range c.Fires(t, "burst") {
		if f.State != store.FireSucceeded {
			t.Errorf("%s: %s (%s)", f.ID, f.State, f.Reason)
		}
	}
	seen := runlog.Starts(runlog.MustRead(t, runs))
	if len(seen) != 100 {
		t.Errorf("%d distinct fires ran, want 100", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s ran %d times", id, n)
		}
	}
}

// TestExecutor_FenceIsTheClaimsRevision: AION_FENCE is the etcd revision
// at which the attempt's claim was written, so it only grows from one run
// (or attempt) of a job to the next, and a stale copy of a run carries a
// smaller one than any run claimed after it.
func TestExecutor_FenceIsTheClaimsRevision(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.Apply(t, `
name: fenced
schedule: manual
command: echo "$AION_FENCE"
`)
	startExecutor(t, c, "a")
	var last int64
	for i := range 3 {
		f := c.RunFire(t, "fenced", "a", nil)
		fence, err := strconv.ParseInt(strings.TrimSpace(f.OutputTail), 10, 64)
		if f.State != store.FireSucceeded || err != nil {
			t.Fatalf("run %d: %s (%s), output %q", i, f.State, f.Reason, f.OutputTail)
		}
		if fence <= last {
			t.Errorf("run %d: AION_FENCE %d, not above the previous run's %d", i, fence, last)
		}
		last = fence
		resp, err := c.Etcd.Get(t.Context(), c.Keys.Fire(f.ID), clientv3.WithRev(fence))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("read %s at revision %d: %v", f.ID, fence, err)
		}
		var claimed store.Fire
		if err := json.Unmarshal(resp.Kvs[0].Value, &claimed); err != nil {
			t.Fatal(err)
		}
		if resp.Kvs[0].ModRevision != fence || claimed.State != store.FireRunning || claimed.Node != "a" {
			t.Errorf("run %d: at revision %d the record was %s on %q, written at %d; want the claim (running on a) written then",
				i, fence, claimed.State, claimed.Node, resp.Kvs[0].ModRevision)
		}
	}
}
