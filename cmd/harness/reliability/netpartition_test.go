package reliability

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/scheduler/store"
)

// The scenarios of this file partition a process by its network
// namespace's link (clustertest.Host): every connection it has, to etcd
// and to NATS, and every one it tries, goes silent both ways at once, and
// after Heal the connections that were not given up resume, with what was
// buffered in them (a late publish, a late write) delivered.

// TestScenario_ExecutorPartitionedByNetwork cuts every link of the
// executor running both an every-second forbid job (3 s runs) and a job
// retried on lost runs (8 s runs), for 4 × TTL, then heals it (2
// schedulers; the other executor is started once both runs are on the
// first). The cut-off executor can neither renew its lease nor hear or
// tell anyone anything: its runs die (it kills them once it counts its
// lease lost; their supervisors' fence would), the leader counts them
// lost only after the fence, and the retry and the next forbid runs
// start on the other executor after they are gone. Once healed, whatever
// it had in flight arrives late and must change nothing: no duplicate,
// no overlap of either job, a clean history; it registers again on a new
// lease.
func TestScenario_ExecutorPartitionedByNetwork(t *testing.T) {
	w := newHostedWorld(t, []string{"s1", "s2"}, []string{"x1"})
	jobs := w.apply(t, slowAndRetriedJobs(w.runLog))
	w.waitLeader(t, "")
	w.c.WaitRegistered(t, "x1")
	from := time.Now()
	const node = "x1"
	var running map[string]store.Fire // by job
	clustertest.WaitFor(t, 30*time.Second, "runs of both jobs on x1", func() bool {
		running = map[string]store.Fire{}
		for _, job := range []string{"slow", "retried"} {
			for _, f := range w.c.Fires(t, job) {
				if f.State == store.FireRunning && f.Node == node {
					running[job] = f
				}
			}
		}
		return len(running) == 2
	})
	// The other executor, for the retry and the next runs to go to; x1
	// keeps its runs, which it claimed when it was the only one.
	w.startExecutor(t, "x2")
	w.c.WaitRegistered(t, "x2")
	cutAt := time.Now()
	if err := w.hosts[node].Cut(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * ttl)
	if err := w.hosts[node].Heal(); err != nil {
		t.Fatal(err)
	}
	healedAt := time.Now()
	t.Logf("executor %s (running slow %s and retried %s attempt %d) cut off from everything for %s",
		node, running["slow"].ID, running["retried"].ID, running["retried"].Attempt, time.Since(cutAt).Round(time.Millisecond))
	back := w.c.WaitRegistered(t, node)
	t.Logf("%s registered again %s after the link healed, on lease %x (its runs were claimed on %x)",
		node, time.Since(healedAt).Round(time.Millisecond), back.Lease, running["retried"].Lease)
	if back.Lease == running["retried"].Lease {
		t.Errorf("%s is registered on lease %x after the cut, the lease of its runs from before: it should have expired", node, back.Lease)
	}
	time.Sleep(8 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	reports := w.check(t, from, to, jobs["slow"], jobs["retried"])
	for i, name := range []string{"slow", "retried"} {
		t.Logf("%s: %s", name, reports[i])
	}
	after := func(at time.Time) string { return at.Sub(cutAt).Round(time.Millisecond).String() }
	logged := runlog.MustRead(t, w.runLog)
	runs := w.deaths.EndAtDeath(logged)
	for job, f := range running {
		for i, r := range runs {
			switch {
			case r.Fire == f.ID.String() && r.Attempt == f.Attempt && logged[i].Ended():
				t.Logf("%s %s attempt %d on %s: ended (logged its end) %s after the cut", job, r.Fire, r.Attempt, r.Node, after(r.End))
			case r.Fire == f.ID.String() && r.Attempt == f.Attempt && r.Ended():
				t.Logf("%s %s attempt %d on %s: killed, seen gone %s after the cut", job, r.Fire, r.Attempt, r.Node, after(r.End))
			case r.Fire == f.ID.String() && r.Attempt == f.Attempt:
				t.Errorf("%s %s attempt %d on %s: still running at the end of the test", job, r.Fire, r.Attempt, r.Node)
			case r.Fire == f.ID.String():
				t.Logf("%s %s attempt %d on %s: started %s after the cut", job, r.Fire, r.Attempt, r.Node, after(r.Start))
			}
		}
		rec := w.c.MustFire(t, f.ID)
		for _, a := range append(rec.Attempts, store.Attempt{Attempt: rec.Attempt, Node: rec.Node, State: rec.State, Reason: rec.Reason, EndedAt: rec.EndedAt}) {
			if a.Attempt == f.Attempt {
				t.Logf("%s %s attempt %d recorded %s %s after the cut: %s", job, f.ID, a.Attempt, a.State, after(a.EndedAt), a.Reason)
				if a.State != store.FireLost || !strings.Contains(a.Reason, node+" lost its lease") {
					t.Errorf("%s %s attempt %d: %s (%s); want lost, its executor %s having lost its lease", job, f.ID, a.Attempt, a.State, a.Reason, node)
				}
			}
		}
	}
	if f := w.c.MustFire(t, running["retried"].ID); f.Attempt == running["retried"].Attempt {
		t.Errorf("retried %s: still on attempt %d (%s) after the cut; want it lost and retried", f.ID, f.Attempt, f.State)
	}
}

// TestScenario_LeaderPartitionedByNetwork cuts every link of the leader of
// two schedulers for 4 × TTL while an every-second job runs: its session
// expires, the other scheduler leads and plans every time. The cut-off
// one's writes and publishes, buffered in connections that resume when
// the link heals, must change nothing: no record written by it after the
// cut, in the records or in etcd's history (its term's writes fail their
// fence), no duplicate, no missed time. Once healed, it campaigns again:
// a standby, not a leader. (Its first session after the cut can end as
// the link comes back, before or after it campaigned on it; it used to
// wait then, no candidate, for the leader to go before it noticed.)
func TestScenario_LeaderPartitionedByNetwork(t *testing.T) {
	w := newHostedWorld(t, []string{"s1", "s2"}, []string{"x1"})
	tick := w.apply(t, everySecondJob(w.runLog))["tick"]
	leader := w.waitLeader(t, "")
	w.c.WaitRegistered(t, "x1")
	time.Sleep(4 * time.Second)
	from := time.Now()
	cutAt := time.Now()
	if err := w.hosts[leader].Cut(); err != nil {
		t.Fatal(err)
	}
	next := w.waitLeader(t, leader)
	tookOver := time.Since(cutAt)
	time.Sleep(4*ttl - time.Since(cutAt))
	if err := w.hosts[leader].Heal(); err != nil {
		t.Fatal(err)
	}
	healedAt := time.Now()
	clustertest.WaitFor(t, 20*time.Second, leader+" to campaign again once healed", func() bool {
		return slices.Contains(w.c.Candidates(t), leader)
	})
	t.Logf("%s campaigned again %s after the link healed", leader, time.Since(healedAt).Round(time.Millisecond))
	time.Sleep(8*time.Second - time.Since(healedAt))
	to := time.Now().Add(-2 * time.Second)
	r := w.check(t, from, to, tick)[0]
	var firstPlanned time.Duration
	for _, f := range w.c.Fires(t, "tick") {
		if f.PlannedBy == leader && f.PlannedAt.After(cutAt) {
			t.Errorf("%s was planned by %s at %s, after it was cut off", f.ID, leader, f.PlannedAt.Format("15:04:05.000"))
		}
		if f.PlannedBy == next && f.PlannedAt.After(cutAt) && (firstPlanned == 0 || f.PlannedAt.Sub(cutAt) < firstPlanned) {
			firstPlanned = f.PlannedAt.Sub(cutAt)
		}
	}
	t.Logf("leader %s cut off from everything for %s; %s led %s after the cut and planned its first fire %s after it; %s",
		leader, 4*ttl, next, tookOver.Round(time.Millisecond), firstPlanned.Round(time.Millisecond), r)
	if now := w.c.Leader(t); now != next {
		t.Errorf("leader after the link healed: %q, want %s to keep leading", now, next)
	}
	if len(r.Missed) != 0 {
		t.Errorf("missed %v; want none", r.Missed)
	}
}
