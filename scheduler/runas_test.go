package scheduler_test

import (
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/scheduler/store"
)

// Tests of the executor's run-as policy (executor.Config.Policy.RunAs)
// against a real etcd and NATS: the leader places a job naming a user only
// on a node whose policy allows that user, and otherwise the run waits
// saying which node forbids what; the executor checks again at claim and
// refuses, starting nothing, a run dispatched to it all the same. The
// tests run as root (the executor must be root to run jobs as another
// user) and use the user nobody (uid 65534).

// needRootAndNobody skips the test unless it runs as root and the user
// nobody exists: running a job as another user needs both.
func needRootAndNobody(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runs jobs as another user: needs to run as root")
	}
	if u, err := user.Lookup("nobody"); err != nil || u.Uid != "65534" {
		t.Skip("needs the user nobody, uid 65534")
	}
}

// runAsExecutor starts an executor whose policy lets jobs run as the users
// in runAs (none: the default policy, only the executor's own user), and
// returns its registration.
func runAsExecutor(t *testing.T, c *clustertest.Cluster, id string, runAs ...string) store.Node {
	t.Helper()
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.Slots = id, 4
	cfg.OutputDir = t.TempDir()
	cfg.Grace = 2 * time.Second
	cfg.Policy.RunAs = runAs
	n := c.StartExecutorWith(t, cfg)
	if n.Policy == nil || !slices.Equal(n.Policy.RunAs, runAs) {
		t.Fatalf("%s advertises policy %+v, want run_as %v", id, n.Policy, runAs)
	}
	return n
}

// sharedDir makes a directory any user may write to (t.TempDir's are
// root's only, and so are their parents), removed when the test ends.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "aion-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitWaiting waits for the planned fire id to wait without a node, with a
// reason containing every one of want, and returns its record.
func waitWaiting(t *testing.T, c *clustertest.Cluster, id store.FireID, want ...string) store.Fire {
	t.Helper()
	return c.WaitFire(t, id, 15*time.Second, "waiting with a reason naming "+strings.Join(want, ", "), func(f store.Fire) bool {
		if f.State != store.FirePlanned || f.Node != "" {
			return false
		}
		for _, w := range want {
			if !strings.Contains(f.Reason, w) {
				return false
			}
		}
		return true
	})
}

// TestRunAs_WaitsForAnExecutorThatAllowsTheUser: a requested run of a job
// with user: nobody is not started on an executor with the default policy;
// it waits, saying that node does not allow nobody. An executor whose
// run_as lists nobody then takes it, and the process really runs as
// nobody (id -u prints 65534).
func TestRunAs_WaitsForAnExecutorThatAllowsTheUser(t *testing.T) {
	needRootAndNobody(t)
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	runAsExecutor(t, c, "plain-1")
	c.Apply(t, `
name: as-nobody
schedule: manual
user: nobody
workdir: /
command: id -u
`)
	id := c.RequestRun(t, "as-nobody", store.Request{})
	f := waitWaiting(t, c, id, "waiting for an executor whose policy allows the job", `node plain-1: user "nobody" is not allowed`)
	t.Logf("waiting: %s", f.Reason)
	if f.Attempt != 1 || !f.StartedAt.IsZero() || f.PID != 0 {
		t.Errorf("waiting fire was started: attempt %d, started %v, pid %d", f.Attempt, f.StartedAt, f.PID)
	}

	runAsExecutor(t, c, "nobody-1", "nobody")
	f = c.WaitFinal(t, id, 15*time.Second)
	if f.State != store.FireSucceeded || f.Node != "nobody-1" {
		t.Fatalf("run: %s on %q (%s), want succeeded on nobody-1", f.State, f.Node, f.Reason)
	}
	if got := strings.TrimSpace(f.OutputTail); got != "65534" {
		t.Errorf("id -u printed %q, want 65534: the run did not run as nobody", got)
	}
}

// TestRunAs_PlacedOnlyOnNodesThatAllowTheUser: with a node that allows
// nobody and one that does not, every run of the user: nobody job goes to
// the one that allows it, though the other is as free (placement would
// otherwise share the runs between them), while a job without user: runs
// on both.
func TestRunAs_PlacedOnlyOnNodesThatAllowTheUser(t *testing.T) {
	needRootAndNobody(t)
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	runAsExecutor(t, c, "plain-1")
	runAsExecutor(t, c, "nobody-1", "nobody")
	c.Apply(t, `
jobs:
  - name: as-nobody
    schedule: manual
    concurrency: allow
    user: nobody
    workdir: /
    command: sleep 0.5; id -u
  - name: as-executor
    schedule: manual
    concurrency: allow
    command: sleep 0.5
`)
	const runs = 6
	var nobody, own []store.FireID
	for range runs {
		nobody = append(nobody, c.RequestRun(t, "as-nobody", store.Request{}))
		own = append(own, c.RequestRun(t, "as-executor", store.Request{}))
	}
	for _, id := range nobody {
		f := c.WaitFinal(t, id, 15*time.Second)
		if f.State != store.FireSucceeded || f.Node != "nobody-1" || strings.TrimSpace(f.OutputTail) != "65534" {
			t.Errorf("%s: %s on %q (%s), output %q; want succeeded on nobody-1, as 65534", id, f.State, f.Node, f.Reason, f.OutputTail)
		}
	}
	nodes := map[string]int{}
	for _, id := range own {
		f := c.WaitFinal(t, id, 15*time.Second)
		if f.State != store.FireSucceeded {
			t.Errorf("%s: %s on %q (%s), want succeeded", id, f.State, f.Node, f.Reason)
		}
		nodes[f.Node]++
	}
	// The control: placement does spread runs it may place anywhere.
	if nodes["plain-1"] == 0 {
		t.Errorf("runs without user: ran on %v; want some on plain-1 too (else the test above proves nothing)", nodes)
	}
}

// TestRunAs_ForgedDispatchIsRefusedByTheExecutor: a run of the user:
// nobody job dispatched straight to a node that does not allow nobody
// (bypassing the leader's placement, as a stale leader or anyone on NATS
// could) is recorded failed with the policy's reason, and its command
// never runs. The same dispatch to the node that allows nobody runs it,
// so the missing marker means something.
func TestRunAs_ForgedDispatchIsRefusedByTheExecutor(t *testing.T) {
	needRootAndNobody(t)
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	runAsExecutor(t, c, "plain-1")
	runAsExecutor(t, c, "nobody-1", "nobody")
	dir := sharedDir(t)
	c.Apply(t, `
name: as-nobody
schedule: manual
user: nobody
workdir: /
command: touch "`+dir+`/ran-$1"; id -u
`)
	f := c.RunFire(t, "as-nobody", "plain-1", []string{"forged"})
	if f.State != store.FireFailed || f.Node != "plain-1" ||
		!strings.Contains(f.Reason, "refused by the node's policy") || !strings.Contains(f.Reason, `user "nobody" is not allowed`) {
		t.Errorf("forged dispatch: %s on %q (%s); want failed on plain-1, refused by the node's policy: user \"nobody\" is not allowed", f.State, f.Node, f.Reason)
	}
	if f.PID != 0 || f.ExitCode != nil || f.OutputTail != "" {
		t.Errorf("forged dispatch: pid %d, exit code recorded %v, output %q; want no process", f.PID, f.ExitCode != nil, f.OutputTail)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran-forged")); !os.IsNotExist(err) {
		t.Errorf("forged dispatch: the command ran (marker: %v)", err)
	}

	f = c.RunFire(t, "as-nobody", "nobody-1", []string{"allowed"})
	if f.State != store.FireSucceeded || strings.TrimSpace(f.OutputTail) != "65534" {
		t.Errorf("dispatch to nobody-1: %s (%s), output %q; want succeeded, as 65534", f.State, f.Reason, f.OutputTail)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran-allowed")); err != nil {
		t.Errorf("dispatch to nobody-1: no marker (%v): the command cannot write it, and the check above proves nothing", err)
	}
}

// TestRunAs_RootOnlyWhenListed: a job with user: root waits on an executor
// whose policy does not list root, although the executor itself runs as
// root, and is refused there when dispatched to it all the same; it runs,
// as uid 0, on an executor whose run_as lists root.
func TestRunAs_RootOnlyWhenListed(t *testing.T) {
	needRootAndNobody(t)
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	plain := runAsExecutor(t, c, "plain-1")
	if plain.Policy.User != "root" || plain.Policy.UID != "0" {
		t.Fatalf("plain-1 advertises its own user as %q (uid %q), want root (0): the test runs as root", plain.Policy.User, plain.Policy.UID)
	}
	dir := sharedDir(t)
	c.Apply(t, `
name: as-root
schedule: manual
user: root
command: touch "`+dir+`/ran-$1"; id -u
`)
	id := c.RequestRun(t, "as-root", store.Request{Args: []string{"requested"}})
	f := waitWaiting(t, c, id, "waiting for an executor whose policy allows the job", `node plain-1: user "root" is not allowed`)
	t.Logf("waiting: %s", f.Reason)

	forged := c.RunFire(t, "as-root", "plain-1", []string{"forged"})
	if forged.State != store.FireFailed || !strings.Contains(forged.Reason, "refused by the node's policy") ||
		!strings.Contains(forged.Reason, `user "root" is not allowed`) || forged.PID != 0 {
		t.Errorf("forged dispatch: %s (%s), pid %d; want failed, refused by the node's policy: user \"root\" is not allowed", forged.State, forged.Reason, forged.PID)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran-forged")); !os.IsNotExist(err) {
		t.Errorf("forged dispatch: the command ran (marker: %v)", err)
	}
	if f, _ := c.Fire(t, id); f.State != store.FirePlanned || f.Node != "" {
		t.Errorf("requested run, meanwhile: %s on %q (%s); want still waiting", f.State, f.Node, f.Reason)
	}

	runAsExecutor(t, c, "root-1", "root")
	f = c.WaitFinal(t, id, 15*time.Second)
	if f.State != store.FireSucceeded || f.Node != "root-1" || strings.TrimSpace(f.OutputTail) != "0" {
		t.Errorf("requested run: %s on %q (%s), output %q; want succeeded on root-1, as 0", f.State, f.Node, f.Reason, f.OutputTail)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran-requested")); err != nil {
		t.Errorf("requested run: no marker (%v)", err)
	}
}
