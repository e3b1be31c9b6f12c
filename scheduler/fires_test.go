package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// TestAdmit_ForbidSaysWhetherThePreviousRunStarted: a forbid skip's
// reason says the previous fire is running only when it is; one still
// planned (no executor claimed it: NATS down, no free slot) is said to be
// open and not started yet.
func TestAdmit_ForbidSaysWhetherThePreviousRunStarted(t *testing.T) {
	prev := store.FireID{Job: "j", Suffix: "2026-12-04T18:00:00Z"}
	for state, want := range map[store.FireState]string{
		store.FireRunning: "skipped: " + prev.String() + " is still running (concurrency: forbid)",
		store.FirePlanned: "skipped: " + prev.String() + " is still open, planned but not started yet (concurrency: forbid)",
	} {
		ov := overlap{newest: &prev, newestAt: time.Now(), newestState: state}
		f := store.Fire{ID: store.FireID{Job: "j", Suffix: "2026-12-04T18:00:01Z"}, PlannedAt: time.Now()}
		if ov.admit(&jobPolicy{Concurrency: jobspec.ConcurrencyForbid}, &f, nil) {
			t.Fatalf("previous fire %s: admitted; want skipped", state)
		}
		if f.State != store.FireSkipped || f.Reason != want || !strings.HasSuffix(f.Reason, "(concurrency: forbid)") {
			t.Errorf("previous fire %s: %s, %q; want skipped, %q", state, f.State, f.Reason, want)
		}
	}
}
