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

// TestCheck_FindsMissedDuplicatesSkipsAndOverlaps feeds the checker a
// history with one of each fault and expects each to be reported.
func TestCheck_FindsMissedDuplicatesSkipsAndOverlaps(t *testing.T) {
	sched, err := jobspec.ParseCron("* * * * * *", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	id := func(s int) string { return store.ScheduledFireID("tick", at(float64(s))).String() }
	log := strings.Join([]string{
		// 1 s: 10 ms late, still running when 2 s starts (an overlap)
		"start " + id(1) + " 1 x1 100 " + runlog.Epoch(at(1.01)),
		"end " + id(1) + " 1 " + runlog.Epoch(at(2.1)),
		// 2 s: started twice (a duplicate), overlapping itself
		"start " + id(2) + " 1 x1 101 " + runlog.Epoch(at(2.02)),
		"start " + id(2) + " 1 x2 102 " + runlog.Epoch(at(2.03)),
		"end " + id(2) + " 1 " + runlog.Epoch(at(2.5)),
		// 3 s: never started, recorded as skipped; 4 s: never started, no record
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "runs.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	runs, err := runlog.Read(path)
	if err != nil || len(runs) != 3 {
		t.Fatalf("runlog.Read: %d runs, %v; want 3", len(runs), err)
	}
	fires := []store.Fire{{ID: store.ScheduledFireID("tick", at(3)), State: store.FireSkipped}}
	r := Check(sched, "tick", base, at(4), fires, runs)
	if r.Expected != 4 {
		t.Errorf("expected %d nominal times, want 4", r.Expected)
	}
	if !slices.Equal(r.Missed, []time.Time{at(4)}) {
		t.Errorf("missed %v, want only %v", r.Missed, at(4))
	}
	if r.Skipped != 1 {
		t.Errorf("skipped %d, want 1", r.Skipped)
	}
	if !slices.Equal(r.Duplicates, []string{id(2) + " 1"}) {
		t.Errorf("duplicates %v, want %s", r.Duplicates, id(2))
	}
	if r.Overlaps != 1 {
		// 1 s with the second start of 2 s (which logged the end line); the
		// first start of 2 s never logged its end, so it has no interval
		t.Errorf("overlaps %d, want 1", r.Overlaps)
	}
	if got := r.Percentile(100).Round(time.Millisecond); got != 20*time.Millisecond {
		t.Errorf("max lateness %s, want 20ms", got)
	}
}

// TestCheckHistory_FindsNonLeaderWritesAndHighWaterRegressions replays a
// made-up history: s1 leads, s2 campaigns, s1's key goes; a fire created by
// s1 after that and a high-water mark that moves back are both reported,
// while s2's fire and a job deleted and applied again are not.
func TestCheckHistory_FindsNonLeaderWritesAndHighWaterRegressions(t *testing.T) {
	keys := store.Keys{Prefix: store.DefaultPrefix}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var events []*clientv3.Event
	rev := int64(0)
	put := func(key string, value any, created int64) int64 {
		rev++
		data, ok := value.(string)
		if !ok {
			b := clustertest.JSON(t, value)
			data = string(b)
		}
		if created == 0 {
			created = rev
		}
		events = append(events, &clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: []byte(data), CreateRevision: created, ModRevision: rev, Version: rev - created + 1}})
		return rev
	}
	del := func(key string) {
		rev++
		events = append(events, &clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}})
	}
	fire := func(sec int, by string) store.Fire {
		return store.Fire{ID: store.ScheduledFireID("tick", t0.Add(time.Duration(sec)*time.Second)), State: store.FirePlanned, PlannedBy: by}
	}
	put(keys.Election()+"a", "s1", 0)
	put(keys.Election()+"b", "s2", 0)
	put(keys.Fire(fire(1, "s1").ID), fire(1, "s1"), 0)
	put(keys.State("tick"), store.JobState{HighWater: t0.Add(time.Second)}, 0)
	del(keys.Election() + "a") // s1's session expired: s2 leads
	bad := put(keys.Fire(fire(2, "s1").ID), fire(2, "s1"), 0)
	put(keys.Fire(fire(3, "s2").ID), fire(3, "s2"), 0)
	back := put(keys.State("tick"), store.JobState{HighWater: t0}, 0)
	del(keys.State("tick")) // deleted and applied again: starts afresh
	put(keys.State("tick"), store.JobState{HighWater: t0.Add(-time.Hour)}, 0)

	h := CheckHistory(keys, events)
	if len(h.NonLeaderFires) != 1 || !strings.Contains(h.NonLeaderFires[0], fire(2, "").ID.String()) ||
		!strings.Contains(h.NonLeaderFires[0], "revision "+strconv.FormatInt(bad, 10)) {
		t.Errorf("non-leader fires %q, want only %s at revision %d", h.NonLeaderFires, fire(2, "").ID, bad)
	}
	if len(h.HighWaterBackwards) != 1 || !strings.Contains(h.HighWaterBackwards[0], "revision "+strconv.FormatInt(back, 10)) {
		t.Errorf("high-water regressions %q, want only the one at revision %d", h.HighWaterBackwards, back)
	}
	if h.Events != len(events) || len(h.Violations()) != 2 {
		t.Errorf("%d events, %d violations; want %d and 2", h.Events, len(h.Violations()), len(events))
	}
}
