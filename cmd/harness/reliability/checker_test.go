package reliability

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/runlog"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

var base = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// at is base plus s seconds.
func at(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }

// tickID is the fire ID of job tick's nominal time at s seconds.
func tickID(s int) store.FireID { return store.ScheduledFireID("tick", at(float64(s))) }

// tickSpec is an every-second job tick with the given policies and a 1 s
// misfire grace.
func tickSpec(t *testing.T, concurrency jobspec.Concurrency, misfire jobspec.MisfirePolicy) Spec {
	t.Helper()
	sched, err := jobspec.ParseCron("* * * * * *", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Job: "tick", Schedule: sched, Concurrency: concurrency, Misfire: jobspec.Misfire{Policy: misfire}, Grace: time.Second}
}

// runLog writes lines as a run log and reads it back.
func runLog(t *testing.T, lines ...string) []runlog.Run {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runs.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return runlog.MustRead(t, path)
}

func start(id store.FireID, attempt int, node string, s float64) string {
	return "start " + id.String() + " " + strconv.Itoa(attempt) + " " + node + " 100 " + runlog.Epoch(at(s))
}

func end(id store.FireID, attempt int, s float64) string {
	return "end " + id.String() + " " + strconv.Itoa(attempt) + " " + runlog.Epoch(at(s))
}

// ran is the final record of a run of tick's time s that ended at e.
func ran(s int, e float64) store.Fire {
	return store.Fire{ID: tickID(s), Nominal: at(float64(s)), State: store.FireSucceeded, Attempt: 1, PlannedAt: at(float64(s)), EndedAt: at(e)}
}

// skipped is tick's time s recorded as skipped, planned at p, for reason.
func skipped(s int, p float64, reason string) store.Fire {
	return store.Fire{ID: tickID(s), Nominal: at(float64(s)), State: store.FireSkipped, Attempt: 1, PlannedAt: at(p), EndedAt: at(p), Reason: reason}
}

// TestCheck_CleanRunsReportNothing: runs one after another, a forbid skip
// while the previous run was still going, and a misfire skip planned past
// the grace are all as the policies say.
func TestCheck_CleanRunsReportNothing(t *testing.T) {
	runs := runLog(t,
		start(tickID(1), 1, "x1", 1.01), end(tickID(1), 1, 2.5),
		start(tickID(3), 1, "x1", 3.02), end(tickID(3), 1, 3.5),
		start(tickID(4), 1, "x2", 4.01), // still running at the end of the test
	)
	fires := []store.Fire{ran(1, 2.5), skipped(2, 2.0, "skipped: "+tickID(1).String()+" is still running (concurrency: forbid)"), ran(3, 3.5),
		{ID: tickID(4), Nominal: at(4), State: store.FireRunning, Attempt: 1, PlannedAt: at(4)}}
	r := Check(tickSpec(t, jobspec.ConcurrencyForbid, jobspec.MisfireRunOnce), base, at(4), at(6), fires, runs)
	if v := r.Violations(); len(v) != 0 || len(r.Missed) != 0 || r.Skipped != 1 || r.Expected != 4 || len(r.Overlaps) != 0 {
		t.Errorf("violations %q, missed %v, %d skipped of %d, overlaps %q; want none, none, 1 of 4, none", v, r.Missed, r.Skipped, r.Expected, r.Overlaps)
	}
	if got := r.Percentile(100).Round(time.Millisecond); got != 20*time.Millisecond {
		t.Errorf("max lateness %s, want 20ms", got)
	}
	// A misfire skip planned 5 s late, past the 1 s grace.
	fires = append(fires, skipped(5, 10, "skipped: missed by 5s; misfire: run-once runs only the latest missed time"))
	if r := Check(tickSpec(t, jobspec.ConcurrencyForbid, jobspec.MisfireRunOnce), at(4), at(5), at(11), fires, runs); len(r.Violations()) != 0 || r.Skipped != 1 {
		t.Errorf("misfire skip past the grace: violations %q, %d skipped; want none, 1", r.Violations(), r.Skipped)
	}
}

// TestCheck_OverlapWithNoEndLine: the run of 1 s never logged its end (it
// was still going, or was killed, when the test ended), so it overlaps the
// run of 3 s, which a forbid job must not allow; an allow job may.
func TestCheck_OverlapWithNoEndLine(t *testing.T) {
	runs := runLog(t,
		start(tickID(1), 1, "x1", 1.01),
		start(tickID(3), 1, "x2", 3.01), end(tickID(3), 1, 3.5),
	)
	fires := []store.Fire{{ID: tickID(1), Nominal: at(1), State: store.FireLost, Attempt: 1, PlannedAt: at(1), EndedAt: at(2.2)},
		skipped(2, 2, "skipped: "+tickID(1).String()+" is still running (concurrency: forbid)"), ran(3, 3.5)}
	r := Check(tickSpec(t, jobspec.ConcurrencyForbid, jobspec.MisfireRunOnce), base, at(3), at(10), fires, runs)
	if len(r.Overlaps) != 1 || !strings.Contains(r.Overlaps[0], tickID(1).String()) || !strings.Contains(r.Overlaps[0], "no end line") {
		t.Errorf("overlaps %q, want the run of 1 s (no end line) with that of 3 s", r.Overlaps)
	}
	if v := r.Violations(); !slices.Equal(v, r.Overlaps) {
		t.Errorf("violations %q, want the overlap (a forbid job)", v)
	}
	if r.Skipped != 1 {
		t.Errorf("%d skipped, want the forbid skip of 2 s (1 s was still running) accepted", r.Skipped)
	}
	if r := Check(tickSpec(t, jobspec.ConcurrencyAllow, jobspec.MisfireRunOnce), base, at(1), at(10), fires, runs); len(r.Overlaps) != 1 || len(r.Violations()) != 0 {
		t.Errorf("allow job: overlaps %q, violations %q; want the overlap reported, not a violation", r.Overlaps, r.Violations())
	}
}

// TestCheck_RetryBesideALiveFirstAttempt: attempt 2 of a fire starts
// while attempt 1, which logged no end, still runs: two runs of one fire
// at once, a duplicate whatever the concurrency policy. So is one attempt
// started twice.
func TestCheck_RetryBesideALiveFirstAttempt(t *testing.T) {
	runs := runLog(t,
		start(tickID(1), 1, "x1", 1.01),
		start(tickID(1), 2, "x2", 4.0), end(tickID(1), 2, 4.5),
		start(tickID(2), 1, "x1", 2.01), end(tickID(2), 1, 2.2),
		start(tickID(2), 1, "x2", 5.01), end(tickID(2), 1, 5.2),
	)
	fires := []store.Fire{ran(1, 4.5), ran(2, 5.2)}
	r := Check(tickSpec(t, jobspec.ConcurrencyAllow, jobspec.MisfireRunOnce), base, at(2), at(10), fires, runs)
	if len(r.Duplicates) != 2 || !strings.Contains(r.Duplicates[0], tickID(1).String()+": attempt 1") || !strings.Contains(r.Duplicates[0], "overlaps attempt 2") ||
		!strings.Contains(r.Duplicates[1], tickID(2).String()+" attempt 1 started twice") {
		t.Errorf("duplicates %q, want attempt 2 of 1 s beside the live attempt 1, and 2 s attempt 1 started twice", r.Duplicates)
	}
	if len(r.Violations()) != 2 {
		t.Errorf("violations %q, want the 2 duplicates", r.Violations())
	}
	// A retry after its first attempt ended is no duplicate.
	runs = runLog(t, start(tickID(1), 1, "x1", 1.01), end(tickID(1), 1, 1.5), start(tickID(1), 2, "x2", 4.0), end(tickID(1), 2, 4.5))
	if r := Check(tickSpec(t, jobspec.ConcurrencyAllow, jobspec.MisfireRunOnce), base, at(1), at(10), fires, runs); len(r.Duplicates) != 0 {
		t.Errorf("a retry after the first attempt ended: duplicates %q, want none", r.Duplicates)
	}
}

// TestCheck_WrongfulSkips: skips no policy of the job called for are
// reported, not counted as accounted for.
func TestCheck_WrongfulSkips(t *testing.T) {
	forbid := "skipped: " + tickID(1).String() + " is still running (concurrency: forbid)"
	runs := runLog(t, start(tickID(1), 1, "x1", 1.01), end(tickID(1), 1, 1.2), start(tickID(6), 1, "x1", 6.01))
	fires := []store.Fire{
		ran(1, 1.2),
		skipped(3, 3, forbid), // 1 s ended at 1.2: nothing was running at 3 s
		skipped(4, 9, "skipped: missed by 5s (misfire: skip)"),                                          // the job is run-once
		skipped(5, 5.5, "skipped: missed by 500ms; misfire: run-once runs only the latest missed time"), // within the grace
		skipped(6, 6, "skipped: the job is paused: "),                                                   // and it ran anyway
	}
	r := Check(tickSpec(t, jobspec.ConcurrencyForbid, jobspec.MisfireRunOnce), at(1), at(6), at(10), fires, runs)
	want := []string{"no other run of the job was open", "misfire policy is run-once", "within the misfire grace", "it ran all the same"}
	if len(r.WrongfulSkips) != len(want) {
		t.Fatalf("wrongful skips %q, want %d", r.WrongfulSkips, len(want))
	}
	for i, w := range want {
		if !strings.Contains(r.WrongfulSkips[i], w) {
			t.Errorf("wrongful skip %d: %q, want %q", i, r.WrongfulSkips[i], w)
		}
	}
	if r.Skipped != 0 || len(r.Missed) != 1 || !r.Missed[0].Equal(at(2)) {
		t.Errorf("%d skipped, missed %v; want 0 and only 2 s", r.Skipped, r.Missed)
	}
	// The same forbid skip of an allow job is wrongful however busy the job was.
	runs = runLog(t, start(tickID(1), 1, "x1", 1.01))
	if r := Check(tickSpec(t, jobspec.ConcurrencyAllow, jobspec.MisfireRunOnce), at(2), at(3), at(10), fires[:2], runs); len(r.WrongfulSkips) != 1 ||
		!strings.Contains(r.WrongfulSkips[0], "concurrency is allow") {
		t.Errorf("forbid skip of an allow job: %q", r.WrongfulSkips)
	}
}

// history builds a made-up etcd history, one event per revision.
type history struct {
	t      *testing.T
	rev    int64
	events []*clientv3.Event
}

func (h *history) put(key string, value any, created int64) int64 {
	h.rev++
	data, ok := value.(string)
	if !ok {
		data = string(clustertest.JSON(h.t, value))
	}
	if created == 0 {
		created = h.rev
	}
	h.events = append(h.events, &clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: []byte(data),
		CreateRevision: created, ModRevision: h.rev, Version: h.rev - created + 1}})
	return h.rev
}

func (h *history) del(key string) int64 {
	h.rev++
	h.events = append(h.events, &clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: h.rev}})
	return h.rev
}

// fire writes a version of a fire record (created at the first write of
// its key) and returns its revision.
func (h *history) fire(f store.Fire, created map[store.FireID]int64) int64 {
	keys := store.Keys{Prefix: store.DefaultPrefix}
	rev := h.put(keys.Fire(f.ID), f, created[f.ID])
	if created[f.ID] == 0 {
		created[f.ID] = rev
	}
	return rev
}

// TestCheckHistory_CleanHistoryReportsNothing: s1 leads and plans, x1
// claims and records the result, s1's session expires, s2 leads and marks
// a run of the gone x2 lost: all as the protocol says.
func TestCheckHistory_CleanHistoryReportsNothing(t *testing.T) {
	keys := store.Keys{Prefix: store.DefaultPrefix}
	h := &history{t: t}
	created := map[store.FireID]int64{}
	term1 := h.put(keys.Election()+"a", "s1", 0)
	term2 := h.put(keys.Election()+"b", "s2", 0)
	h.put(keys.Node("x1"), store.Node{ID: "x1"}, 0)
	h.put(keys.Node("x2"), store.Node{ID: "x2"}, 0)
	f := store.Fire{ID: tickID(1), State: store.FirePlanned, Attempt: 1, Node: "x1", Term: term1}
	h.fire(f, created)
	f.State = store.FireRunning
	h.fire(f, created) // x1 claims
	f.State = store.FireSucceeded
	h.fire(f, created) // x1's result
	f.Processed = true
	h.fire(f, created) // s1 processes it
	g := store.Fire{ID: tickID(2), State: store.FirePlanned, Attempt: 1, Node: "x2", Term: term1}
	h.fire(g, created)
	g.State = store.FireRunning
	h.fire(g, created) // x2 claims
	h.del(keys.Election() + "a")
	h.del(keys.Node("x2"))
	g.State, g.Term = store.FireLost, term2
	h.fire(g, created) // s2 marks it lost
	g.State, g.Attempt, g.Node = store.FirePlanned, 2, "x1"
	h.fire(g, created) // and retries it on x1
	g.State = store.FireRunning
	h.fire(g, created)
	g.Kill = &store.FireKill{Attempt: 2, Reason: "test"}
	h.fire(g, created) // s2 asks for a kill
	g.State, g.Term = store.FireCancelled, term2
	h.fire(g, created) // x1's result on top of it
	h.put(keys.State("tick"), store.JobState{HighWater: at(2)}, 0)
	h.del(keys.Fire(f.ID)) // compacted
	r := CheckHistory(keys, h.events)
	if v := r.Violations(); len(v) != 0 || r.Events != len(h.events) {
		t.Errorf("violations %q in %d of %d events, want none", v, r.Events, len(h.events))
	}
}

// TestCheckHistory_FindsEachFault replays a history with one of each
// fault: a fire written with the term of a scheduler that did not lead
// (and one after the writer's key went, whatever planned_by says), a claim
// by a node whose registration had expired, a result by another node than
// the one that claimed, and a high-water mark that moves back.
func TestCheckHistory_FindsEachFault(t *testing.T) {
	keys := store.Keys{Prefix: store.DefaultPrefix}
	h := &history{t: t}
	created := map[store.FireID]int64{}
	term1 := h.put(keys.Election()+"a", "s1", 0)
	term2 := h.put(keys.Election()+"b", "s2", 0)
	h.put(keys.Node("x1"), store.Node{ID: "x1"}, 0)
	h.put(keys.Node("x2"), store.Node{ID: "x2"}, 0)
	h.put(keys.State("tick"), store.JobState{HighWater: at(1)}, 0)

	wrongTerm := h.fire(store.Fire{ID: tickID(1), State: store.FirePlanned, Attempt: 1, Node: "x1", Term: term2, PlannedBy: "s1"}, created)

	expired := store.Fire{ID: tickID(2), State: store.FirePlanned, Attempt: 1, Node: "x2", Term: term1}
	h.fire(expired, created)
	h.del(keys.Node("x2")) // x2's lease expired
	expired.State = store.FireRunning
	badClaim := h.fire(expired, created)

	other := store.Fire{ID: tickID(3), State: store.FirePlanned, Attempt: 1, Node: "x1", Term: term1}
	h.fire(other, created)
	other.State = store.FireRunning
	h.fire(other, created) // x1 claims
	other.State, other.Node = store.FireSucceeded, "x2"
	badResult := h.fire(other, created)

	back := h.put(keys.State("tick"), store.JobState{HighWater: at(0)}, 0)
	h.del(keys.State("tick")) // deleted and applied again: starts afresh
	h.put(keys.State("tick"), store.JobState{HighWater: at(-3600)}, 0)

	h.del(keys.Election() + "a") // s1's session expired: s2 leads
	late := h.fire(store.Fire{ID: tickID(4), State: store.FirePlanned, Attempt: 1, Node: "x1", Term: term1, PlannedBy: "s2"}, created)
	h.fire(store.Fire{ID: tickID(5), State: store.FirePlanned, Attempt: 1, Node: "x1", Term: term2, PlannedBy: "s1"}, created) // planned_by is not trusted either way

	r := CheckHistory(keys, h.events)
	expect := func(what string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %q, want %d", what, got, len(want))
			return
		}
		for i, w := range want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s %d: %q, want it to say %q", what, i, got[i], w)
			}
		}
	}
	rev := func(r int64) string { return "revision " + strconv.FormatInt(r, 10) }
	expect("wrong terms", r.WrongTerms,
		tickID(1).String()+" attempt 1 written at "+rev(wrongTerm)+" with term "+strconv.FormatInt(term2, 10)+" while the leader's term was "+strconv.FormatInt(term1, 10),
		tickID(4).String()+" attempt 1 written at "+rev(late)+" with term "+strconv.FormatInt(term1, 10)+" while the leader's term was "+strconv.FormatInt(term2, 10))
	expect("bad claims", r.BadClaims, tickID(2).String()+" attempt 1 claimed at "+rev(badClaim)+" by x2, which had no live registration")
	expect("bad results", r.BadResults, tickID(3).String()+" attempt 1: result written at "+rev(badResult)+" by x2, but x1 claimed it")
	expect("high-water regressions", r.HighWaterBackwards, rev(back))
	if len(r.Violations()) != 5 {
		t.Errorf("%d violations, want 5: %q", len(r.Violations()), r.Violations())
	}

	// A claim of a record whose last leader write failed the check is
	// reported too.
	h.put(keys.Node("x1"), store.Node{ID: "x1"}, 0)
	bad := store.Fire{ID: tickID(6), State: store.FirePlanned, Attempt: 1, Node: "x1", Term: term1} // s1 no longer leads
	h.fire(bad, created)
	bad.State = store.FireRunning
	claimed := h.fire(bad, created)
	r = CheckHistory(keys, h.events)
	expect("claims after the new faults", r.BadClaims, tickID(2).String(), tickID(6).String()+" attempt 1 claimed at "+rev(claimed)+" by x1, of a record not last written by the leader")
}

// succeededAt is a processed success of job's fire named suffix that ended
// at e (s), the record a parent leaves for its children.
func succeededAt(job, suffix string, e float64) store.Fire {
	return store.Fire{ID: store.FireID{Job: job, Suffix: suffix}, State: store.FireSucceeded, Attempt: 1, EndedAt: at(e), Processed: true}
}

// childFire is a dependent fire of job planned at p (s) from parent
// fire, in state.
func childFire(job string, parent store.FireID, p float64, state store.FireState, reason string) store.Fire {
	return store.Fire{ID: store.DependentFireID(job, parent), Trigger: store.TriggerDependency, Nominal: at(p), PlannedAt: at(p),
		State: state, Reason: reason, Attempt: 1}
}

// TestCheck_DependentJob: a job with parents has no schedule; it is due
// each time its parents have all succeeded (processed) since its previous
// fire, and that time is met by its next fire. A due time without a later
// fire is missed; a fire planned before its parents succeeded is a bad
// trigger; failures and unprocessed successes of a parent do not count.
func TestCheck_DependentJob(t *testing.T) {
	p1, p2, p3 := succeededAt("p", "1", 1.2), succeededAt("p", "2", 2.2), succeededAt("p", "3", 3.2)
	c1 := childFire("c", p1.ID, 1.3, store.FireSucceeded, "")
	c2 := childFire("c", p2.ID, 2.3, store.FireSkipped, "skipped: "+c1.ID.String()+" is still running (concurrency: forbid)")
	c3 := childFire("c", p3.ID, 3.3, store.FireSucceeded, "")
	failed := store.Fire{ID: store.FireID{Job: "p", Suffix: "4"}, State: store.FireFailed, Attempt: 1, EndedAt: at(4.2), Processed: true}
	unprocessed := succeededAt("p", "5", 5.2)
	unprocessed.Processed = false
	fires := []store.Fire{p1, p2, p3, c1, c2, c3, failed, unprocessed}
	runs := runLog(t, start(c1.ID, 1, "x1", 1.31), end(c1.ID, 1, 2.8), start(c3.ID, 1, "x1", 3.35), end(c3.ID, 1, 3.4))
	spec := Spec{Job: "c", Parents: []string{"p"}, Grace: time.Second}
	r := Check(spec, base, at(10), at(10), fires, runs)
	if v := r.Violations(); len(v) != 0 || r.Expected != 3 || r.Skipped != 1 || len(r.Missed) != 0 {
		t.Errorf("violations %q, %d expected, %d skipped, missed %v; want none, 3, 1, none", v, r.Expected, r.Skipped, r.Missed)
	}
	if got := r.Percentile(0).Round(time.Millisecond); got != 110*time.Millisecond {
		t.Errorf("least lateness %s, want 110ms (from the parent's end at 1.2 s to the start at 1.31 s)", got)
	}
	// A success of the parent at 6.2 s that planned no child fire: missed.
	r = Check(spec, base, at(10), at(10), append(fires, succeededAt("p", "6", 6.2)), runs)
	if len(r.Missed) != 1 || !r.Missed[0].Equal(at(6.2)) || len(r.Unrun) != 0 {
		t.Errorf("missed %v (records %v), want 6.2 s, without a record", r.Missed, r.Unrun)
	}
	// A child fire planned before the parent's first success.
	early := childFire("c", store.FireID{Job: "p", Suffix: "0"}, 1.1, store.FireSucceeded, "")
	r = Check(spec, base, at(10), at(10), append(fires, early), runs)
	if len(r.BadTriggers) != 1 || !strings.Contains(r.BadTriggers[0], early.ID.String()) || !strings.Contains(r.BadTriggers[0], "before parent p had succeeded") {
		t.Errorf("bad triggers %q, want %s, planned before p succeeded", r.BadTriggers, early.ID)
	}
	if r.Expected != 3 || len(r.Missed) != 0 {
		t.Errorf("%d expected, missed %v; want the 3 due times met all the same", r.Expected, r.Missed)
	}
	// Two parents: due once both succeeded; a fire when only one did is a
	// bad trigger.
	a1, b1, a2 := succeededAt("a", "1", 1.0), succeededAt("b", "1", 1.5), succeededAt("a", "2", 2.0)
	d1 := childFire("d", b1.ID, 1.6, store.FireSucceeded, "")
	d2 := childFire("d", a2.ID, 2.1, store.FireSucceeded, "")
	runs = runLog(t, start(d1.ID, 1, "x1", 1.7), end(d1.ID, 1, 1.8), start(d2.ID, 1, "x1", 2.2), end(d2.ID, 1, 2.3))
	r = Check(Spec{Job: "d", Parents: []string{"a", "b"}}, base, at(10), at(10), []store.Fire{a1, b1, a2, d1, d2}, runs)
	if r.Expected != 1 || len(r.Missed) != 0 || len(r.BadTriggers) != 1 || !strings.Contains(r.BadTriggers[0], "before parent b had succeeded") {
		t.Errorf("two parents: %d expected, missed %v, bad triggers %q; want 1, none, d2 (b had not succeeded again)", r.Expected, r.Missed, r.BadTriggers)
	}
}

// TestFiresFromHistory: the last version of each fire record written,
// also of one the compaction deleted since; other keys are left out.
func TestFiresFromHistory(t *testing.T) {
	keys := store.Keys{Prefix: store.DefaultPrefix}
	h := &history{t: t}
	created := map[store.FireID]int64{}
	h.put(keys.Node("x1"), store.Node{ID: "x1"}, 0)
	f, g := ran(1, 1.5), ran(2, 2.5)
	f.State, g.State = store.FireRunning, store.FireRunning
	h.fire(f, created)
	h.fire(g, created)
	f.State = store.FireSucceeded
	h.fire(f, created)
	h.del(keys.Fire(f.ID)) // compacted
	got, revs := FiresFromHistory(keys, h.events)
	if len(got) != 2 || got[0].ID != f.ID || got[0].State != store.FireSucceeded || got[1].ID != g.ID || got[1].State != store.FireRunning {
		t.Errorf("fires %+v, want %s succeeded (deleted since) and %s running", got, f.ID, g.ID)
	}
	if r := revs[f.ID]; r != (Revisions{Created: 2, Closed: 4, ClosedNotBefore: at(2)}) {
		t.Errorf("revisions of %s: %+v, want created at 2, closed (succeeded) at 4, not before 2 s (%s was planned then, before)", f.ID, r, g.ID)
	}
	if r := revs[g.ID]; r != (Revisions{Created: 3}) {
		t.Errorf("revisions of %s: %+v, want created at 3, still open", g.ID, r)
	}
}

// TestCheckRecorded_ForbidSkipWhileTheRecordWasOpenInEtcd: the run of 1 s
// ended at 1.2 s, but its executor, cut off from etcd, recorded that only
// after the skip of 3 s was written (revision 3 < 4): the leader rightly
// counted it running. Without the revisions the skip looks wrongful; with
// them it is what forbid calls for, and it stays wrongful when the record
// was closed before the skip.
func TestCheckRecorded_ForbidSkipWhileTheRecordWasOpenInEtcd(t *testing.T) {
	forbid := "skipped: " + tickID(1).String() + " is still running (concurrency: forbid)"
	runs := runLog(t, start(tickID(1), 1, "x1", 1.01), end(tickID(1), 1, 1.2))
	fires := []store.Fire{ran(1, 1.2), skipped(3, 3, forbid)}
	spec := tickSpec(t, jobspec.ConcurrencyForbid, jobspec.MisfireRunOnce)
	if r := Check(spec, at(2), at(3), at(10), fires, runs); len(r.WrongfulSkips) != 1 {
		t.Errorf("without revisions: wrongful skips %q, want the skip of 3 s", r.WrongfulSkips)
	}
	open := map[store.FireID]Revisions{tickID(1): {Created: 2, Closed: 4}, tickID(3): {Created: 3, Closed: 3}}
	if r := CheckRecorded(spec, at(2), at(3), at(10), fires, open, runs); len(r.WrongfulSkips) != 0 || r.Skipped != 1 {
		t.Errorf("record open in etcd at the skip: wrongful skips %q, %d skipped; want none, 1", r.WrongfulSkips, r.Skipped)
	}
	closed := map[store.FireID]Revisions{tickID(1): {Created: 2, Closed: 3}, tickID(3): {Created: 4, Closed: 4}}
	if r := CheckRecorded(spec, at(2), at(3), at(10), fires, closed, runs); len(r.WrongfulSkips) != 1 {
		t.Errorf("record closed before the skip: wrongful skips %q, want the skip of 3 s", r.WrongfulSkips)
	}
}

// TestCheckRecorded_ForbidSkipBehindAFireWaitingForASlot: a catch-up plans
// the time of 1 s open, waiting for a free slot, and skips 2 s behind it in
// the same transaction (revision 5); 1 s is skipped later, past its
// starting deadline, never having run. The skip of 2 s was what forbid
// calls for: 1 s was open when it was written. A fire skipped from the
// start is never open.
func TestCheckRecorded_ForbidSkipBehindAFireWaitingForASlot(t *testing.T) {
	forbid := "skipped: " + tickID(1).String() + " is still running (concurrency: forbid)"
	deadline := skipped(1, 3, "skipped: not started 6.5s after its nominal time, past the starting deadline of 6s (waiting for a free slot)")
	deadline.PlannedAt = at(2)
	fires := []store.Fire{deadline, skipped(2, 2, forbid)}
	spec := tickSpec(t, jobspec.ConcurrencyForbid, jobspec.MisfireRunOnce)
	spec.Misfire.StartingDeadline = jobspec.Duration(time.Second)
	revs := map[store.FireID]Revisions{tickID(1): {Created: 5, Closed: 9}, tickID(2): {Created: 5, Closed: 5}}
	if r := CheckRecorded(spec, base, at(2), at(10), fires, revs, nil); len(r.WrongfulSkips) != 0 || r.Skipped != 2 {
		t.Errorf("wrongful skips %q, %d skipped; want none, both", r.WrongfulSkips, r.Skipped)
	}
	skippedAtOnce := map[store.FireID]Revisions{tickID(1): {Created: 5, Closed: 5, ClosedNotBefore: at(2)}, tickID(2): {Created: 5, Closed: 5, ClosedNotBefore: at(2)}}
	if r := CheckRecorded(spec, base, at(2), at(10), fires, skippedAtOnce, nil); len(r.WrongfulSkips) != 1 {
		t.Errorf("behind a fire skipped at once: wrongful skips %q, want the skip of 2 s", r.WrongfulSkips)
	}
}

// TestCheck_TheLeadersViewMayLagByRecordLag: the leader plans on what its
// watch has shown it. A forbid skip written 3 revisions after the other
// fire's record closed, less than recordLag after any write before that
// closing says it was made, is what forbid calls for; 2 s later it is
// not. A queue skip planned 30 ms after the waiting fire's run started
// (its claim not seen yet) is what queue calls for; 2 s later it is not.
func TestCheck_TheLeadersViewMayLagByRecordLag(t *testing.T) {
	forbid := "skipped: " + tickID(1).String() + " is still running (concurrency: forbid)"
	runs := runLog(t, start(tickID(1), 1, "x1", 1.01), end(tickID(1), 1, 1.2))
	fires := []store.Fire{ran(1, 1.2), skipped(9, 9, forbid)}
	spec := tickSpec(t, jobspec.ConcurrencyForbid, jobspec.MisfireRunOnce)
	for _, c := range []struct {
		closedAfter float64
		wrongful    int
	}{{8.5, 0}, {7, 1}} {
		revs := map[store.FireID]Revisions{tickID(1): {Created: 2, Closed: 10, ClosedNotBefore: at(c.closedAfter)}, tickID(9): {Created: 13, Closed: 13}}
		if r := CheckRecorded(spec, at(8), at(9), at(20), fires, revs, runs); len(r.WrongfulSkips) != c.wrongful {
			t.Errorf("forbid skip at 9 s, the other record closed after %v s: wrongful skips %q, want %d", c.closedAfter, r.WrongfulSkips, c.wrongful)
		}
	}
	queued := "skipped: a run is already queued (concurrency: queue)"
	waiting := ran(1, 5)
	waiting.After = tickID(0).String()
	spec = tickSpec(t, jobspec.ConcurrencyQueue, jobspec.MisfireRunOnce)
	for _, c := range []struct {
		started  float64
		wrongful int
	}{{3.97, 0}, {2, 1}} {
		runs := runLog(t, start(tickID(1), 1, "x1", c.started), end(tickID(1), 1, 5))
		if r := Check(spec, at(3), at(4), at(20), []store.Fire{waiting, skipped(4, 4, queued)}, runs); len(r.WrongfulSkips) != c.wrongful {
			t.Errorf("queue skip at 4 s, the waiting run started at %v s: wrongful skips %q, want %d", c.started, r.WrongfulSkips, c.wrongful)
		}
	}
}
