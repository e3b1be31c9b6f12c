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
	for _, bad := range []string{"", "backup", "@x", "Backup@x", "backup@", "backup@../../etc/passwd", "backup@a/b", "backup@.hidden", "backup@a\x00b", "orders.>@x"} {
		if _, err := ParseFireID(bad); err == nil {
			t.Errorf("ParseFireID(%q) accepted", bad)
		}
	}
	keys := Keys{Prefix: DefaultPrefix}
	back, ok := keys.FireIDFromKey(keys.Fire(id))
	if !ok || back != id {
		t.Errorf("FireIDFromKey(Fire(%s)) = %v, %v", id, back, ok)
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
