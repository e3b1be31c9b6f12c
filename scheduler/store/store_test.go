package store

import (
	"testing"
	"time"
)

func TestFireID_RoundTripAndValidation(t *testing.T) {
	id := ScheduledFireID("backup", time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC))
	if got, want := id.String(), "backup@2026-11-24T02:00:00Z"; got != want {
		t.Errorf("ID = %s, want %s", got, want)
	}
	parsed, err := ParseFireID(id.String())
	if err != nil || parsed != id {
		t.Errorf("ParseFireID(%s) = %v, %v", id, parsed, err)
	}
	for _, bad := range []string{"", "backup", "@x", "Backup@x", "backup@", "backup@../../etc/passwd", "backup@a/b", "backup@.hidden", "backup@a\x00b", "orders.>@x",
		"backup@*", "backup@a>b", "backup@a b", "backup@a\tb", "backup@a\x7fb"} {
		if _, err := ParseFireID(bad); err == nil {
			t.Errorf("ParseFireID(%q) accepted", bad)
		}
	}
	// Every kind of ID Aion makes stays valid.
	at := time.Date(2026, 11, 24, 2, 0, 0, 500, time.UTC)
	for _, made := range []FireID{ManualFireID("backup", at), DependentFireID("report", id), DependentFireID("next", DependentFireID("report", id))} {
		if err := made.Validate(); err != nil {
			t.Errorf("%s: %v", made, err)
		}
	}
	keys := Keys{Prefix: DefaultPrefix}
	back, ok := keys.FireIDFromKey(keys.Fire(id))
	if !ok || back != id {
		t.Errorf("FireIDFromKey(Fire(%s)) = %v, %v", id, back, ok)
	}
}

func TestValidSubjectPrefix(t *testing.T) {
	for s, want := range map[string]bool{"aion.": true, "prod.aion.": true, "a-b_c.": true,
		"": false, "aion": false, "aion..": false, ".aion.": false, "ai on.": false, "aion.*.": false, "aion.>.": false} {
		if got := ValidSubjectPrefix(s); got != want {
			t.Errorf("ValidSubjectPrefix(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestDependentFireID_StaysShortDownAChain(t *testing.T) {
	root := ScheduledFireID("extract", time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC))
	id := root
	for _, job := range []string{"clean", "build", "report", "publish", "archive"} {
		id = DependentFireID(job, id)
	}
	if got, want := id.String(), "archive@after-publish@2026-11-24T01:00:00Z"; got != want {
		t.Errorf("ID = %s, want %s", got, want)
	}
	if err := id.Validate(); err != nil {
		t.Error(err)
	}
}
