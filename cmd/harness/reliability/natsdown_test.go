package reliability

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/scheduler/store"
)

// TestScenario_NATSDownFor60s stops NATS for 60 s under two schedulers and
// two executors, while an every-second allow job and an every-second
// forbid job of 2 s runs go on. etcd stays up, so the leader keeps
// planning each time on time (no misfire: the grace is about planning),
// but no dispatch reaches an executor: the allow job's fires stay
// planned, and each of the forbid job's times finds the first fire of the
// outage still open and is skipped with a forbid record. Once NATS is
// back the planned fires are dispatched (the clients' reconnect buffers,
// then the leader's reconcile) and run late, each once, the grace
// notwithstanding: it applies to planning. A third every-second job with
// a starting deadline of 10 s has each time of the outage skipped once
// it is 10 s late, with the reason, by the leader's reconcile (etcd is
// up). It proves: no duplicate, no overlap of the forbid job, a clean
// history, every nominal time ran or has the skipped record its policy
// calls for, and no run of the deadline job starts long past its
// deadline.
func TestScenario_NATSDownFor60s(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (aion processes for about 80 s)")
	const startingDeadline = 10 * time.Second
	w := newWorld(t, []string{"s1", "s2"}, []string{"x1", "x2"})
	jobs := w.apply(t, fmt.Sprintf(`
jobs:
  - name: tick
    schedule: "* * * * * *"
    cron_seconds: true
    concurrency: allow
    command: %q
  - name: slow
    schedule: "* * * * * *"
    cron_seconds: true
    concurrency: forbid
    command: %q
  - name: deadline
    schedule: "* * * * * *"
    cron_seconds: true
    concurrency: allow
    misfire: {starting_deadline: %s}
    command: %q
`, runlog.Command(w.runLog, "true"), runlog.Command(w.runLog, "sleep 2"), startingDeadline, runlog.Command(w.runLog, "true")))
	w.waitLeader(t, "")
	w.c.WaitRegistered(t, "x1")
	w.c.WaitRegistered(t, "x2")
	time.Sleep(3 * time.Second)
	from := time.Now()
	downAt := time.Now()
	w.c.RestartNATS(t, 60*time.Second)
	upAt := time.Now()
	// The fires planned meanwhile are dispatched again within the
	// reconcile's 5 s (RedispatchAfter) once the executors are back on
	// NATS; 15 s leaves room for a loaded machine.
	time.Sleep(15 * time.Second)
	to := time.Now().Add(-3 * time.Second)
	reports := w.check(t, from, to, jobs["tick"], jobs["slow"], jobs["deadline"])
	fires := w.c.Fires(t, "")
	runs := runlog.MustRead(t, w.runLog)
	t.Logf("NATS down from %s for %s", downAt.Format("15:04:05.000"), upAt.Sub(downAt).Round(time.Millisecond))
	for _, r := range reports {
		name := r.Spec.Job
		t.Logf("%s: %s", name, r)
		t.Logf("%s: %d nominal, %d ran, %d skipped with a record %v; first start after NATS was back: %s after",
			name, r.Expected, len(r.Lateness), r.Skipped, skipReasons(fires, name, from, to),
			firstStartAfter(runs, name, upAt).Round(time.Millisecond))
		if len(r.Missed) != 0 {
			t.Errorf("%s: missed %v; want none (each time ran, or was skipped with a record its policy calls for)", name, r.Missed)
		}
	}
	for _, f := range fires {
		if f.State == store.FireSkipped && f.ID.Job != "slow" && f.ID.Job != "deadline" {
			t.Errorf("%s skipped (%s): the only skips this outage calls for are the forbid job's and those past the starting deadline", f.ID, f.Reason)
		}
	}
	// A run may start a little past the deadline (claimed just before
	// the leader's reconcile, once a second, skipped it), not the outage's
	// minute.
	if late := reports[2].Percentile(100); late > startingDeadline+5*time.Second {
		t.Errorf("deadline: a run started %s after its nominal time; want none much past the starting deadline of %s", late.Round(time.Millisecond), startingDeadline)
	}
}

// skipReasons counts the skipped records of job whose nominal times are in
// (from, to], by their reason without the fire IDs, nodes and durations it
// names.
func skipReasons(fires []store.Fire, job string, from, to time.Time) string {
	named := regexp.MustCompile(`\S*@\S*|\bx\d+\b|\b\d[\d.]*(ms|s|m|h)\b`)
	counts := map[string]int{}
	for _, f := range fires {
		if f.ID.Job != job || f.State != store.FireSkipped || !f.Nominal.After(from.Truncate(time.Second)) || f.Nominal.After(to) {
			continue
		}
		counts[named.ReplaceAllString(f.Reason, "…")]++
	}
	var parts []string
	for _, why := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[why], why))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// firstStartAfter is how long after at the first run of job started, or
// -1 when none did.
func firstStartAfter(runs []runlog.Run, job string, at time.Time) time.Duration {
	first := time.Duration(-1)
	for _, r := range runs {
		id, err := store.ParseFireID(r.Fire)
		if err != nil || id.Job != job || r.Start.Before(at) {
			continue
		}
		if d := r.Start.Sub(at); first < 0 || d < first {
			first = d
		}
	}
	return first
}
