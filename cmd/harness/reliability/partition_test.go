package reliability

import (
	"net/url"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

// TestScenario_LeaderPartitionedFromEtcd cuts the leader's link to etcd,
// not its link to NATS, for 4 × TTL. Its session expires, the other
// scheduler leads; the cut-off one can still publish on NATS, but every
// start is claimed through etcd, so no run starts twice, and it plans
// nothing after the cut, not even once the link is back.
func TestScenario_LeaderPartitionedFromEtcd(t *testing.T) {
	w := newWorld(t, nil, []string{"x1"})
	etcdURL, err := url.Parse(w.c.EtcdURL)
	if err != nil {
		t.Fatal(err)
	}
	link := clustertest.StartProxy(t, etcdURL.Host)
	w.schedulers["s1"] = clustertest.StartProcess(t, w.bin, "s1", "scheduler", "--id", "s1", "--listen", "127.0.0.1:0",
		"--session-ttl", ttl.String(), "--etcd", "http://"+link.Addr(), "--nats", w.c.NATSURL)
	if leader := w.waitLeader(t, ""); leader != "s1" {
		t.Fatalf("leader %s, want s1 (the only scheduler)", leader)
	}
	w.schedulers["s2"] = clustertest.StartProcess(t, w.bin, "s2", "scheduler", "--id", "s2", "--listen", "127.0.0.1:0",
		"--session-ttl", ttl.String(), "--etcd", w.c.EtcdURL, "--nats", w.c.NATSURL)
	tick := w.apply(t, everySecondJob(w.runLog))["tick"]
	time.Sleep(4 * time.Second)
	from := time.Now()
	cutAt := time.Now()
	link.Partition()
	w.waitLeader(t, "s1")
	tookOver := time.Since(cutAt)
	time.Sleep(4*ttl - time.Since(cutAt))
	link.Heal()
	time.Sleep(6 * time.Second)
	to := time.Now().Add(-2 * time.Second)
	r := w.check(t, from, to, tick)[0]
	t.Logf("leader s1 cut off from etcd for %s, s2 led after %s; %s", 4*ttl, tookOver.Round(time.Millisecond), r)
	for _, f := range w.c.Fires(t, "tick") {
		if f.PlannedBy == "s1" && f.PlannedAt.After(cutAt) {
			t.Errorf("%s was planned by s1 at %s, after it was cut off from etcd", f.ID, f.PlannedAt.Format("15:04:05.000"))
		}
	}
	if leader := w.c.Leader(t); leader != "s2" {
		t.Errorf("leader after the link healed: %q, want s2 to keep leading", leader)
	}
	if len(r.Missed) != 0 {
		t.Errorf("missed %v; want none", r.Missed)
	}
}
