package jobspec

import (
	"strings"
	"time"
)

// ScheduleCache parses jobs' schedules for a holder of many jobs (the
// scheduler keeps every job's schedule in memory). It hands out one copy of
// each distinct schedule and of each time zone: a million jobs written
// from a few hundred crontab lines hold a few hundred schedules, and a
// million jobs in Europe/Berlin hold one copy of its transitions, not a
// million. Schedules never change once parsed, so sharing them is safe.
//
// The cache forgets its schedules once it holds limit of them, so its size
// stays bounded however many distinct schedules pass through it; schedules
// already handed out stay valid. It is not safe for concurrent use.
type ScheduleCache struct {
	limit     int
	schedules map[scheduleKey]Schedule
	locations map[string]*time.Location
}

// scheduleKey is everything a parsed schedule depends on.
type scheduleKey struct {
	expr     string
	timezone string
	seconds  bool
	now      int64 // Options.Now, for ISO 8601 schedules only (it stands in for an empty start)
}

// NewScheduleCache returns a cache holding at most limit schedules.
func NewScheduleCache(limit int) *ScheduleCache {
	return &ScheduleCache{
		limit:     max(limit, 1),
		schedules: make(map[scheduleKey]Schedule),
		locations: make(map[string]*time.Location),
	}
}

// Schedule returns j.ParsedSchedule(now), shared with every job that has
// the same schedule.
func (c *ScheduleCache) Schedule(j *Job, now time.Time) (Schedule, error) {
	if j.Schedule == "" || j.IsManual() {
		return nil, nil
	}
	key := scheduleKey{expr: strings.TrimSpace(j.Schedule), timezone: j.Timezone, seconds: j.CronSeconds}
	if strings.HasPrefix(key.expr, "R") {
		key.now = now.UnixNano()
	}
	if s, ok := c.schedules[key]; ok {
		return s, nil
	}
	s, err := ParseSchedule(key.expr, Options{Location: c.Location(j), CronSeconds: j.CronSeconds, Now: now})
	if err != nil {
		return nil, err
	}
	if len(c.schedules) >= c.limit {
		clear(c.schedules)
	}
	c.schedules[key] = s
	return s, nil
}

// Location returns j.Location(), shared with every job in the same zone.
func (c *ScheduleCache) Location(j *Job) *time.Location {
	loc, ok := c.locations[j.Timezone]
	if !ok {
		loc = j.Location()
		c.locations[j.Timezone] = loc
	}
	return loc
}
