package jobspec

import "time"

// maxZoneSwing bounds how far a wall clock can be from UTC (historical local
// mean times reach about ±15 h); searching this far either side of a wall
// time finds every instant that shows it.
const maxZoneSwing = 26 * time.Hour

// naive returns t's wall-clock reading in its own location as a UTC time, so
// that wall times can be compared and stepped without any DST arithmetic.
func naive(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// wallResolution is what a wall-clock reading means in a time zone.
type wallResolution struct {
	// instants holds the instants at which the clock shows the wall time, in
	// order: one normally, two when the clock is set back over it, none when
	// the clock jumps over it.
	instants []time.Time
	// jump is, for a wall time the clock jumps over, the instant of the jump:
	// the first instant whose wall reading is later than the wall time.
	jump time.Time
}

// first is the earliest instant at which the wall time is reached or passed:
// its first occurrence, or the jump over it.
func (r wallResolution) first() time.Time {
	if len(r.instants) > 0 {
		return r.instants[0]
	}
	return r.jump
}

// resolveWall maps the naive wall time w (read field by field, its location
// ignored) to instants in loc. It walks the zone periods around w with
// time.ZoneBounds, so it is exact for every transition in the tz database,
// including whole skipped days (Pacific/Apia, 2011-12-30).
func resolveWall(w time.Time, loc *time.Location) wallResolution {
	a := naive(w)
	// Fast path: away from any transition (most of the year), the wall time
	// has exactly one instant, at the current offset.
	_, offset := a.In(loc).Zone()
	guess := a.Add(-time.Duration(offset) * time.Second)
	if start, end := zoneBounds(guess.In(loc)); !start.IsZero() && !end.IsZero() &&
		guess.Sub(start) > maxZoneSwing && end.Sub(guess) > maxZoneSwing {
		return wallResolution{instants: []time.Time{guess.In(loc)}}
	}
	var res wallResolution
	t := a.Add(-maxZoneSwing).In(loc)
	limit := a.Add(maxZoneSwing)
	prevOffset, havePrev, prevEnd := 0, false, time.Time{}
	for {
		_, offset := t.Zone()
		start, end := zoneBounds(t)
		if havePrev && start.Before(prevEnd) {
			start = prevEnd // see zoneBounds: periods must not overlap
		}
		if havePrev && offset > prevOffset {
			// The clock jumped forward at start: walls in [start+prev, start+offset) never show.
			// Both bounds are naive wall readings, like a.
			jumpFrom := start.Add(time.Duration(prevOffset) * time.Second).UTC()
			jumpTo := start.Add(time.Duration(offset) * time.Second).UTC()
			if !a.Before(jumpFrom) && a.Before(jumpTo) {
				res.jump = start.In(loc)
			}
		}
		cand := a.Add(-time.Duration(offset) * time.Second)
		if (start.IsZero() || !cand.Before(start)) && (end.IsZero() || cand.Before(end)) {
			res.instants = append(res.instants, cand.In(loc))
		}
		if end.IsZero() || !end.Before(limit) {
			return res
		}
		prevOffset, havePrev, prevEnd = offset, true, end
		t = end.In(loc)
	}
}

// zoneBounds is t.ZoneBounds with golang/go#81583 worked around: for years
// past a zone's last explicit transition (2037 in the tz database) Go
// computes periods from the zone's rule as if every year had 365 days, and
// at the end of a leap year returns a period that ends at or before t. The
// offset is the same on both sides of that false boundary, so moving it a
// day on keeps every search moving forward and correct.
func zoneBounds(t time.Time) (start, end time.Time) {
	start, end = t.ZoneBounds()
	for !end.IsZero() && !end.After(t) {
		end = end.Add(24 * time.Hour)
	}
	return start, end
}
