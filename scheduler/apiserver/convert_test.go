package apiserver

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// sameJSON checks that a record and its conversion encode to the same
// JSON, so that the API's wire format is the record's.
func sameJSON(t *testing.T, what string, record, converted any) {
	t.Helper()
	want, err := json.Marshal(record)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(converted)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s: the API type encodes as\n%s\nthe record as\n%s", what, got, want)
	}
}

// sameFields checks that both types have the same number of fields, so a
// field added to a record fails here until the API type and convert.go
// carry it (or it is decided not to).
func sameFields(t *testing.T, record, converted any) {
	t.Helper()
	r, c := reflect.TypeOf(record), reflect.TypeOf(converted)
	if r.NumField() != c.NumField() {
		t.Errorf("%s has %d fields, %s %d: convert.go and package api must carry every one", r, r.NumField(), c, c.NumField())
	}
}

func TestConvert_EveryFieldIsCarriedWithTheSameJSON(t *testing.T) {
	at := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	code, prev := 3, 1
	fire := store.Fire{
		ID: store.ScheduledFireID("backup", at), Trigger: store.TriggerBackfill, Nominal: at, State: store.FireFailed,
		Reason: "exit status 3", Attempt: 2, Node: "x1", Env: map[string]string{"A": "1"}, Args: []string{"a", "b"},
		Downstream: true, NotBefore: at.Add(time.Second), After: "backup@earlier", Backfill: "req-1", Parallel: 2,
		Attempts:    []store.Attempt{{Attempt: 1, Node: "x2", State: store.FireLost, Reason: "gone", ExitCode: &prev, StartedAt: at, EndedAt: at.Add(time.Minute)}},
		RequestedBy: "me@host", Kill: &store.FireKill{Attempt: 2, Reason: "killed by me", At: at}, PlannedAt: at, PlannedBy: "s1", Term: 7, StartedAt: at.Add(2 * time.Second), EndedAt: at.Add(time.Hour),
		PID: 42, ExitCode: &code, OutputTail: "tail", OutputPath: "/out/backup",
		OutputError: "open /out/backup: no space left on device", OutputTruncated: true, OutputLimit: 10 << 20, Processed: true,
	}
	shown := fire
	shown.Env = map[string]string{"A": jobspec.SecretPlaceholder} // override values are not echoed back
	sameJSON(t, "fire", shown, apiFire(fire))
	sameJSON(t, "empty fire", store.Fire{}, apiFire(store.Fire{}))
	sameJSON(t, "fires", []store.Fire{shown, {}}, apiFires([]store.Fire{fire, {}}))
	sameJSON(t, "no fires", []store.Fire{}, apiFires([]store.Fire{}))
	sameFields(t, fire, apiFire(fire))
	sameFields(t, store.Attempt{}, api.Attempt{})
	sameFields(t, store.FireKill{}, api.FireKill{})
	sameFields(t, store.FireID{}, api.FireID{})

	st := store.JobState{
		HighWater: at, AppliedAt: at, LastFire: "backup@x", LastResult: store.FireSucceeded, LastSuccess: at,
		LastDone: at, LastTriggered: at, Skipped: 4, Paused: true, PauseNote: "why", PausedAt: at, PausedBy: "me", Planned: 9,
	}
	sameJSON(t, "job state", st, apiJobState(st))
	sameJSON(t, "empty job state", store.JobState{}, apiJobState(store.JobState{}))
	sameFields(t, st, apiJobState(st))

	n := store.Node{ID: "x1", Labels: map[string]string{"zone": "eu"}, Slots: 4, StartedAt: at}
	sameJSON(t, "node", n, apiNode(n))
	sameFields(t, n, apiNode(n))

	res := store.ApplyResult{Created: []string{"a"}, Updated: []string{}, Unchanged: nil, Deleted: []string{"b"}}
	sameJSON(t, "apply result", res, apiApplyResult(res))
	sameFields(t, res, apiApplyResult(res))
}

func TestConvert_FireStatesAndTriggersAreTheRecords(t *testing.T) {
	for _, s := range []store.FireState{store.FirePlanned, store.FireRunning, store.FireSucceeded, store.FireFailed,
		store.FireTimedOut, store.FireLost, store.FireSkipped, store.FireCancelled} {
		if api.FireState(s).Final() != s.Final() {
			t.Errorf("%s: api says final %v, store %v", s, api.FireState(s).Final(), s.Final())
		}
	}
	states := map[api.FireState]store.FireState{
		api.FirePlanned: store.FirePlanned, api.FireRunning: store.FireRunning, api.FireSucceeded: store.FireSucceeded,
		api.FireFailed: store.FireFailed, api.FireTimedOut: store.FireTimedOut, api.FireLost: store.FireLost,
		api.FireSkipped: store.FireSkipped, api.FireCancelled: store.FireCancelled,
	}
	for a, s := range states {
		if string(a) != string(s) {
			t.Errorf("state %q in api is %q in store", a, s)
		}
	}
	triggers := map[api.Trigger]store.Trigger{
		api.TriggerSchedule: store.TriggerSchedule, api.TriggerManual: store.TriggerManual,
		api.TriggerDependency: store.TriggerDependency, api.TriggerBackfill: store.TriggerBackfill,
	}
	for a, s := range triggers {
		if string(a) != string(s) {
			t.Errorf("trigger %q in api is %q in store", a, s)
		}
	}
}

// The client checks fire IDs before it sends them; the server checks
// them again with store. Both must agree.
func TestConvert_FireIDsAreCheckedAlikeByClientAndServer(t *testing.T) {
	for _, s := range []string{
		"backup@2026-11-24T02:00:00Z", "a@manual-2026-11-24T09:12:00.123Z", "c@after-p@2026-11-24T02:00:00Z",
		"backup", "@x", "Backup@x", "b@", "b@.hidden", "b@a/b", "b@a*", "b@a>", "b@a b", "b@a\x7f", "b@a\tb",
		"b@" + string(make([]byte, 201)), "b@é", "b-c_d@x@y",
	} {
		_, serr := store.ParseFireID(s)
		_, aerr := api.ParseFireID(s)
		if (serr == nil) != (aerr == nil) || (serr != nil && serr.Error() != aerr.Error()) {
			t.Errorf("%q: store says %v, api says %v", s, serr, aerr)
		}
	}
}
