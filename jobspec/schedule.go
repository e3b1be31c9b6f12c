package jobspec

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Schedule computes a job's nominal fire times.
type Schedule interface {
	// Next returns the first nominal time strictly after t, or the zero
	// time when the schedule never fires again.
	Next(t time.Time) time.Time
}

// Shift tells how a time-zone transition moved a nominal time.
type Shift int

const (
	// NoShift: the wall time exists exactly once.
	NoShift Shift = iota
	// ShiftedByGap: the wall time was skipped by a forward jump; the run
	// happens once, at the instant of the jump.
	ShiftedByGap
	// FirstOfRepeated: the wall time occurs twice (clocks set back); this is
	// its first occurrence.
	FirstOfRepeated
	// SecondOfRepeated: the wall time occurs twice and this is its second
	// occurrence (only schedules that keep elapsed spacing fire here).
	SecondOfRepeated
)

// String describes the shift for humans, as shown by `aion explain`.
func (s Shift) String() string {
	switch s {
	case ShiftedByGap:
		return "skipped by DST jump, runs right after it"
	case FirstOfRepeated:
		return "repeated by DST, first occurrence"
	case SecondOfRepeated:
		return "repeated by DST, second occurrence"
	default:
		return ""
	}
}

// Occurrence is one nominal time together with the wall time the schedule
// asked for and how DST affected it.
type Occurrence struct {
	Time  time.Time // the instant, in the schedule's location
	Wall  time.Time // the wall time asked for (naive: read its fields, not its zone)
	Shift Shift
}

// Options adjusts how a schedule string is parsed.
type Options struct {
	// Location is the time zone the schedule is computed in; nil means UTC.
	Location *time.Location
	// CronSeconds says a 6-field cron expression starts with a seconds field.
	CronSeconds bool
	// Now stands in for an ISO 8601 schedule's empty start. The caller must
	// fix it (for instance to the time the job was applied) so that every
	// leader computes the same times.
	Now time.Time
}

// Manual is the schedule value of jobs that only run when triggered.
const Manual = "manual"

var (
	// ErrNeverFires reports a schedule that can never produce a time, such as "0 0 30 2 *".
	ErrNeverFires = errors.New("schedule never fires")
)

// ParseSchedule parses a cron expression (5 fields, a descriptor such as
// @daily, or @every <duration>) or an ISO 8601 repeating interval
// (R[n]/<start>/<period>). The value "manual" is not a schedule; callers
// check for it first.
func ParseSchedule(expr string, opts Options) (Schedule, error) {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return nil, errors.New("empty schedule")
	case expr == Manual:
		return nil, fmt.Errorf("%q is not a schedule: a manual job has no next time", Manual)
	case strings.HasPrefix(expr, "R") && strings.Contains(expr, "/"):
		s, err := ParseISO8601(expr, opts.Location, opts.Now)
		if err != nil {
			return nil, err
		}
		return s, nil
	default:
		return ParseCron(expr, opts.Location, opts.CronSeconds)
	}
}

// NextOccurrence returns the first occurrence of s strictly after t with its
// DST annotation; ok is false when s never fires again.
func NextOccurrence(s Schedule, t time.Time) (occ Occurrence, ok bool) {
	if o, isOccurrer := s.(interface {
		nextOccurrence(time.Time) Occurrence
	}); isOccurrer {
		occ = o.nextOccurrence(t)
		return occ, !occ.Time.IsZero()
	}
	next := s.Next(t)
	return Occurrence{Time: next, Wall: naive(next)}, !next.IsZero()
}

// FirstOccurrence returns the first occurrence of s for a schedule anchored
// at from (the time its job was applied, or now): an ISO 8601 schedule whose
// empty start stood for from fires at from itself, its first repetition;
// every other schedule fires strictly after from, as NextOccurrence does.
func FirstOccurrence(s Schedule, from time.Time) (occ Occurrence, ok bool) {
	if iso, isISO := s.(*ISOSchedule); isISO && iso.fromNow && iso.lastIndex >= 0 && iso.start.Equal(from) {
		return iso.occurrence(0), true
	}
	return NextOccurrence(s, from)
}

// Between returns the nominal times of s in [from, to], at most max of
// them; more reports that the range holds more.
func Between(s Schedule, from, to time.Time, max int) (times []time.Time, more bool) {
	for t := s.Next(from.Add(-time.Nanosecond)); !t.IsZero() && !t.After(to); t = s.Next(t) {
		if len(times) == max {
			return times, true
		}
		times = append(times, t)
	}
	return times, false
}
