package reliability

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/scheduler/store"
)

func newTotals() *totals {
	return &totals{unrun: make(map[store.FireState]int), skipReasons: make(map[string]int)}
}

// totals adds up the reports of the jobs of a scenario or a soak.
type totals struct {
	expected, ran, skipped, missed, lost, retried  int
	duplicates, overlapsExclusive, overlapsAllowed int
	wrongfulSkips, badTriggers                     int
	unrun                                          map[store.FireState]int
	skipReasons                                    map[string]int
	lateness                                       []time.Duration
}

func (tot *totals) add(r Report, missed int) {
	tot.expected += r.Expected
	tot.ran += len(r.Lateness)
	tot.skipped += r.Skipped
	tot.missed += missed
	tot.duplicates += len(r.Duplicates)
	if r.Spec.Exclusive() {
		tot.overlapsExclusive += len(r.Overlaps)
	} else {
		tot.overlapsAllowed += len(r.Overlaps)
	}
	tot.wrongfulSkips += len(r.WrongfulSkips)
	tot.badTriggers += len(r.BadTriggers)
	tot.lateness = append(tot.lateness, r.Lateness...)
}

// record counts a fire record's lost attempts, retries and skip reason.
func (tot *totals) record(f store.Fire) {
	for _, a := range f.Attempts {
		if a.State == store.FireLost {
			tot.lost++
		}
	}
	if f.State == store.FireLost {
		tot.lost++
	}
	if f.Attempt > 1 {
		tot.retried++
	}
	if f.State == store.FireSkipped {
		tot.skipReasons[skipKind(f.Reason)]++
	}
}

// skipKind names the policy a skip's reason gives.
func skipKind(reason string) string {
	for _, kind := range []string{"concurrency: forbid", "concurrency: queue", "starting deadline", "misfire: skip", "misfire: run-all", "misfire: run-once"} {
		if strings.Contains(reason, kind) {
			return kind
		}
	}
	return reason
}

func (tot *totals) log(t *testing.T, title string) {
	pct := func(p int) time.Duration {
		if len(tot.lateness) == 0 {
			return 0
		}
		l := slices.Clone(tot.lateness)
		slices.Sort(l)
		return l[min(len(l)-1, len(l)*p/100)].Round(time.Millisecond)
	}
	var b strings.Builder
	row := func(name string, v any) { fmt.Fprintf(&b, "\n  %-44s %v", name, v) }
	row("nominal (and dependent due) times", tot.expected)
	row("ran", tot.ran)
	row("skipped, as the policy called for", tot.skipped)
	reasons := make([]string, 0, len(tot.skipReasons))
	for r := range tot.skipReasons {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		row("  skip records: "+r, tot.skipReasons[r])
	}
	states := make([]string, 0, len(tot.unrun))
	for st := range tot.unrun {
		states = append(states, string(st))
	}
	slices.Sort(states)
	for _, st := range states {
		row("not started, record "+st, tot.unrun[store.FireState(st)])
	}
	row("lost attempts", tot.lost)
	row("fires retried", tot.retried)
	row("missed without a record", tot.missed)
	row("duplicates", tot.duplicates)
	row("overlaps of exclusive jobs", tot.overlapsExclusive)
	row("overlaps of allow jobs (allowed)", tot.overlapsAllowed)
	row("wrongful skips", tot.wrongfulSkips)
	row("dependent fires before their parents", tot.badTriggers)
	row("lateness p50 / p99 / max", fmt.Sprintf("%s / %s / %s", pct(50), pct(99), pct(100)))
	t.Log(title + ":" + b.String())
}
