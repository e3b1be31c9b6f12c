package jobspec

import (
	"fmt"
	"testing"
	"time"
)

// TestScheduleCache_SharesEqualSchedulesOnly: jobs with the same schedule,
// zone and seconds flag get the same parsed schedule; any difference in
// what the schedule depends on gives another, and every schedule handed
// out computes the times ParsedSchedule computes.
func TestScheduleCache_SharesEqualSchedulesOnly(t *testing.T) {
	applied := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	from := time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC) // the night Europe/Berlin springs forward
	job := func(schedule, zone string, seconds bool) *Job {
		return &Job{Name: "j", Schedule: schedule, Timezone: zone, CronSeconds: seconds}
	}
	c := NewScheduleCache(100)
	get := func(j *Job, now time.Time) Schedule {
		t.Helper()
		s, err := c.Schedule(j, now)
		if err != nil {
			t.Fatalf("%s: %v", j.Schedule, err)
		}
		want, err := j.ParsedSchedule(now)
		if err != nil {
			t.Fatal(err)
		}
		next, wantNext := from, from
		for range 5 {
			next, wantNext = s.Next(next), want.Next(wantNext)
			if !next.Equal(wantNext) {
				t.Fatalf("%s in %s: cached schedule gives %s, parsed gives %s", j.Schedule, j.Timezone, next, wantNext)
			}
		}
		return s
	}

	a := get(job("30 2 * * *", "Europe/Berlin", false), applied)
	if b := get(job("30 2 * * *", "Europe/Berlin", false), applied.Add(time.Hour)); b != a {
		t.Error("the same cron schedule applied at another time was parsed again, want it shared")
	}
	if b := get(job(" 30 2 * * * ", "Europe/Berlin", false), applied); b != a {
		t.Error("the same cron schedule with surrounding spaces was parsed again, want it shared")
	}
	for _, other := range []*Job{
		job("30 2 * * *", "UTC", false),
		job("31 2 * * *", "Europe/Berlin", false),
		job("30 2 * * * *", "Europe/Berlin", true),
	} {
		if get(other, applied) == a {
			t.Errorf("%q in %s (seconds %v) shares the schedule of \"30 2 * * *\" in Europe/Berlin", other.Schedule, other.Timezone, other.CronSeconds)
		}
	}

	// An ISO 8601 schedule with an empty start depends on when it was applied.
	iso := job("R//PT90M", "UTC", false)
	x, y := get(iso, applied), get(iso, applied.Add(time.Minute))
	if x == y {
		t.Error("R//PT90M applied at two times shares one schedule; its empty start differs")
	}
	if z := get(iso, applied); z != x {
		t.Error("R//PT90M applied at the same time was parsed again, want it shared")
	}

	for _, none := range []*Job{job("", "UTC", false), job(Manual, "UTC", false)} {
		if s, err := c.Schedule(none, applied); s != nil || err != nil {
			t.Errorf("schedule %q: got %v, %v; want nil, nil", none.Schedule, s, err)
		}
	}
	if _, err := c.Schedule(job("61 * * * *", "UTC", false), applied); err == nil {
		t.Error("a bad schedule was accepted")
	}
}

// TestScheduleCache_StaysBounded: past its limit the cache starts afresh,
// and what it handed out before keeps working.
func TestScheduleCache_StaysBounded(t *testing.T) {
	c := NewScheduleCache(3)
	first, err := c.Schedule(&Job{Schedule: "0 * * * *"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for m := range 10 {
		if _, err := c.Schedule(&Job{Schedule: fmt.Sprintf("%d 3 * * *", m)}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if len(c.schedules) > 3 {
			t.Fatalf("cache holds %d schedules, limit 3", len(c.schedules))
		}
	}
	from := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	if got, want := first.Next(from), from.Add(30*time.Minute); !got.Equal(want) {
		t.Errorf("a schedule handed out before the cache was cleared gives %s, want %s", got, want)
	}
}
