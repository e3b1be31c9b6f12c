package executor_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/store"
)

func startExecutor(t *testing.T, c *clustertest.Cluster, id string) {
	t.Helper()
	c.StartExecutor(t, id, 4, nil)
	clustertest.WaitFor(t, 5*time.Second, "registration", func() bool {
		resp, err := c.Etcd.Get(context.Background(), c.Keys.Node(id))
		return err == nil && len(resp.Kvs) == 1
	})
}

// planFire writes a planned fire record for node, as a leader would.
func planFire(t *testing.T, c *clustertest.Cluster, id store.FireID, node string) {
	t.Helper()
	f := store.Fire{ID: id, Trigger: store.TriggerManual, Nominal: time.Now().UTC(), State: store.FirePlanned, Attempt: 1, Node: node, PlannedAt: time.Now().UTC()}
	data, _ := json.Marshal(f)
	if _, err := c.Etcd.Put(context.Background(), c.Keys.Fire(id), string(data)); err != nil {
		t.Fatal(err)
	}
}

func dispatch(t *testing.T, c *clustertest.Cluster, node string, d store.Dispatch) {
	t.Helper()
	data, _ := json.Marshal(d)
	if err := c.NATS.Publish(store.DispatchSubject("aion.", node), data); err != nil {
		t.Fatal(err)
	}
}

func fireRecord(t *testing.T, c *clustertest.Cluster, id store.FireID) store.Fire {
	t.Helper()
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Fire(id))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("read fire %s: %v", id, err)
	}
	var f store.Fire
	if err := json.Unmarshal(resp.Kvs[0].Value, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestExecutor_DuplicateDispatchesStartOnce sends the same dispatch to two
// executors, many times: the claim transaction lets exactly one start, once.
func TestExecutor_DuplicateDispatchesStartOnce(t *testing.T) {
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
	planFire(t, c, id, "a")
	for range 10 {
		dispatch(t, c, "a", store.Dispatch{Fire: id, Attempt: 1})
		dispatch(t, c, "b", store.Dispatch{Fire: id, Attempt: 1}) // not b's: dropped
	}
	clustertest.WaitFor(t, 10*time.Second, "the run to finish", func() bool {
		return fireRecord(t, c, id).State.Final()
	})
	f := fireRecord(t, c, id)
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
	f := store.Fire{ID: id, Trigger: store.TriggerManual, Nominal: time.Now().UTC(), State: store.FirePlanned, Attempt: 1, Node: "a",
		Env: map[string]string{"WHO": "override"}}
	data, _ := json.Marshal(f)
	if _, err := c.Etcd.Put(context.Background(), c.Keys.Fire(id), string(data)); err != nil {
		t.Fatal(err)
	}
	dispatch(t, c, "a", store.Dispatch{Fire: id, Attempt: 1})
	clustertest.WaitFor(t, 10*time.Second, "the run to finish", func() bool {
		return fireRecord(t, c, id).State.Final()
	})
	got := fireRecord(t, c, id)
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
// outside the output directory over NATS, as anyone on the bus could.
func TestExecutor_LogRequestsStayInsideTheOutputDirectory(t *testing.T) {
	c := clustertest.Start(t)
	startExecutor(t, c, "a")
	for _, id := range []store.FireID{{Job: "x", Suffix: "../../../../etc/hostname"}, {Job: "..", Suffix: "etc"}} {
		data, _ := json.Marshal(store.LogRequest{Fire: id})
		msg, err := c.NATS.Request(store.LogSubject("aion.", "a"), data, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var chunk store.LogChunk
		if err := json.Unmarshal(msg.Data, &chunk); err != nil {
			t.Fatal(err)
		}
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
	c := clustertest.Start(t)
	marker := filepath.Join(t.TempDir(), "survived")
	c.Apply(t, `
name: long
schedule: manual
command: sleep 3; touch `+marker+`
`)
	startExecutor(t, c, "a")
	ctx := context.Background()
	node, err := c.Etcd.Get(ctx, c.Keys.Node("a"))
	if err != nil || len(node.Kvs) != 1 {
		t.Fatalf("node key: %v", err)
	}
	first := store.ManualFireID("long", time.Now())
	planFire(t, c, first, "a")
	dispatch(t, c, "a", store.Dispatch{Fire: first, Attempt: 1})
	clustertest.WaitFor(t, 5*time.Second, "the run to start", func() bool {
		return fireRecord(t, c, first).State == store.FireRunning
	})
	if _, err := c.Etcd.Revoke(ctx, clientv3.LeaseID(node.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, 10*time.Second, "a new registration", func() bool {
		resp, err := c.Etcd.Get(ctx, c.Keys.Node("a"))
		return err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].Lease != node.Kvs[0].Lease
	})
	time.Sleep(4 * time.Second)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the run went on after its node lost its registration")
	}
	if f := fireRecord(t, c, first); f.State != store.FireFailed || !strings.Contains(f.Reason, "registration") {
		t.Errorf("first fire: %s (%s), want failed for the lost registration", f.State, f.Reason)
	}
	second := store.ManualFireID("long", time.Now().Add(time.Second))
	planFire(t, c, second, "a")
	dispatch(t, c, "a", store.Dispatch{Fire: second, Attempt: 1})
	clustertest.WaitFor(t, 10*time.Second, "the second run to finish", func() bool {
		return fireRecord(t, c, second).State.Final()
	})
	if f := fireRecord(t, c, second); f.State != store.FireSucceeded {
		t.Errorf("second fire after registering again: %s (%s)", f.State, f.Reason)
	}
}

// TestExecutor_ForgedDispatchRunsTheStoredRecord sends a dispatch whose
// copy of the record is not what etcd holds (here: an env override the
// leader never wrote) at the record's real revision: the claim compares the
// value, so the executor goes by the stored record.
func TestExecutor_ForgedDispatchRunsTheStoredRecord(t *testing.T) {
	c := clustertest.Start(t)
	out := filepath.Join(t.TempDir(), "out")
	c.Apply(t, `
name: honest
schedule: manual
command: echo "who=${WHO:-nobody}" >> `+out+`
`)
	startExecutor(t, c, "a")
	id := store.ManualFireID("honest", time.Now())
	planFire(t, c, id, "a")
	resp, err := c.Etcd.Get(t.Context(), c.Keys.Fire(id))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read fire: %v", err)
	}
	forged := fireRecord(t, c, id)
	forged.Env = map[string]string{"WHO": "mallory"}
	data, _ := json.Marshal(forged)
	for range 3 {
		dispatch(t, c, "a", store.Dispatch{Fire: id, Attempt: 1, Rev: resp.Kvs[0].ModRevision, Record: data})
	}
	clustertest.WaitFor(t, 10*time.Second, "the run to finish", func() bool {
		return fireRecord(t, c, id).State.Final()
	})
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "who=nobody\n" {
		t.Errorf("job wrote %q, want one run of the stored record: %q", got, "who=nobody\n")
	}
	if f := fireRecord(t, c, id); f.State != store.FireSucceeded || len(f.Env) != 0 {
		t.Errorf("fire %s with env %v, want succeeded without the forged env", f.State, f.Env)
	}
}

// TestExecutor_BurstOfDispatchesEachRunsOnce dispatches 100 fires at once
// (the claims and results are committed in batches) and some of them
// twice: each runs exactly once and records its result.
func TestExecutor_BurstOfDispatchesEachRunsOnce(t *testing.T) {
	c := clustertest.Start(t)
	runs := filepath.Join(t.TempDir(), "runs.log")
	c.Apply(t, `
name: burst
schedule: manual
concurrency: allow
command: echo "$AION_FIRE_ID" >> `+runs+`
`)
	c.StartExecutor(t, "a", 200, nil)
	clustertest.WaitFor(t, 5*time.Second, "registration", func() bool {
		resp, err := c.Etcd.Get(t.Context(), c.Keys.Node("a"))
		return err == nil && len(resp.Kvs) == 1
	})
	base := time.Now()
	var ds []store.Dispatch
	for i := range 100 {
		id := store.ManualFireID("burst", base.Add(time.Duration(i)*time.Millisecond))
		planFire(t, c, id, "a")
		resp, err := c.Etcd.Get(t.Context(), c.Keys.Fire(id))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("read fire: %v", err)
		}
		ds = append(ds, store.Dispatch{Fire: id, Attempt: 1, Rev: resp.Kvs[0].ModRevision, Record: resp.Kvs[0].Value})
	}
	for i, d := range ds {
		dispatch(t, c, "a", d)
		if i%3 == 0 {
			dispatch(t, c, "a", d)
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
	data, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]int)
	for _, line := range strings.Fields(string(data)) {
		seen[line]++
	}
	if len(seen) != 100 {
		t.Errorf("%d distinct fires ran, want 100", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s ran %d times", id, n)
		}
	}
}
