package reliability

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/scheduler/store"
)

// The soak's flags: go test ./cmd/harness/reliability -run TestSoak -soak 30m -soak.seed 42.
var (
	soakFor  = flag.Duration("soak", time.Minute, "how long TestSoak injects faults")
	soakSeed = flag.Uint64("soak.seed", 0, "the seed of TestSoak's jobs and faults (0: from the time)")
)

const (
	// soakGrace is the schedulers' misfire grace: short, so that the
	// longer outages make the misfire policies act (and the checker judge
	// their skips).
	soakGrace = 10 * time.Second
	// soakSettle is how long the cluster runs unharmed after the last
	// fault before it is checked; soakTail is how much of it is left out
	// of the nominal times checked, so that every time checked has had
	// time to run (runs last at most 8 s, retries back off 1–2 s).
	soakSettle = 25 * time.Second
	soakTail   = 12 * time.Second
)

// TestSoak runs three schedulers, three executors, three etcd members and
// NATS with about 50 jobs of mixed policies for -soak (60 s by default),
// injecting a fault drawn from the whole menu (soakFaults) every 10–30 s,
// each healed before the next. Then, after the cluster has settled, it
// checks the whole history: CheckHistory over every change etcd recorded
// (no fire written by a non-leader or with a wrong term, no claim by an
// unregistered node, no result by another node than the claimer, no
// high-water mark moved back), and CheckRecorded for each job over the
// soak's window, the fire records and their revisions taken from that
// history (the leader's compaction deletes old records). It fails on any duplicate, overlap of an
// exclusive job, wrongful skip, dependent fire planned before its parents
// succeeded, nominal time missed without a record, time whose record
// never started and is still open, and history violation. Lost runs and
// times whose record ended without a start (a fire lost before its
// command logged its start) are counted, not failed: at most once is the
// guarantee. The jobs and the faults (their order, targets and
// durations) come from -soak.seed, logged first; the timing of the
// processes does not, so a replay is close, not identical.
func TestSoak(t *testing.T) {
	clustertest.SkipShort(t, "soak (9 processes, 3 etcd members, about 2 minutes)")
	seed := *soakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("soak: -soak.seed %d -soak %s", seed, *soakFor)
	rng := rand.New(rand.NewPCG(seed, seed))
	s := startSoak(t)
	jobs := soakJobs(rng, s.runLog, s.ids("executor"))
	specs := specs(t, jobs, soakGrace)
	s.c.Apply(t, jobs)
	s.waitLeader()
	for _, id := range s.ids("executor") {
		s.c.WaitRegistered(t, id)
	}
	time.Sleep(5 * time.Second) // every job under way
	from := time.Now()
	faults := soakFaults()
	counts := make(map[string]int)
	for n := 1; time.Since(from) < *soakFor; n++ {
		began := time.Now()
		gap := between(rng, 10*time.Second, 30*time.Second)
		f := faults[rng.IntN(len(faults))]
		what := f.inject(s, rng)
		counts[f.name]++
		t.Logf("fault %d at %s (+%s): %s: %s; healed after %s", n, began.Format("15:04:05.000"),
			began.Sub(from).Round(time.Second), f.name, what, time.Since(began).Round(time.Millisecond))
		time.Sleep(min(time.Until(began.Add(gap)), time.Until(from.Add(*soakFor))))
	}
	healed := time.Now()
	s.waitLeader()
	time.Sleep(soakSettle)
	to := healed.Add(soakSettle - soakTail)
	total := 0
	for _, c := range counts {
		total += c
	}
	t.Logf("soak: %d faults over %s, then %s to settle; checking nominal times in (%s, %s]", total,
		healed.Sub(from).Round(time.Second), soakSettle, from.Format("15:04:05"), to.Format("15:04:05"))
	for _, f := range faults {
		t.Logf("  %-40s %d", f.name, counts[f.name])
	}
	s.check(from, to, specs)
}

// soak is the soak's cluster. Every aion process reaches each etcd member
// through a proxy of its own, which a partition fault cuts.
type soak struct {
	t      *testing.T
	bin    string
	ec     *etcdCluster
	c      *clustertest.Cluster // the test's clients, straight to etcd and NATS
	nats   *restartableNATS
	procs  map[string]*soakProc
	runLog string
	deaths *runlog.Watcher
}

// soakProc is an aion process and its links to the etcd members.
type soakProc struct {
	*clustertest.Process
	kind  string // scheduler or executor
	links []*clustertest.Proxy
}

func startSoak(t *testing.T) *soak {
	ec := startEtcdCluster(t)
	n := startNATS(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.clients, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	nc, err := nats.Connect(n.url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s := &soak{t: t, bin: clustertest.BuildAion(t), ec: ec, nats: n, procs: make(map[string]*soakProc),
		c: &clustertest.Cluster{Etcd: cli, NATS: nc, EtcdURL: strings.Join(ec.clients, ","), NATSURL: n.url,
			Keys: store.Keys{Prefix: store.DefaultPrefix}, Log: zap.NewNop()},
		runLog: filepath.Join(t.TempDir(), "runs.log")}
	s.deaths = runlog.Watch(t, s.runLog, 20*time.Millisecond)
	outputs := t.TempDir()
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("s%d", i)
		s.start(id, "scheduler", "--id", id, "--listen", "127.0.0.1:0", "--session-ttl", ttl.String(), "--misfire-grace", soakGrace.String())
	}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("x%d", i)
		s.start(id, "executor", "--node-id", id, "--labels", "node="+id, "--output-dir", filepath.Join(outputs, id),
			"--grace", "1s", "--slots", "16", "--docker", "off")
	}
	return s
}

// start runs an aion process of kind, its etcd endpoints proxies of its
// own to each member.
func (s *soak) start(id, kind string, args ...string) {
	p := &soakProc{kind: kind}
	var endpoints []string
	for _, member := range s.ec.clients {
		l := clustertest.StartProxy(s.t, strings.TrimPrefix(member, "http://"))
		p.links = append(p.links, l)
		endpoints = append(endpoints, "http://"+l.Addr())
	}
	args = append([]string{kind}, args...)
	args = append(args, "--etcd", strings.Join(endpoints, ","), "--nats", s.nats.url)
	p.Process = clustertest.StartProcess(s.t, s.bin, id, args...)
	s.procs[id] = p
}

// ids are the IDs of the processes of kind, sorted.
func (s *soak) ids(kind string) []string {
	var ids []string
	for id, p := range s.procs {
		if p.kind == kind {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (s *soak) waitLeader() {
	clustertest.WaitFor(s.t, 30*time.Second, "a leader", func() bool { return s.c.Leader(s.t) != "" })
}

// check replays etcd's history, checks it and each job's runs and records
// over (from, to], fails the test on every violation, and logs the totals.
func (s *soak) check(from, to time.Time, specs map[string]Spec) {
	t := s.t
	events, err := ReadHistory(t.Context(), s.c.Etcd, s.c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	h := CheckHistory(s.c.Keys, events)
	for _, v := range h.Violations() {
		t.Error("history: " + v)
	}
	t.Logf("history: %d changes to etcd checked: %d high-water regressions, %d fire writes with a wrong term, %d bad claims, %d bad results",
		h.Events, len(h.HighWaterBackwards), len(h.WrongTerms), len(h.BadClaims), len(h.BadResults))
	fires, revs := FiresFromHistory(s.c.Keys, events)
	end := time.Now()
	runs := s.deaths.EndAtDeath(runlog.MustRead(t, s.runLog))
	tot := newTotals()
	names := make([]string, 0, len(specs))
	for name := range specs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		spec := specs[name]
		r := CheckRecorded(spec, from.Truncate(time.Second), to.Truncate(time.Second), end, fires, revs, runs)
		for _, v := range r.Violations() {
			t.Errorf("%s: %s", name, v)
		}
		if v := r.Violations(); len(v) > 0 {
			logAround(t, v[0], fires, revs, runs)
		}
		for _, f := range r.Unrun {
			if !f.State.Final() {
				t.Errorf("%s: %s is still %s (%s) at the end, never started", name, f.ID, f.State, f.Reason)
			}
			tot.unrun[f.State]++
		}
		missed := len(r.Missed) - len(r.Unrun)
		if missed > 0 {
			t.Errorf("%s: %d times missed without a record: %v", name, missed, r.Missed)
		}
		tot.add(r, missed)
		t.Logf("%-16s %s", name, r)
	}
	for _, f := range fires {
		if f.Nominal.After(from) && !f.Nominal.After(to) {
			tot.record(f)
		}
	}
	tot.log(t, "soak totals")
}

// logAround logs, to explain a violation, the records of its job planned
// within 5 s of the fire it names first or due in the 20 s before that
// (their revisions, state, the fire each waits for) and their runs as
// logged.
func logAround(t *testing.T, violation string, fires []store.Fire, revs map[store.FireID]Revisions, runs []runlog.Run) {
	id, err := store.ParseFireID(strings.Fields(violation)[0])
	if err != nil {
		return
	}
	var at time.Time
	for _, f := range fires {
		if f.ID == id {
			at = f.PlannedAt
		}
	}
	var b strings.Builder
	for _, f := range fires {
		if f.ID.Job != id.Job || f.PlannedAt.Sub(at).Abs() > 5*time.Second && (f.Nominal.Before(at.Add(-20*time.Second)) || f.Nominal.After(at)) {
			continue
		}
		r := revs[f.ID]
		fmt.Fprintf(&b, "\n  %s: revisions %d..%d, %s attempt %d on %s, planned %s by %s, after %q, started %s, ended %s: %s",
			f.ID, r.Created, r.Closed, f.State, f.Attempt, f.Node, f.PlannedAt.Format("15:04:05.000"), f.PlannedBy, f.After,
			f.StartedAt.Format("15:04:05.000"), f.EndedAt.Format("15:04:05.000"), f.Reason)
		for _, run := range runs {
			if run.Fire == f.ID.String() {
				fmt.Fprintf(&b, "\n    run attempt %d on %s: %s to %s", run.Attempt, run.Node, run.Start.Format("15:04:05.000"), run.End.Format("15:04:05.000"))
			}
		}
	}
	t.Logf("records of %s around %s:%s", id.Job, at.Format("15:04:05.000"), b.String())
}

// restartableNATS is an embedded NATS server that a fault stops and starts
// again on the same address.
type restartableNATS struct {
	url string
	mu  sync.Mutex
	srv *embedded.NATS
}

func startNATS(t *testing.T) *restartableNATS {
	srv, err := embedded.StartNATS("")
	if err != nil {
		t.Fatal(err)
	}
	n := &restartableNATS{url: srv.URL(), srv: srv}
	t.Cleanup(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.srv.Close()
	})
	return n
}

// restart stops the server, waits down, and starts it on its address.
func (n *restartableNATS) restart(t *testing.T, down time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.srv.Close()
	time.Sleep(down)
	srv, err := embedded.StartNATS(strings.TrimPrefix(n.url, "nats://"))
	if err != nil {
		t.Fatalf("restart NATS: %v", err)
	}
	n.srv = srv
}
