package jobspec

import (
	"strings"
	"testing"
	"time"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return v
}

// nextN returns the next n times after from, formatted in the schedule's zone.
func nextN(t testing.TB, s Schedule, loc *time.Location, from time.Time, n int) []string {
	t.Helper()
	var out []string
	for range n {
		next := s.Next(from)
		if next.IsZero() {
			out = append(out, "never")
			break
		}
		if !next.After(from) {
			t.Fatalf("Next(%s) = %s, not after it", from, next)
		}
		out = append(out, next.In(loc).Format(time.RFC3339))
		from = next
	}
	return out
}

func TestCron_NextTimes(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		zone    string
		seconds bool
		from    string
		want    []string
	}{
		{"every minute", "* * * * *", "UTC", false, "2026-11-24T10:00:30Z",
			[]string{"2026-11-24T10:01:00Z", "2026-11-24T10:02:00Z"}},
		{"seconds field when asked", "*/20 * * * * *", "UTC", true, "2026-11-24T10:00:30Z",
			[]string{"2026-11-24T10:00:40Z", "2026-11-24T10:01:00Z", "2026-11-24T10:01:20Z"}},
		{"day 31 skips short months", "0 0 31 * *", "UTC", false, "2026-01-31T00:00:00Z",
			[]string{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"}},
		{"leap day", "0 12 29 2 *", "UTC", false, "2026-01-01T00:00:00Z",
			[]string{"2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"}},
		{"leap day across 2100", "0 0 29 2 *", "UTC", false, "2097-01-01T00:00:00Z",
			[]string{"2104-02-29T00:00:00Z"}},
		{"Vixie OR of day-of-month and day-of-week", "0 0 13 * 5", "UTC", false, "2026-02-01T00:00:00Z",
			[]string{"2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-06T00:00:00Z"}},
		{"star step in day-of-month is a wildcard (AND)", "0 0 */2 * 1", "UTC", false, "2026-11-01T00:00:00Z",
			[]string{"2026-11-09T00:00:00Z", "2026-11-23T00:00:00Z", "2026-12-07T00:00:00Z"}},
		{"Sunday as 7", "0 9 * * 7", "UTC", false, "2026-11-24T00:00:00Z",
			[]string{"2026-11-29T09:00:00Z", "2026-12-06T09:00:00Z"}},
		{"range ending in 7", "0 9 * * 6-7", "UTC", false, "2026-11-24T00:00:00Z",
			[]string{"2026-11-28T09:00:00Z", "2026-11-29T09:00:00Z", "2026-12-05T09:00:00Z"}},
		{"names", "30 6 * JAN-FEB MON", "UTC", false, "2026-11-24T00:00:00Z",
			[]string{"2027-01-04T06:30:00Z"}},
		{"descriptor daily", "@daily", "UTC", false, "2026-11-24T10:00:00Z",
			[]string{"2026-11-25T00:00:00Z"}},
		{"descriptor weekly", "@weekly", "UTC", false, "2026-11-24T10:00:00Z",
			[]string{"2026-11-29T00:00:00Z"}},
		{"descriptor yearly", "@yearly", "UTC", false, "2026-11-24T10:00:00Z",
			[]string{"2027-01-01T00:00:00Z"}},
		{"every anchored at the epoch", "@every 7m", "UTC", false, "2026-11-24T10:00:00Z",
			// 2026-11-24T10:00Z is 1795514400 s after the epoch; 1795514400 mod 420 = 120.
			[]string{"2026-11-24T10:05:00Z", "2026-11-24T10:12:00Z"}},

		// Europe/Berlin: 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls back to 02:00 CET.
		{"Berlin fixed time in the spring gap runs at the jump", "30 2 * * *", "Europe/Berlin", false, "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"Berlin fixed time repeated in autumn runs once", "30 2 * * *", "Europe/Berlin", false, "2026-10-24T12:00:00Z",
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"Berlin hourly keeps elapsed spacing in spring", "0 * * * *", "Europe/Berlin", false, "2026-03-29T00:30:00+01:00",
			[]string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
		{"Berlin hourly keeps elapsed spacing in autumn", "0 * * * *", "Europe/Berlin", false, "2026-10-25T01:30:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
		{"Berlin step minutes run twice through the repeated hour", "*/30 2 * * *", "Europe/Berlin", false, "2026-10-25T01:50:00+02:00",
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00", "2026-10-26T02:00:00+01:00"}},
		{"Berlin step minutes in the gap hour do not run", "*/30 2 * * *", "Europe/Berlin", false, "2026-03-28T02:50:00+01:00",
			[]string{"2026-03-30T02:00:00+02:00"}},
		{"Berlin fixed times inside one gap run once at the jump", "15,45 2 * * *", "Europe/Berlin", false, "2026-03-29T00:00:00+01:00",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:15:00+02:00"}},

		// America/New_York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
		{"New York fixed time in the gap", "30 2 * * *", "America/New_York", false, "2026-03-07T12:00:00-05:00",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"New York 1:30 fires once on fall-back day", "30 1 * * *", "America/New_York", false, "2026-10-31T12:00:00-04:00",
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"New York after the first 1:30, not again in the second", "30 1 * * *", "America/New_York", false, "2026-11-01T01:10:00-05:00",
			[]string{"2026-11-02T01:30:00-05:00"}},
		{"New York every 15 minutes through fall back", "*/15 * * * *", "America/New_York", false, "2026-11-01T01:40:00-04:00",
			[]string{"2026-11-01T01:45:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:15:00-05:00"}},

		// America/Sao_Paulo, 2018-11-04: midnight did not exist (00:00 -03 → 01:00 -02).
		{"Sao Paulo midnight job runs at the jump", "0 0 * * *", "America/Sao_Paulo", false, "2018-11-03T12:00:00-03:00",
			[]string{"2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"}},
		// America/Santiago, 2026-09-06: 00:00 -04 → 01:00 -03.
		{"Santiago midnight job runs at the jump", "0 0 * * *", "America/Santiago", false, "2026-09-05T12:00:00-04:00",
			[]string{"2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}},
		{"Santiago 00:30 job in the gap", "30 0 * * *", "America/Santiago", false, "2026-09-05T12:00:00-04:00",
			[]string{"2026-09-06T01:00:00-03:00", "2026-09-07T00:30:00-03:00"}},
		// Africa/Cairo, 2026-04-24: 00:00 +02 → 01:00 +03.
		{"Cairo midnight job runs at the jump", "@midnight", "Africa/Cairo", false, "2026-04-23T12:00:00+02:00",
			[]string{"2026-04-24T01:00:00+03:00", "2026-04-25T00:00:00+03:00"}},
		// Australia/Lord_Howe shifts by 30 minutes: 2026-10-04 02:00 → 02:30.
		{"Lord Howe half-hour gap", "15 2 * * *", "Australia/Lord_Howe", false, "2026-10-03T12:00:00+10:30",
			[]string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
		// golang/go#81583: rule-based zone periods past 2037 end early in leap years.
		{"hourly across a leap year end after 2037", "0 * * * *", "Europe/Berlin", false, "2040-12-31T22:30:00+01:00",
			[]string{"2040-12-31T23:00:00+01:00", "2041-01-01T00:00:00+01:00", "2041-01-01T01:00:00+01:00"}},
		// Pacific/Apia skipped 2011-12-30 entirely.
		{"Apia skipped day runs once at the jump", "0 9 * * *", "Pacific/Apia", false, "2011-12-29T12:00:00-10:00",
			[]string{"2011-12-31T00:00:00+14:00", "2011-12-31T09:00:00+14:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustLoc(t, tt.zone)
			s, err := ParseCron(tt.expr, loc, tt.seconds)
			if err != nil {
				t.Fatalf("ParseCron(%q): %v", tt.expr, err)
			}
			got := nextN(t, s, loc, mustTime(t, tt.from), len(tt.want))
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("next times of %q from %s:\n got %v\nwant %v", tt.expr, tt.from, got, tt.want)
			}
		})
	}
}

func TestCron_ShiftAnnotations(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		expr, from string
		want       Shift
	}{
		{"30 2 * * *", "2026-03-28T12:00:00Z", ShiftedByGap},
		{"30 2 * * *", "2026-10-24T12:00:00Z", FirstOfRepeated},
		{"30 2 * * *", "2026-11-01T12:00:00Z", NoShift},
		{"30 * * * *", "2026-10-25T00:45:00Z", SecondOfRepeated}, // 01:45 CET → next 02:30 CET
		{"30 * * * *", "2026-10-24T23:45:00Z", FirstOfRepeated},  // 01:45 CEST → 02:30 CEST
	}
	for _, tt := range tests {
		s, err := ParseCron(tt.expr, berlin, false)
		if err != nil {
			t.Fatal(err)
		}
		occ, ok := NextOccurrence(s, mustTime(t, tt.from))
		if !ok || occ.Shift != tt.want {
			t.Errorf("%q after %s: shift = %v (%s), want %v", tt.expr, tt.from, occ.Shift, occ.Time, tt.want)
		}
	}
}

func TestCron_ParseErrors(t *testing.T) {
	tests := []struct {
		expr    string
		seconds bool
		want    string
	}{
		{"0 0 30 2 *", false, "never fires"},
		{"0 0 31 4,6,9,11 *", false, "never fires"},
		{"0 0 * * * *", false, "6 fields is ambiguous"},
		{"* * * *", false, "has 4 fields, needs 5"},
		{"* * * * *", true, "needs 6"},
		{"61 * * * *", false, "minute: "},
		{"0 25 * * *", false, "hour: "},
		{"0 0 0 * *", false, "day-of-month: "},
		{"0 0 1 13 *", false, "month: "},
		{"0 0 * * 8", false, "day-of-week: "},
		{"0 0 * * 5-7/0", false, "bad step"},
		{"@fortnightly", false, "unknown descriptor"},
		{"@every 500ms", false, "whole number of seconds"},
		{"@every 1.5s", false, "whole number of seconds"},
		{"@every soon", false, "@every <duration>"},
		{"CRON_TZ=Europe/Berlin 0 0 * * *", false, "timezone field"},
	}
	for _, tt := range tests {
		_, err := ParseCron(tt.expr, time.UTC, tt.seconds)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCron(%q) error = %v, want it to contain %q", tt.expr, err, tt.want)
		}
	}
}

func TestNormalizeDayOfWeek(t *testing.T) {
	tests := map[string]string{
		"7": "0", "5-7": "5-6,0", "1-7/2": "1,3,5,0", "7-7": "0", "MON-FRI": "MON-FRI", "*/2": "*/2", "0,7": "0,0",
	}
	for in, want := range tests {
		got, err := normalizeDayOfWeek(in)
		if err != nil || got != want {
			t.Errorf("normalizeDayOfWeek(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestEvery_SameTimesWhateverTheStart(t *testing.T) {
	s, err := ParseCron("@every 90s", time.UTC, false)
	if err != nil {
		t.Fatal(err)
	}
	a := s.Next(mustTime(t, "2026-11-24T10:00:01Z"))
	b := s.Next(mustTime(t, "2026-11-24T10:00:59Z"))
	if !a.Equal(b) {
		t.Errorf("two leaders disagree: %s vs %s", a, b)
	}
	if a.Unix()%90 != 0 {
		t.Errorf("%s is not anchored at the epoch", a)
	}
}

func BenchmarkCronNext(b *testing.B) {
	berlin := mustLoc(b, "Europe/Berlin")
	for _, expr := range []string{"* * * * *", "30 2 * * *", "0 0 29 2 *", "*/15 9-17 * * 1-5"} {
		s, err := ParseCron(expr, berlin, false)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(expr, func(b *testing.B) {
			t := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
			for b.Loop() {
				t = s.Next(t)
			}
		})
	}
}

func FuzzParseCron(f *testing.F) {
	for _, seed := range []string{"* * * * *", "30 2 * * *", "0 0 29 2 *", "*/15 9-17 * * 1-5", "0 0 13 * 5", "@every 90s", "@weekly", "5-7/2 * * * 7", "? ? ? ? ?", "0 0 31 2,4 *"} {
		f.Add(seed, "Europe/Berlin", int64(1795514400), false)
	}
	f.Add("*/20 * * * * *", "America/New_York", int64(1793500000), true)
	f.Fuzz(func(t *testing.T, expr, zone string, unix int64, seconds bool) {
		loc, err := time.LoadLocation(zone)
		if err != nil || zone == "" || zone == "Local" {
			loc = time.UTC
		}
		s, err := ParseCron(expr, loc, seconds)
		if err != nil {
			return
		}
		from := time.Unix(unix%(1<<33), 0) // within years 1697 .. 2242
		next := s.Next(from)
		if !next.IsZero() && !next.After(from) {
			t.Fatalf("%q: Next(%s) = %s, not after it", expr, from, next)
		}
	})
}
