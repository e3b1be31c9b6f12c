package jobspec

import (
	"strings"
	"testing"
	"time"
)

// An empty start means now, and now is the first repetition: R1//P1D runs
// once, at now; R2//PT10S runs at now and 10 s later.
func TestISOEmptyStartFirstRunIsNow(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
	for _, tt := range []struct {
		expr string
		want []time.Time
	}{
		{"R1//P1D", []time.Time{now}},
		{"R2//PT10S", []time.Time{now, now.Add(10 * time.Second)}},
		{"R1//PT0S", []time.Time{now}},
		{"R1//P", []time.Time{now}},
		{"R0//PT0S", nil},
		{"R3//PT1M", []time.Time{now, now.Add(time.Minute), now.Add(2 * time.Minute)}},
	} {
		t.Run(tt.expr, func(t *testing.T) {
			s := isoParse(t, tt.expr, time.UTC, now)
			var got []time.Time
			for occ, ok := FirstOccurrence(s, now); ok && len(got) < 10; occ, ok = NextOccurrence(s, occ.Time) {
				got = append(got, occ.Time)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("times after apply = %v, want %v", got, tt.want)
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Errorf("time %d = %v, want %v", i+1, got[i], tt.want[i])
				}
			}
		})
	}
}

// A start that is written, and cron schedules, keep "strictly after".
func TestFirstOccurrenceIsExclusiveOtherwise(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	iso := isoParse(t, "R2/2026-01-01T00:00:00Z/P1D", time.UTC, from)
	if occ, ok := FirstOccurrence(iso, from); !ok || !occ.Time.Equal(from.AddDate(0, 0, 1)) {
		t.Errorf("written start: first = %v, %v; want %v", occ.Time, ok, from.AddDate(0, 0, 1))
	}
	cron, err := ParseCron("0 0 * * *", time.UTC, false)
	if err != nil {
		t.Fatal(err)
	}
	if occ, ok := FirstOccurrence(cron, from); !ok || !occ.Time.Equal(from.AddDate(0, 0, 1)) {
		t.Errorf("cron: first = %v, %v; want %v", occ.Time, ok, from.AddDate(0, 0, 1))
	}
}

// A zero period is the run-once form, allowed only with at most one
// repetition.
func TestISOZeroPeriod(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, expr := range []string{"R1//PT0S", "R1//P", "R0//P0D", "R1/2027-01-01T00:00:00Z/PT0S"} {
		if _, err := ParseISO8601(expr, time.UTC, now); err != nil {
			t.Errorf("ParseISO8601(%q): %v", expr, err)
		}
	}
	if got := isoParse(t, "R1//P", time.UTC, now).String(); got != "R1/2026-12-02T10:00:00Z/PT0S" {
		t.Errorf("String() = %q", got)
	}
	for _, expr := range []string{"R//PT0S", "R2//PT0S", "R2//P"} {
		_, err := ParseISO8601(expr, time.UTC, now)
		if err == nil || !strings.Contains(err.Error(), "R1") {
			t.Errorf("ParseISO8601(%q) = %v, want an error suggesting R1", expr, err)
		}
	}
}
