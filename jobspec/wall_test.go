package jobspec

import (
	"testing"
	"time"
)

// TestResolveWall_LeapYearEndPastLastTransition covers golang/go#81583:
// after 2037, time.ZoneBounds mis-ends the last period of a leap year. Every
// wall time around those year ends must still resolve to exactly one instant
// that reads back as that wall time.
func TestResolveWall_LeapYearEndPastLastTransition(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Santiago"} {
		loc := mustLoc(t, zone)
		for _, year := range []int{2040, 2044, 2096} {
			start := time.Date(year, 12, 29, 0, 0, 0, 0, time.UTC)
			for w := start; w.Before(start.AddDate(0, 0, 5)); w = w.Add(20 * time.Minute) {
				res := resolveWall(w, loc)
				if len(res.instants) != 1 {
					t.Fatalf("%s %s: %d instants %v, want 1", zone, w.Format(time.DateTime), len(res.instants), res.instants)
				}
				if got := naive(res.instants[0]); !got.Equal(w) {
					t.Fatalf("%s %s resolved to %s, which reads %s", zone, w.Format(time.DateTime), res.instants[0], got)
				}
			}
		}
	}
}

func TestResolveWall_GapAndRepeat(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		wall      string
		instants  int
		wantFirst string
	}{
		{"2026-03-29T02:30:00Z", 0, "2026-03-29T03:00:00+02:00"},
		{"2026-10-25T02:30:00Z", 2, "2026-10-25T02:30:00+02:00"},
		{"2026-07-01T12:00:00Z", 1, "2026-07-01T12:00:00+02:00"},
		{"2052-03-31T02:30:00Z", 0, "2052-03-31T03:00:00+02:00"}, // rule-based years too
	}
	for _, tt := range tests {
		res := resolveWall(mustTime(t, tt.wall), berlin)
		if len(res.instants) != tt.instants || !res.first().Equal(mustTime(t, tt.wantFirst)) {
			t.Errorf("resolveWall(%s) = %d instants, first %s; want %d, %s", tt.wall, len(res.instants), res.first(), tt.instants, tt.wantFirst)
		}
	}
}
