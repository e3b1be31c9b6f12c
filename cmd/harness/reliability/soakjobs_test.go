package reliability

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/jobspec"
)

// soakJobs generates the soak's jobs from rng as one YAML job set, every
// command logging its runs to runLog (runlog.Command). About 50 jobs of
// every kind the checker judges: every-second jobs, cron every few seconds,
// commands from instant to longer than the fence (3 s), every concurrency
// policy and misfire policy, starting deadlines, retries of failures and of
// lost runs, jobs pinned to one executor (of nodes), and small DAGs (a
// root, two children, a grandchild of both).
//
// DAG members that are parents are never concurrency allow: Check assumes
// a parent's runs do not overlap (see Check).
func soakJobs(rng *rand.Rand, runLog string, nodes []string) string {
	g := &jobGen{log: runLog}
	pick := func(s ...string) string { return pickOf(rng, s...) }
	every := func() string { return fmt.Sprintf("*/%d * * * * *", pickOf(rng, 2, 3, 4, 5, 6, 10)) }
	misfire := func() string {
		switch rng.IntN(5) {
		case 0:
			return "misfire: {policy: skip}"
		case 1:
			return "misfire: {policy: run-all, max_catchup: 3}"
		case 2:
			return "misfire: {policy: run-once, starting_deadline: 6s}"
		default:
			return "" // run-once, the default
		}
	}
	for i := range 6 { // every second, quick
		g.job(fmt.Sprintf("sec-%d", i), "* * * * * *", pick("true", "sleep 0.2", "sleep 0.5"), "concurrency: "+pick("allow", "forbid"), misfire())
	}
	g.job("sec-slow-forbid", "* * * * * *", "sleep "+pick("2", "3.5"), "concurrency: forbid")
	g.job("sec-slow-allow", "* * * * * *", "sleep "+pick("2", "4"), "concurrency: allow")
	g.job("sec-slow-queue", "* * * * * *", "sleep 1.5", "concurrency: queue")
	g.job("slow-replace", "*/3 * * * * *", "sleep 5", "concurrency: replace")
	for i := range 18 { // every few seconds, any policy
		g.job(fmt.Sprintf("cron-%d", i), every(), pick("true", "sleep 1", "sleep 4", "sleep 6"),
			"concurrency: "+pick("allow", "forbid", "forbid", "replace", "queue"), misfire())
	}
	for i := range 3 { // failures, retried
		g.job(fmt.Sprintf("retry-fail-%d", i), every(), pick(`[ $(($$ % 3)) -ne 0 ] || exit 1`, `[ "$AION_ATTEMPT" -ge 2 ] || exit 1; sleep 1`),
			"concurrency: "+pick("allow", "forbid"), "retries: {count: 2, backoff: {initial: 1s}}")
	}
	for i := range 3 { // long runs, retried when lost
		g.job(fmt.Sprintf("retry-lost-%d", i), every(), "sleep "+pick("4", "6", "8"),
			"concurrency: "+pick("forbid", "allow"), "retries: {count: 3, on_lost: true, backoff: {initial: 1s}}")
	}
	for i := range 4 { // pinned to one executor
		node := nodes[rng.IntN(len(nodes))]
		g.job(fmt.Sprintf("pinned-%d", i), pick("* * * * * *", every()), pick("true", "sleep 0.5", "sleep 4"),
			"concurrency: "+pick("allow", "forbid"), fmt.Sprintf("constraints: [\"node=%s\"]", node))
	}
	for i := range 3 { // root -> a, b -> c
		root := fmt.Sprintf("dag%d", i)
		g.job(root, every(), pick("true", "sleep 0.5", "sleep 2"), "concurrency: forbid")
		g.child(root+"-a", []string{root}, pick("true", "sleep 1"), "concurrency: forbid")
		g.child(root+"-b", []string{root}, pick("sleep 0.3", "sleep 4"), "concurrency: "+pick("forbid", "queue"),
			pick("", "retries: {count: 2, on_lost: true, backoff: {initial: 1s}}"))
		g.child(root+"-c", []string{root + "-a", root + "-b"}, pick("true", "sleep 1"), "concurrency: "+pick("forbid", "allow"))
	}
	return "jobs:\n" + g.b.String()
}

// pickOf is one of choices, drawn from rng.
func pickOf[T any](rng *rand.Rand, choices ...T) T { return choices[rng.IntN(len(choices))] }

// jobGen writes job items of a YAML jobs: list.
type jobGen struct {
	log string
	b   strings.Builder
}

// job adds a scheduled job (a six-field cron schedule) with extra lines.
func (g *jobGen) job(name, schedule, work string, extra ...string) {
	fmt.Fprintf(&g.b, "  - name: %s\n    schedule: %q\n    cron_seconds: true\n", name, schedule)
	g.rest(work, extra)
}

// child adds a dependent job of parents.
func (g *jobGen) child(name string, parents []string, work string, extra ...string) {
	fmt.Fprintf(&g.b, "  - name: %s\n    parents: [%s]\n", name, strings.Join(parents, ", "))
	g.rest(work, extra)
}

func (g *jobGen) rest(work string, extra []string) {
	fmt.Fprintf(&g.b, "    command: %q\n", runlog.CommandLoggingStop(g.log, work))
	for _, line := range extra {
		if line != "" {
			fmt.Fprintf(&g.b, "    %s\n", line)
		}
	}
}

// TestSoakJobs_ValidForEverySeed: the generated set loads without a
// problem (parents known, no cycle, every field valid) for many seeds, has
// 50 jobs, and is the same for the same seed.
func TestSoakJobs_ValidForEverySeed(t *testing.T) {
	nodes := []string{"x1", "x2", "x3"}
	for seed := uint64(1); seed <= 200; seed++ {
		text := soakJobs(rand.New(rand.NewPCG(seed, seed)), "/tmp/runs.log", nodes)
		jobs, errs := jobspec.Parse("soak.yaml", []byte(text))
		errs = append(errs, jobspec.CheckSet(jobs)...)
		if len(errs) > 0 {
			t.Fatalf("seed %d: %v\n%s", seed, errs, text)
		}
		if len(jobs) != 50 {
			t.Fatalf("seed %d: %d jobs, want 50", seed, len(jobs))
		}
		if again := soakJobs(rand.New(rand.NewPCG(seed, seed)), "/tmp/runs.log", nodes); again != text {
			t.Fatalf("seed %d: two sets from the same seed differ", seed)
		}
	}
}
