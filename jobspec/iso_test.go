package jobspec

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below must load even without system tz data
)

func isoLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func isoParse(t testing.TB, expr string, loc *time.Location, now time.Time) *ISOSchedule {
	t.Helper()
	s, err := ParseISO8601(expr, loc, now)
	if err != nil {
		t.Fatalf("ParseISO8601(%q): %v", expr, err)
	}
	return s
}

// isoNexts returns up to n successive times of s after from.
func isoNexts(s Schedule, from time.Time, n int) []time.Time {
	var out []time.Time
	for t := from; len(out) < n; {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func checkTimes(t *testing.T, got, want []time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d times %v, want %d times %v", len(got), got, len(want), want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("time %d: got %v (%v), want %v", i, got[i], got[i].UTC(), want[i].UTC())
		}
	}
}

var isoNow = time.Date(2026, 5, 1, 10, 15, 30, 500_000_000, time.UTC)

func TestISO8601_ParseErrors(t *testing.T) {
	tests := []struct {
		expr string
		want string // substring of the error
	}{
		{"", `want R[n]/<start>/<period>, e.g. R/2026-01-01T02:00:00Z/P1D`},
		{"R/2026-01-01T00:00:00Z", `want R[n]/<start>/<period>`},
		{"R/a/b/c", `too many '/': want R[n]/<start>/<period>`},
		{"X3//P1D", `repetitions "X3": want R (repeat forever) or Rn`},
		{"r3//P1D", `repetitions "r3"`},
		{"R-1//P1D", `"-1" is not a whole number`},
		{"R+1//P1D", `"+1" is not a whole number`},
		{"R1x//P1D", `"1x" is not a whole number`},
		{"R1000000001//P1D", `too many repetitions`},
		{"R99999999999999999999999//P1D", `too many repetitions`},
		{"R3/2026-13-01T00:00:00Z/P1D", `ISO 8601 schedule "R3/2026-13-01T00:00:00Z/P1D": start: month 13 out of range 1-12`},
		{"R3/2026-00-01T00:00:00Z/P1D", `month 0 out of range 1-12`},
		{"R3/2026-02-29T00:00:00Z/P1D", `start: day 29 out of range 1-28 for 2026-02`},
		{"R3/2026-04-31/P1D", `day 31 out of range 1-30`},
		{"R3/2026-01-00/P1D", `day 0 out of range`},
		{"R3/2026-01-01T24:00:00Z/P1D", `hour 24 out of range 0-23`},
		{"R3/2026-01-01T10:60:00Z/P1D", `minute 60 out of range 0-59`},
		{"R3/2026-01-01T10:00:60Z/P1D", `second 60 out of range 0-59`},
		{"R3/2026-1-1/P1D", `"2026-1-1" is not a date and time`},
		{"R3/26-01-01/P1D", `is not a date and time`},
		{"R3/tomorrow/P1D", `is not a date and time`},
		{"R3/2026-01-01 10:00:00/P1D", `" 10:00:00" after the date: want T`},
		{"R3/2026-01-01Z/P1D", `after the date: want T`},
		{"R3/2026-01-01T10/P1D", `want hh:mm or hh:mm:ss`},
		{"R3/2026-01-01T1:00/P1D", `want hh:mm or hh:mm:ss`},
		{"R3/2026-01-01T10:00:/P1D", `seconds ":": want two digits`},
		{"R3/2026-01-01T10:00:00./P1D", `fraction of a second ".": want 1 to 9 digits`},
		{"R3/2026-01-01T10:00:00.1234567891Z/P1D", `want 1 to 9 digits`},
		{"R3/2026-01-01T10:00:00EST/P1D", `zone "EST": want Z, +hh:mm, +hhmm or +hh`},
		{"R3/2026-01-01T10:00:00+1/P1D", `zone "+1"`},
		{"R3/2026-01-01T10:00:00+01:0/P1D", `zone "+01:0"`},
		{"R3/2026-01-01T10:00:00+25:00/P1D", `hours 25 out of range 0-23`},
		{"R3/2026-01-01T10:00:00+01:60/P1D", `minutes 60 out of range 0-59`},
		{"R3/2026-01-01T10:00:00Zulu/P1D", `zone "Zulu"`},
		{"R/2026-01-01T00:00:00Z/P", `period "P": needs at least one component, e.g. P1D or PT30M`},
		{"R/2026-01-01T00:00:00Z/", `period "": must start with P`},
		{"R//1D", `must start with P, e.g. P1D or PT30M`},
		{"R//p1d", `must start with P`},
		{"R//PT", `period "PT": T must be followed by hours, minutes or seconds`},
		{"R//P1DT", `T must be followed by hours, minutes or seconds`},
		{"R//P1DT1HT1M", `T appears twice`},
		{"R//P0D", `period "P0D": has zero length`},
		{"R//PT0S", `has zero length`},
		{"R//P0Y0M0W0DT0H0M0.000S", `has zero length`},
		{"R//PT0.5S", `is shorter than one second`},
		{"R//P1D1Y", `"Y" out of order or repeated`},
		{"R//P1D1D", `"D" out of order or repeated`},
		{"R//PT1H2H", `"H" out of order or repeated`},
		{"R//PT1D", `"D" out of order or repeated`},
		{"R//P1H", `"H" needs T before it, e.g. PT1H`},
		{"R//P1S", `"S" needs T before it`},
		{"R//P1X", `unexpected "X"`},
		{"R//P-1D", `unexpected "-"`},
		{"R//P1d", `unexpected "d"`},
		{"R//PD", `missing number before "D"`},
		{"R//P1", `number "1" has no unit`},
		{"R//P1T1H", `number "1" has no unit`},
		{"R//P1.5D", `only seconds may have a fraction, e.g. PT1.5S`},
		{"R//PT1.5M", `only seconds may have a fraction`},
		{"R//PT1,5H", `only seconds may have a fraction`},
		{"R//PT1.S", `want digits after the decimal mark`},
		{"R//PT.5S", `missing number before "S"`},
		{"R//PT1.5S2M", `only the last component may have a fraction`},
		{"R//PT1.1234567891S", `want at most 9 digits`},
		{"R//P10001Y", `years and months exceed 10000 years`},
		{"R//P9999Y13M", `years and months exceed 10000 years`},
		{"R//P3652401D", `weeks and days exceed 10000 years`},
		{"R//P521772W", `weeks and days exceed 10000 years`},
		{"R//PT876577H", `hours, minutes and seconds exceed 100 years`},
		{"R//PT9999999999S", `exceed 100 years`},
		{"R//P99999999999D", `99999999999D is too large`},
	}
	for _, tt := range tests {
		s, err := ParseISO8601(tt.expr, time.UTC, isoNow)
		if err == nil {
			t.Errorf("ParseISO8601(%q) = %v, want an error containing %q", tt.expr, s, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseISO8601(%q): got error %q, want it to contain %q", tt.expr, err, tt.want)
		}
		if !strings.HasPrefix(err.Error(), "ISO 8601 schedule ") {
			t.Errorf("ParseISO8601(%q): got error %q, want it to start with \"ISO 8601 schedule \"", tt.expr, err)
		}
	}
}

func TestISO8601_AcceptedForms(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	tests := []struct {
		expr      string
		loc       *time.Location
		canonical string
		reps      int
		start     time.Time
	}{
		{"R/2026-01-01T02:00:00Z/P1D", time.UTC, "R/2026-01-01T02:00:00Z/P1D", -1, utc(2026, 1, 1, 2, 0, 0)},
		{" R5/2026-01-01/P1W ", berlin, "R5/2026-01-01T00:00:00/P1W", 5, utc(2025, 12, 31, 23, 0, 0)},
		{"R007/2026-01-01T02:00/PT30M", berlin, "R7/2026-01-01T02:00:00/PT30M", 7, utc(2026, 1, 1, 1, 0, 0)},
		{"R0/2026-01-01T00:00:00Z/P1D", time.UTC, "R0/2026-01-01T00:00:00Z/P1D", 0, utc(2026, 1, 1, 0, 0, 0)},
		{"R1000000000/2026-01-01T00:00:00Z/P1D", time.UTC, "R1000000000/2026-01-01T00:00:00Z/P1D", 1000000000, utc(2026, 1, 1, 0, 0, 0)},
		{"R/2026-01-01T02:00:00.250Z/PT1.5S", time.UTC, "R/2026-01-01T02:00:00.25Z/PT1.5S", -1, utc(2026, 1, 1, 2, 0, 0).Add(250 * time.Millisecond)},
		{"R/2026-01-01T02:00:00,5+01:00/PT1,5S", berlin, "R/2026-01-01T02:00:00.5+01:00/PT1.5S", -1, utc(2026, 1, 1, 1, 0, 0).Add(500 * time.Millisecond)},
		{"R/2026-01-01T02:00:00+0530/P1D", time.UTC, "R/2026-01-01T02:00:00+05:30/P1D", -1, utc(2025, 12, 31, 20, 30, 0)},
		{"R/2026-01-01T02:00:00-03/P1D", time.UTC, "R/2026-01-01T02:00:00-03:00/P1D", -1, utc(2026, 1, 1, 5, 0, 0)},
		{"R/2026-01-01T02:00:00-00:00/PT0H30M", time.UTC, "R/2026-01-01T02:00:00Z/PT30M", -1, utc(2026, 1, 1, 2, 0, 0)},
		{"R/2026-01-01T00:00:00Z/P1Y2M3W4DT5H6M7S", time.UTC, "R/2026-01-01T00:00:00Z/P1Y2M3W4DT5H6M7S", -1, utc(2026, 1, 1, 0, 0, 0)},
		{"R/2026-01-01T00:00:00Z/P0Y1M", time.UTC, "R/2026-01-01T00:00:00Z/P1M", -1, utc(2026, 1, 1, 0, 0, 0)},
		{"R/2026-01-01T00:00:00Z/PT1.000000001S", time.UTC, "R/2026-01-01T00:00:00Z/PT1.000000001S", -1, utc(2026, 1, 1, 0, 0, 0)},
		{"R/2026-01-01T00:00:00Z/P10000Y", time.UTC, "R/2026-01-01T00:00:00Z/P10000Y", -1, utc(2026, 1, 1, 0, 0, 0)},
		{"R/2026-01-01T00:00:00Z/P3652400D", time.UTC, "R/2026-01-01T00:00:00Z/P3652400D", -1, utc(2026, 1, 1, 0, 0, 0)},
		{"R/2026-01-01T00:00:00Z/PT876576H", time.UTC, "R/2026-01-01T00:00:00Z/PT876576H", -1, utc(2026, 1, 1, 0, 0, 0)},
		{"R/0000-01-01T00:00:00Z/P1D", time.UTC, "R/0000-01-01T00:00:00Z/P1D", -1, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"R/9999-12-31T23:59:59.999999999Z/PT1S", time.UTC, "R/9999-12-31T23:59:59.999999999Z/PT1S", -1, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{"R//PT1H", berlin, "R/2026-05-01T10:15:30.5Z/PT1H", -1, isoNow},
		// The wall time is kept as written even inside a DST gap.
		{"R/2026-03-29T02:30:00/P1D", berlin, "R/2026-03-29T02:30:00/P1D", -1, utc(2026, 3, 29, 1, 0, 0)},
	}
	for _, tt := range tests {
		s, err := ParseISO8601(tt.expr, tt.loc, isoNow)
		if err != nil {
			t.Errorf("ParseISO8601(%q): %v", tt.expr, err)
			continue
		}
		if got := s.String(); got != tt.canonical {
			t.Errorf("ParseISO8601(%q).String() = %q, want %q", tt.expr, got, tt.canonical)
		}
		if got := s.Repetitions(); got != tt.reps {
			t.Errorf("ParseISO8601(%q).Repetitions() = %d, want %d", tt.expr, got, tt.reps)
		}
		if got := s.Start(); !got.Equal(tt.start) || got.Location() != tt.loc {
			t.Errorf("ParseISO8601(%q).Start() = %v, want %v in %v", tt.expr, got, tt.start, tt.loc)
		}
		// The canonical form parses to the same schedule.
		again, err := ParseISO8601(s.String(), tt.loc, time.Time{})
		if err != nil {
			t.Errorf("ParseISO8601(%q) (canonical form): %v", s.String(), err)
		} else if again.String() != s.String() || !again.Start().Equal(s.Start()) {
			t.Errorf("canonical %q parses to %q starting %v, want the same starting %v", s.String(), again, again.Start(), s.Start())
		}
	}
}

func TestISO8601_NilLocationIsUTC(t *testing.T) {
	s := isoParse(t, "R/2026-01-01T09:00/P1D", nil, isoNow)
	if got, want := s.Start(), utc(2026, 1, 1, 9, 0, 0); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("got start %v, want %v UTC", got, want)
	}
}

func TestISO8601_ParseScheduleDispatches(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	s, err := ParseSchedule("R2/2026-01-01T09:00:00/P1D", Options{Location: berlin, Now: isoNow})
	if err != nil {
		t.Fatalf("ParseSchedule: %v", err)
	}
	if _, ok := s.(*ISOSchedule); !ok {
		t.Fatalf("got %T, want *ISOSchedule", s)
	}
	occ, ok := NextOccurrence(s, time.Time{})
	if want := utc(2026, 1, 1, 8, 0, 0); !ok || !occ.Time.Equal(want) {
		t.Errorf("got %v, %v, want %v, true", occ.Time, ok, want)
	}
}

func TestISO8601_FiniteRepetitions(t *testing.T) {
	s := isoParse(t, "R3/2026-01-01T00:00:00Z/P1D", time.UTC, isoNow)
	got := isoNexts(s, time.Time{}, 10)
	checkTimes(t, got, []time.Time{utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 2, 0, 0, 0), utc(2026, 1, 3, 0, 0, 0)})
	for _, at := range []time.Time{utc(2026, 1, 3, 0, 0, 0), utc(2026, 1, 3, 0, 0, 1), utc(2030, 1, 1, 0, 0, 0)} {
		if next := s.Next(at); !next.IsZero() {
			t.Errorf("Next(%v) = %v, want the zero time after the third run", at, next)
		}
	}
	// Next in the middle, exactly at an occurrence and just before one.
	tests := []struct{ at, want time.Time }{
		{utc(2026, 1, 1, 12, 0, 0), utc(2026, 1, 2, 0, 0, 0)},
		{utc(2026, 1, 2, 0, 0, 0), utc(2026, 1, 3, 0, 0, 0)},
		{utc(2026, 1, 1, 23, 59, 59), utc(2026, 1, 2, 0, 0, 0)},
		{utc(2026, 1, 1, 0, 0, 0).Add(-time.Nanosecond), utc(2026, 1, 1, 0, 0, 0)},
	}
	for _, tt := range tests {
		if got := s.Next(tt.at); !got.Equal(tt.want) {
			t.Errorf("Next(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}

	one := isoParse(t, "R1/2026-01-01T00:00:00Z/PT1S", time.UTC, isoNow)
	checkTimes(t, isoNexts(one, time.Time{}, 10), []time.Time{utc(2026, 1, 1, 0, 0, 0)})
}

func TestISO8601_R0NeverFires(t *testing.T) {
	s := isoParse(t, "R0/2026-01-01T00:00:00Z/P1D", time.UTC, isoNow)
	for _, at := range []time.Time{{}, utc(2025, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0)} {
		if got := s.Next(at); !got.IsZero() {
			t.Errorf("Next(%v) = %v, want the zero time", at, got)
		}
	}
	if occ, ok := NextOccurrence(s, time.Time{}); ok {
		t.Errorf("NextOccurrence = %v, true, want false", occ)
	}
}

func TestISO8601_InfiniteRepeats(t *testing.T) {
	s := isoParse(t, "R/2026-01-01T06:00:00Z/PT12H", time.UTC, isoNow)
	tests := []struct{ at, want time.Time }{
		{utc(2026, 1, 1, 6, 0, 0), utc(2026, 1, 1, 18, 0, 0)},
		{utc(2100, 6, 1, 7, 0, 0), utc(2100, 6, 1, 18, 0, 0)},
		{utc(9999, 12, 31, 18, 0, 0), time.Date(10000, 1, 1, 6, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := s.Next(tt.at); !got.Equal(tt.want) {
			t.Errorf("Next(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestISO8601_EmptyStartUsesNow(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	now := time.Now() // carries a monotonic reading, which must not matter
	s := isoParse(t, "R//PT1H", berlin, now)
	if got := s.Start(); !got.Equal(now) || got.Location() != berlin {
		t.Errorf("Start() = %v, want %v in Europe/Berlin", got, now)
	}
	if got := s.Next(now.Add(-time.Nanosecond)); !got.Equal(now) {
		t.Errorf("Next(now-1ns) = %v, want now %v", got, now)
	}
	if got, want := s.Next(now), now.Add(time.Hour); !got.Equal(want) {
		t.Errorf("Next(now) = %v, want %v", got, want)
	}

	fixed := isoParse(t, "R2//P1D", time.UTC, isoNow)
	checkTimes(t, isoNexts(fixed, time.Time{}, 5), []time.Time{isoNow, isoNow.AddDate(0, 0, 1)})
}

func TestISO8601_ResultsInLocation(t *testing.T) {
	ny := isoLoc(t, "America/New_York")
	for _, expr := range []string{"R/2026-01-01T00:00:00Z/PT1H", "R/2026-01-01T00:00:00/P1D", "R/2026-01-01T00:00:00Z/P1MT1H"} {
		s := isoParse(t, expr, ny, isoNow)
		for _, got := range isoNexts(s, isoNow, 3) {
			if got.Location() != ny {
				t.Errorf("%s: got %v in %v, want America/New_York", expr, got, got.Location())
			}
		}
	}
}

func TestISO8601_DailyKeepsWallTimeAcrossDST(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	tests := []struct {
		name  string
		start string
		want  []time.Time
	}{
		{"spring forward 2026-03-29", "R/2026-03-27T09:00:00/P1D", []time.Time{
			utc(2026, 3, 27, 8, 0, 0), utc(2026, 3, 28, 8, 0, 0), utc(2026, 3, 29, 7, 0, 0), utc(2026, 3, 30, 7, 0, 0),
		}},
		{"fall back 2026-10-25", "R/2026-10-23T09:00:00/P1D", []time.Time{
			utc(2026, 10, 23, 7, 0, 0), utc(2026, 10, 24, 7, 0, 0), utc(2026, 10, 25, 8, 0, 0), utc(2026, 10, 26, 8, 0, 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := isoParse(t, tt.start, berlin, isoNow)
			got := isoNexts(s, time.Time{}, len(tt.want))
			checkTimes(t, got, tt.want)
			for _, g := range got {
				if h, m, _ := g.Clock(); h != 9 || m != 0 {
					t.Errorf("got wall time %v, want 09:00", g)
				}
			}
		})
	}
}

func TestISO8601_PT24HShiftsWallTimeAcrossDST(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	tests := []struct {
		name      string
		start     string
		want      []time.Time
		wantHours []int
	}{
		{"spring forward 2026-03-29", "R/2026-03-28T09:00:00/PT24H",
			[]time.Time{utc(2026, 3, 28, 8, 0, 0), utc(2026, 3, 29, 8, 0, 0), utc(2026, 3, 30, 8, 0, 0)}, []int{9, 10, 10}},
		{"fall back 2026-10-25", "R/2026-10-24T09:00:00/PT24H",
			[]time.Time{utc(2026, 10, 24, 7, 0, 0), utc(2026, 10, 25, 7, 0, 0), utc(2026, 10, 26, 7, 0, 0)}, []int{9, 8, 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := isoParse(t, tt.start, berlin, isoNow)
			got := isoNexts(s, time.Time{}, len(tt.want))
			checkTimes(t, got, tt.want)
			for i, g := range got {
				if h := g.Hour(); h != tt.wantHours[i] {
					t.Errorf("time %d: got wall time %v, want hour %d", i, g, tt.wantHours[i])
				}
			}
		})
	}
}

// isoOccurrences returns up to n successive occurrences of s after from.
func isoOccurrences(s Schedule, from time.Time, n int) []Occurrence {
	var out []Occurrence
	for t := from; len(out) < n; {
		occ, ok := NextOccurrence(s, t)
		if !ok {
			break
		}
		out = append(out, occ)
		t = occ.Time
	}
	return out
}

type isoWantOcc struct {
	time  time.Time
	wall  time.Time // naive
	shift Shift
}

func checkOccurrences(t *testing.T, got []Occurrence, want []isoWantOcc) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d occurrences %v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if !g.Time.Equal(w.time) || !g.Wall.Equal(w.wall) || g.Shift != w.shift {
			t.Errorf("occurrence %d: got %v (%v) wall %v shift %d, want %v wall %v shift %d",
				i, g.Time, g.Time.UTC(), g.Wall.Format(time.DateTime), g.Shift, w.time.UTC(), w.wall.Format(time.DateTime), w.shift)
		}
	}
}

func TestISO8601_DailyInSpringGapRunsAtJump(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	s := isoParse(t, "R/2026-03-28T02:30:00/P1D", berlin, isoNow)
	checkOccurrences(t, isoOccurrences(s, time.Time{}, 3), []isoWantOcc{
		{utc(2026, 3, 28, 1, 30, 0), utc(2026, 3, 28, 2, 30, 0), NoShift},
		{utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 2, 30, 0), ShiftedByGap}, // 03:00 CEST
		{utc(2026, 3, 30, 0, 30, 0), utc(2026, 3, 30, 2, 30, 0), NoShift},     // 02:30 CEST
	})
	if got := s.Next(utc(2026, 3, 29, 1, 0, 0)).In(berlin); got.Day() != 30 || got.Hour() != 2 || got.Minute() != 30 {
		t.Errorf("got %v, want 2026-03-30 02:30 CEST", got)
	}

	// A start inside the gap keeps asking for 02:30.
	inGap := isoParse(t, "R/2026-03-29T02:30:00/P1D", berlin, isoNow)
	checkOccurrences(t, isoOccurrences(inGap, time.Time{}, 2), []isoWantOcc{
		{utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 29, 2, 30, 0), ShiftedByGap},
		{utc(2026, 3, 30, 0, 30, 0), utc(2026, 3, 30, 2, 30, 0), NoShift},
	})
}

func TestISO8601_DailyInRepeatedHourRunsOnce(t *testing.T) {
	ny := isoLoc(t, "America/New_York")
	s := isoParse(t, "R/2026-10-31T01:30:00/P1D", ny, isoNow)
	checkOccurrences(t, isoOccurrences(s, time.Time{}, 3), []isoWantOcc{
		{utc(2026, 10, 31, 5, 30, 0), utc(2026, 10, 31, 1, 30, 0), NoShift},
		{utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 1, 1, 30, 0), FirstOfRepeated}, // 01:30 EDT
		{utc(2026, 11, 2, 6, 30, 0), utc(2026, 11, 2, 1, 30, 0), NoShift},         // 01:30 EST
	})
	// Between the two 01:30s the next run is the next day's.
	if got, want := s.Next(utc(2026, 11, 1, 6, 0, 0)), utc(2026, 11, 2, 6, 30, 0); !got.Equal(want) {
		t.Errorf("Next(01:00 EST) = %v, want %v", got, want)
	}
}

func TestISO8601_HourlyInRepeatedHourRunsTwice(t *testing.T) {
	ny := isoLoc(t, "America/New_York")
	s := isoParse(t, "R/2026-11-01T00:30:00/PT1H", ny, isoNow)
	checkOccurrences(t, isoOccurrences(s, time.Time{}, 4), []isoWantOcc{
		{utc(2026, 11, 1, 4, 30, 0), utc(2026, 11, 1, 0, 30, 0), NoShift},
		{utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 1, 1, 30, 0), FirstOfRepeated},
		{utc(2026, 11, 1, 6, 30, 0), utc(2026, 11, 1, 1, 30, 0), SecondOfRepeated},
		{utc(2026, 11, 1, 7, 30, 0), utc(2026, 11, 1, 2, 30, 0), NoShift},
	})

	// A zoned start at the second 01:30 is itself the first run.
	second := isoParse(t, "R/2026-11-01T01:30:00-05:00/P1D", ny, isoNow)
	checkOccurrences(t, isoOccurrences(second, time.Time{}, 2), []isoWantOcc{
		{utc(2026, 11, 1, 6, 30, 0), utc(2026, 11, 1, 1, 30, 0), SecondOfRepeated},
		{utc(2026, 11, 2, 6, 30, 0), utc(2026, 11, 2, 1, 30, 0), NoShift},
	})
}

// In these zones the clock jumped from 00:00 to 01:00 (checked against the
// tz database: ZoneBounds of the day shows the new period starting at 01:00
// local and the old one ending at 23:59:59 the day before).
func TestISO8601_DailyAtVanishedMidnight(t *testing.T) {
	tests := []struct {
		zone  string
		start string // the day before the jump, 00:00
		want  []isoWantOcc
	}{
		{"America/Sao_Paulo", "R/2018-11-03T00:00:00/P1D", []isoWantOcc{
			{utc(2018, 11, 3, 3, 0, 0), utc(2018, 11, 3, 0, 0, 0), NoShift},      // 00:00 -03
			{utc(2018, 11, 4, 3, 0, 0), utc(2018, 11, 4, 0, 0, 0), ShiftedByGap}, // 01:00 -02
			{utc(2018, 11, 5, 2, 0, 0), utc(2018, 11, 5, 0, 0, 0), NoShift},      // 00:00 -02
		}},
		{"America/Santiago", "R/2026-09-05T00:00:00/P1D", []isoWantOcc{
			{utc(2026, 9, 5, 4, 0, 0), utc(2026, 9, 5, 0, 0, 0), NoShift},      // 00:00 -04
			{utc(2026, 9, 6, 4, 0, 0), utc(2026, 9, 6, 0, 0, 0), ShiftedByGap}, // 01:00 -03
			{utc(2026, 9, 7, 3, 0, 0), utc(2026, 9, 7, 0, 0, 0), NoShift},      // 00:00 -03
		}},
		{"Africa/Cairo", "R/2026-04-23T00:00:00/P1D", []isoWantOcc{
			{utc(2026, 4, 22, 22, 0, 0), utc(2026, 4, 23, 0, 0, 0), NoShift},      // 00:00 EET
			{utc(2026, 4, 23, 22, 0, 0), utc(2026, 4, 24, 0, 0, 0), ShiftedByGap}, // 01:00 EEST
			{utc(2026, 4, 24, 21, 0, 0), utc(2026, 4, 25, 0, 0, 0), NoShift},      // 00:00 EEST
		}},
		// Samoa skipped 2011-12-30 entirely: 23:59:59 -10 was followed by
		// 2011-12-31 00:00 +14.
		{"Pacific/Apia", "R/2011-12-29T00:00:00/P1D", []isoWantOcc{
			{utc(2011, 12, 29, 10, 0, 0), utc(2011, 12, 29, 0, 0, 0), NoShift},
			{utc(2011, 12, 30, 10, 0, 0), utc(2011, 12, 30, 0, 0, 0), ShiftedByGap},
			{utc(2011, 12, 30, 10, 0, 0), utc(2011, 12, 31, 0, 0, 0), NoShift},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			loc := isoLoc(t, tt.zone)
			s := isoParse(t, tt.start, loc, isoNow)
			var got []Occurrence
			for k := range tt.want {
				got = append(got, s.occurrence(int64(k)))
			}
			checkOccurrences(t, got, tt.want)
		})
	}
}

// Two occurrences at the same instant (Samoa, above) still give strictly
// increasing Next times.
func TestISO8601_CoincidingOccurrencesStillAdvance(t *testing.T) {
	s := isoParse(t, "R/2011-12-29T00:00:00/P1D", isoLoc(t, "Pacific/Apia"), isoNow)
	checkTimes(t, isoNexts(s, time.Time{}, 3), []time.Time{
		utc(2011, 12, 29, 10, 0, 0), utc(2011, 12, 30, 10, 0, 0), utc(2011, 12, 31, 10, 0, 0),
	})
}

func TestISO8601_MonthEndClamps(t *testing.T) {
	tests := []struct {
		expr string
		want []time.Time
	}{
		{"R/2026-01-31T10:00:00Z/P1M", []time.Time{
			utc(2026, 1, 31, 10, 0, 0), utc(2026, 2, 28, 10, 0, 0), utc(2026, 3, 31, 10, 0, 0), utc(2026, 4, 30, 10, 0, 0), utc(2026, 5, 31, 10, 0, 0),
		}},
		{"R/2028-01-31T10:00:00Z/P1M", []time.Time{
			utc(2028, 1, 31, 10, 0, 0), utc(2028, 2, 29, 10, 0, 0), utc(2028, 3, 31, 10, 0, 0), utc(2028, 4, 30, 10, 0, 0),
		}},
		{"R/2024-02-29T00:00:00Z/P1Y", []time.Time{
			utc(2024, 2, 29, 0, 0, 0), utc(2025, 2, 28, 0, 0, 0), utc(2026, 2, 28, 0, 0, 0), utc(2027, 2, 28, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0),
		}},
		{"R/2026-01-31T00:00:00Z/P13M", []time.Time{
			utc(2026, 1, 31, 0, 0, 0), utc(2027, 2, 28, 0, 0, 0), utc(2028, 3, 31, 0, 0, 0),
		}},
		// Months first (clamped), then days.
		{"R/2026-01-31T00:00:00Z/P1M1D", []time.Time{
			utc(2026, 1, 31, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0), utc(2026, 4, 2, 0, 0, 0), utc(2026, 5, 3, 0, 0, 0),
		}},
		{"R/2025-12-31T00:00:00Z/P2M", []time.Time{
			utc(2025, 12, 31, 0, 0, 0), utc(2026, 2, 28, 0, 0, 0), utc(2026, 4, 30, 0, 0, 0), utc(2026, 6, 30, 0, 0, 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s := isoParse(t, tt.expr, time.UTC, isoNow)
			checkTimes(t, isoNexts(s, time.Time{}, len(tt.want)), tt.want)
		})
	}
}

func TestISO8601_MonthlyKeepsWallTimeInZone(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	s := isoParse(t, "R/2026-01-31T09:00:00/P1M", berlin, isoNow)
	got := isoNexts(s, time.Time{}, 4)
	checkTimes(t, got, []time.Time{
		utc(2026, 1, 31, 8, 0, 0), utc(2026, 2, 28, 8, 0, 0), utc(2026, 3, 31, 7, 0, 0), utc(2026, 4, 30, 7, 0, 0),
	})
}

func TestISO8601_MixedPeriod(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	// Calendar day first (09:00 wall), then the hours as elapsed time.
	s := isoParse(t, "R/2026-03-28T09:00:00/P1DT1H", berlin, isoNow)
	checkTimes(t, isoNexts(s, time.Time{}, 3), []time.Time{
		utc(2026, 3, 28, 8, 0, 0), // 09:00 CET
		utc(2026, 3, 29, 8, 0, 0), // 10:00 CEST
		utc(2026, 3, 30, 9, 0, 0), // 11:00 CEST
	})
}

func TestISO8601_LongPeriods(t *testing.T) {
	tests := []struct {
		expr     string
		at, want time.Time
	}{
		{"R/2026-01-01T00:00:00Z/P10Y", utc(2050, 6, 1, 0, 0, 0), utc(2056, 1, 1, 0, 0, 0)},
		{"R/2026-01-01T00:00:00Z/P1000D", utc(2026, 1, 1, 0, 0, 0), utc(2028, 9, 27, 0, 0, 0)},
		{"R/2026-01-01T00:00:00Z/P1000D", utc(2030, 1, 1, 0, 0, 0), utc(2031, 6, 24, 0, 0, 0)},
		{"R/2026-01-01T00:00:00Z/P10000Y", utc(2027, 1, 1, 0, 0, 0), time.Date(12026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"R/2026-01-01T00:00:00Z/PT876576H", utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0).Add(876576 * time.Hour)},
		// Next long before the start is the start.
		{"R/2026-01-01T00:00:00Z/P1D", time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC), utc(2026, 1, 1, 0, 0, 0)},
		{"R/9999-12-31T23:59:59Z/PT1S", utc(2026, 1, 1, 0, 0, 0), utc(9999, 12, 31, 23, 59, 59)},
		{"R/2026-01-01T00:00:00Z/PT1S", time.Time{}, utc(2026, 1, 1, 0, 0, 0)},
	}
	for _, tt := range tests {
		s := isoParse(t, tt.expr, time.UTC, isoNow)
		if got := s.Next(tt.at); !got.Equal(tt.want) {
			t.Errorf("%s: Next(%v) = %v, want %v", tt.expr, tt.at, got, tt.want)
		}
	}
}

func TestISO8601_HugeIndex(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	at := time.Date(2026, 6, 15, 12, 34, 56, 700_000_000, time.UTC)
	tests := []struct {
		expr string
		loc  *time.Location
		want time.Time
	}{
		{"R/1970-01-01T00:00:00Z/PT1S", time.UTC, utc(2026, 6, 15, 12, 34, 57)},
		{"R/1970-01-01T00:00:00Z/PT1S", berlin, utc(2026, 6, 15, 12, 34, 57)},
		{"R/0001-01-01T00:00:00Z/PT1S", time.UTC, utc(2026, 6, 15, 12, 34, 57)},
		{"R/0001-01-01T00:00:00/PT1M", berlin, utc(2026, 6, 15, 12, 35, 32)}, // LMT +00:53:28,
		// Daily from year 1 in Berlin: midnight CEST.
		{"R/0001-01-01T00:00:00/P1D", berlin, utc(2026, 6, 15, 22, 0, 0)},
		{"R/0001-01-31T00:00:00/P1M", berlin, utc(2026, 6, 29, 22, 0, 0)},
		{"R/0001-01-01T00:00:00Z/P1Y", time.UTC, utc(2027, 1, 1, 0, 0, 0)},
	}
	for _, tt := range tests {
		s := isoParse(t, tt.expr, tt.loc, isoNow)
		got := s.Next(at)
		if !got.Equal(tt.want) {
			t.Errorf("%s in %v: Next(%v) = %v, want %v", tt.expr, tt.loc, at, got.UTC(), tt.want)
		}
		if next := s.Next(got); !next.After(got) {
			t.Errorf("%s in %v: Next(%v) = %v, want a later time", tt.expr, tt.loc, got, next)
		}
	}
}

func TestISO8601_BeyondHorizonNeverFires(t *testing.T) {
	s := isoParse(t, "R/2026-01-01T00:00:00Z/P10000Y", time.UTC, isoNow)
	if got := s.Next(time.Date(200_000, 1, 1, 0, 0, 0, 0, time.UTC)); !got.IsZero() {
		t.Errorf("Next(year 200000) = %v, want the zero time beyond the horizon", got)
	}
	if got := s.Next(time.Date(1<<30, 1, 1, 0, 0, 0, 0, time.UTC)); !got.IsZero() {
		t.Errorf("Next(year 2^30) = %v, want the zero time", got)
	}
}

func FuzzParseISO8601(f *testing.F) {
	for _, seed := range []string{
		"R/2026-01-01T02:00:00Z/P1D",
		"R3/2026-01-31T10:00:00/P1M",
		"R0/2026-01-01/PT1H",
		"R//PT1S",
		"R5/2024-02-29T00:00:00.123456789+05:30/P1Y2M3W4DT5H6M7.5S",
		"R/0001-01-01T00:00:00/PT0.000000001S",
		"R/9999-12-31T23:59:59-23:59/P10000Y",
		"R/2026-03-29T02:30:00/P1D",
		"R/2026-13-01T00:00:00Z/P1D",
		"R//P",
		"R//PT",
		"R-1//P1D",
		"R/2026-01-01T00:00:00Z/PT876576H",
		"R/2026-01-01T00:00:00Z/P3652400D",
		"//",
	} {
		f.Add(seed)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 6, 15, 12, 34, 56, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		// Parsing and each Next are bounded; a generous wall-clock budget
		// turns a loop that is not into a failure instead of a hang.
		isoWithin(t, 5*time.Second, expr, func() { isoFuzzCheck(t, expr, berlin, at) })
	})
}

// isoFuzzCheck parses expr and checks Next's properties. It runs off the
// test goroutine (see isoWithin), so it reports with Errorf and returns.
func isoFuzzCheck(t *testing.T, expr string, loc *time.Location, at time.Time) {
	s, err := ParseISO8601(expr, loc, isoNow)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "ISO 8601 schedule ") {
			t.Errorf("got error %q, want the ISO 8601 schedule prefix", err)
		}
		return
	}
	next := s.Next(at)
	if !next.IsZero() && !next.After(at) {
		t.Errorf("%q: Next(%v) = %v, want a later time or zero", expr, at, next)
		return
	}
	if !next.IsZero() {
		if again := s.Next(next); !again.IsZero() && !again.After(next) {
			t.Errorf("%q: Next(%v) = %v, want a later time or zero", expr, next, again)
			return
		}
	}
	early := time.Date(-100, 1, 1, 0, 0, 0, 0, time.UTC) // before any start
	if first := s.Next(early); s.Repetitions() != 0 && !first.Equal(s.Start()) {
		t.Errorf("%q: Next(year -100) = %v, want the start %v", expr, first, s.Start())
		return
	}
	if occ, ok := NextOccurrence(s, at); ok != !next.IsZero() || !occ.Time.Equal(next) {
		t.Errorf("%q: NextOccurrence(%v) = %v, %v, want %v", expr, at, occ.Time, ok, next)
		return
	}
	// The canonical form means the same schedule.
	again, err := ParseISO8601(s.String(), loc, time.Time{})
	if err != nil {
		t.Errorf("%q: canonical form %q does not parse: %v", expr, s.String(), err)
		return
	}
	if again.String() != s.String() || !again.Next(at).Equal(next) {
		t.Errorf("%q: canonical form %q gives %q and Next %v, want %v", expr, s.String(), again, again.Next(at), next)
	}
}

// isoWithin runs f and fails the test if it does not return within d. A
// runaway f keeps running in its goroutine, but the test reports instead of
// hanging until the global timeout. f must not call t.FailNow.
func isoWithin(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: did not finish within %v", what, d)
	}
}

// Go's time.ZoneBounds, for an instant in the last UTC day of a leap year
// served by a zone's TZ footer rule (after its last explicit transition,
// 2037 in the shipped tz data), returns an end that is not after the
// instant (golang/go#81583: tzset assumes 365-day years). resolveWall must
// still terminate there.
func TestISO8601_LeapYearEndAfterLastTransition(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	var got []time.Time
	isoWithin(t, 5*time.Second, "P1D around 2040-12-31 in Europe/Berlin (resolveWall, golang/go#81583)", func() {
		s, err := ParseISO8601("R/2040-12-29T02:30:00/P1D", berlin, isoNow)
		if err == nil {
			got = isoNexts(s, time.Time{}, 4)
		}
	})
	checkTimes(t, got, []time.Time{
		utc(2040, 12, 29, 1, 30, 0), utc(2040, 12, 30, 1, 30, 0), utc(2040, 12, 31, 1, 30, 0), utc(2041, 1, 1, 1, 30, 0),
	})
}

func BenchmarkISO8601Next(b *testing.B) {
	berlin := isoLoc(b, "Europe/Berlin")
	at := time.Date(2026, 6, 15, 12, 34, 56, 0, time.UTC)
	for _, expr := range []string{"R/2020-01-01T09:00:00/P1D", "R/2020-01-01T00:00:00Z/PT1M", "R/1970-01-01T00:00:00Z/PT1S"} {
		s := isoParse(b, expr, berlin, isoNow)
		b.Run(expr[strings.LastIndexByte(expr, '/')+1:], func(b *testing.B) {
			for b.Loop() {
				s.Next(at)
			}
		})
	}
}

// The estimate-gallop-bisect search agrees with walking the occurrences one
// by one.
func TestISO8601_NextMatchesLinearWalk(t *testing.T) {
	berlin := isoLoc(t, "Europe/Berlin")
	ny := isoLoc(t, "America/New_York")
	exprs := []string{
		"R/2025-01-31T02:30:00/P1D",
		"R/2025-01-31T02:30:00/P1M",
		"R/2025-01-31T02:30:00/P1W",
		"R/2025-01-31T02:30:00/P1DT1H",
		"R/2025-01-31T02:30:00/PT7H13M",
		"R/2025-01-31T02:30:00Z/PT1H",
		"R400/2025-10-01T01:30:00/P1D",
	}
	for _, loc := range []*time.Location{berlin, ny} {
		for _, expr := range exprs {
			s := isoParse(t, expr, loc, isoNow)
			var occ []time.Time
			// 150 steps stay before 2038; see TestISO8601_LeapYearEndAfterLastTransition.
			for k := int64(0); k <= min(s.lastIndex, 150); k++ {
				occ = append(occ, s.instant(k))
			}
			for i := 1; i < len(occ); i++ {
				if occ[i].Before(occ[i-1]) {
					t.Fatalf("%s in %v: occurrence %d %v is before occurrence %d %v", expr, loc, i, occ[i], i-1, occ[i-1])
				}
			}
			// want returns the first listed occurrence after at.
			want := func(at time.Time) time.Time {
				for _, o := range occ {
					if o.After(at) {
						return o
					}
				}
				return time.Time{}
			}
			for i, o := range occ[:len(occ)-1] {
				mid := o.Add(occ[i+1].Sub(o) / 2)
				for _, at := range []time.Time{o.Add(-time.Nanosecond), o, o.Add(time.Nanosecond), mid} {
					if got, w := s.Next(at), want(at); !got.Equal(w) {
						t.Errorf("%s in %v: Next(%v) = %v, want %v", expr, loc, at, got, w)
					}
				}
			}
		}
	}
}
