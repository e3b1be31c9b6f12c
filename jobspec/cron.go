package jobspec

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// CronSchedule is a cron expression evaluated in a time zone with ISC cron's
// DST rules (see the package documentation). Fields are parsed by
// robfig/cron/v3; the search for the next time is Aion's own, because
// robfig/cron's SpecSchedule.Next skips wall times that a DST jump removes.
type CronSchedule struct {
	expr string
	loc  *time.Location
	// Bit sets from robfig/cron: bit i set means value i matches.
	second, minute, hour, dom, month, dow uint64
	// domStar and dowStar follow Vixie cron: a field written with a leading
	// '*' or '?' (so "*/2" too, but not "1-31/2") is a wildcard, and day matching is "dom AND dow" when
	// either is a wildcard, "dom OR dow" otherwise.
	domStar, dowStar bool
	// elapsed marks schedules whose second, minute or hour field starts
	// with '*' or '?' ("*", "*/15"; ISC cron's rule, so "0-59/15" is
	// fixed-time): they keep real elapsed spacing across DST.
	elapsed bool
}

// EverySchedule fires every fixed interval, anchored at the Unix epoch so
// that every leader computes the same times whatever its start time.
type EverySchedule struct {
	expr   string
	every  time.Duration
	anchor time.Time
	loc    *time.Location // only for presenting times
}

// cronDescriptors maps descriptors to their five-field equivalents; keeping
// the text lets the wildcard rules see @hourly as "0 * * * *".
var cronDescriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

var cronFieldNames = [...]string{"second", "minute", "hour", "day-of-month", "month", "day-of-week"}

// ParseCron parses a five-field cron expression, a descriptor (@yearly,
// @annually, @monthly, @weekly, @daily, @midnight, @hourly) or
// "@every <duration>". With seconds, the expression has six fields and the
// first is the second. Day-of-week accepts 0-7 (0 and 7 are Sunday) and
// names. The result is a *CronSchedule or an *EverySchedule.
func ParseCron(expr string, loc *time.Location, seconds bool) (Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	text := strings.TrimSpace(expr)
	if strings.HasPrefix(text, "TZ=") || strings.HasPrefix(text, "CRON_TZ=") {
		return nil, fmt.Errorf("cron %q: a time-zone prefix is not allowed here; use the job's timezone field", expr)
	}
	if strings.HasPrefix(text, "@every") {
		return parseEvery(expr, text, loc)
	}
	if text == "@reboot" {
		return nil, fmt.Errorf("cron %q: not supported: a cluster has no boot to run at (executors start and stop on their own, and a job runs on whichever one is free); for a one-off job use schedule: manual and aion run, or R1//PT0S to run once right after apply", expr)
	}
	if strings.HasPrefix(text, "@") {
		five, ok := cronDescriptors[text]
		if !ok {
			return nil, fmt.Errorf("cron %q: unknown descriptor; use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>", expr)
		}
		if seconds {
			five = "0 " + five
		}
		text = five
	}
	fields := strings.Fields(text)
	want := 5
	if seconds {
		want = 6
	}
	if len(fields) != want {
		return nil, cronFieldCountError(expr, len(fields), seconds)
	}
	if !seconds {
		fields = append([]string{"0"}, fields...)
	}
	dowField, err := normalizeDayOfWeek(fields[5])
	if err != nil {
		return nil, fmt.Errorf("cron %q: day-of-week: %w", expr, err)
	}
	fields[5] = dowField

	parser := cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	parsed, err := parser.Parse(strings.Join(fields, " "))
	if err != nil {
		return nil, fmt.Errorf("cron %q: %s: %v", expr, cronFieldNames[badCronField(parser, fields)], err)
	}
	spec := parsed.(*cron.SpecSchedule)
	const starBit = 1 << 63 // robfig/cron marks '*' fields with the top bit
	s := &CronSchedule{
		expr:    expr,
		loc:     loc,
		second:  spec.Second &^ starBit,
		minute:  spec.Minute &^ starBit,
		hour:    spec.Hour &^ starBit,
		dom:     spec.Dom &^ starBit,
		month:   spec.Month &^ starBit,
		dow:     spec.Dow &^ starBit,
		domStar: isWildcard(fields[3]),
		dowStar: isWildcard(fields[5]),
		elapsed: isWildcard(fields[0]) || isWildcard(fields[1]) || isWildcard(fields[2]),
	}
	if !s.canFire() {
		return nil, fmt.Errorf("cron %q: %w: no month has that day", expr, ErrNeverFires)
	}
	return s, nil
}

func cronFieldCountError(expr string, n int, seconds bool) error {
	switch {
	case !seconds && n == 6:
		return fmt.Errorf("cron %q: 6 fields is ambiguous (a seconds field first, or a year last?); "+
			"use 5 fields (minute hour day-of-month month day-of-week), or set cron_seconds: true if the first field is seconds", expr)
	case seconds:
		return fmt.Errorf("cron %q: has %d fields; with cron_seconds: true it needs 6 (second minute hour day-of-month month day-of-week)", expr, n)
	default:
		return fmt.Errorf("cron %q: has %d fields, needs 5 (minute hour day-of-month month day-of-week) or a descriptor such as @daily", expr, n)
	}
}

// badCronField finds which field robfig/cron rejected by parsing each field
// alone; it is only called on the error path.
func badCronField(p cron.Parser, fields []string) int {
	for i := range fields {
		probe := []string{"0", "0", "0", "1", "1", "*"}
		probe[i] = fields[i]
		if _, err := p.Parse(strings.Join(probe, " ")); err != nil {
			return i
		}
	}
	return 0
}

func isWildcard(field string) bool {
	return strings.HasPrefix(field, "*") || strings.HasPrefix(field, "?")
}

// normalizeDayOfWeek rewrites 7 (Sunday, as Vixie cron accepts) to 0, which
// is the only Sunday robfig/cron knows: "7" → "0", "5-7" → "5-6,0" and
// "1-7/2" → "1,3,5,0".
func normalizeDayOfWeek(field string) (string, error) {
	parts := strings.Split(field, ",")
	for i, part := range parts {
		rng, step, hasStep := strings.Cut(part, "/")
		lo, hi, isRange := strings.Cut(rng, "-")
		if hi != "7" && lo != "7" {
			continue
		}
		if !isRange {
			hi = lo
		}
		from, err1 := strconv.Atoi(lo)
		to, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || from > to {
			return "", fmt.Errorf("bad range %q", part)
		}
		by := 1
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n <= 0 {
				return "", fmt.Errorf("bad step in %q", part)
			}
			by = n
		} else if isRange && from < 7 {
			parts[i] = fmt.Sprintf("%d-6,0", from)
			continue
		}
		var days []string
		for d := from; d <= to; d += by {
			days = append(days, strconv.Itoa(d%7))
		}
		parts[i] = strings.Join(days, ",")
	}
	return strings.Join(parts, ","), nil
}

// daysIn is the longest each month can be (February in leap years).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// canFire reports whether some month can hold a matching day. With
// day-of-week restricted and day-of-month a wildcard, or both restricted
// (OR), every month matches; only a restricted day-of-month alone can be
// impossible, like "0 0 30 2 *".
func (s *CronSchedule) canFire() bool {
	if s.domStar || !s.dowStar {
		return true
	}
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) != 0 && bits.TrailingZeros64(s.dom>>1)+1 <= daysIn[m] {
			return true
		}
	}
	return false
}

// String returns the expression as written.
func (s *CronSchedule) String() string { return s.expr }

// Location returns the zone the schedule is computed in.
func (s *CronSchedule) Location() *time.Location { return s.loc }

// Next returns the first nominal time strictly after t.
func (s *CronSchedule) Next(t time.Time) time.Time {
	if s.elapsed {
		return s.nextElapsed(t, false).Time
	}
	return s.nextFixed(t).Time
}

func (s *CronSchedule) nextOccurrence(t time.Time) Occurrence {
	if s.elapsed {
		return s.nextElapsed(t, true)
	}
	return s.nextFixed(t)
}

// nextFixed serves fixed-time jobs: each matching wall time fires once, at
// its first occurrence, or right after the jump when DST skips it. Mapping a
// wall time to that instant never goes backwards, so the first matching wall
// time after t's reading whose instant is after t is the answer; the loop
// only runs more than once inside a repeated hour.
func (s *CronSchedule) nextFixed(t time.Time) Occurrence {
	from := naive(t.In(s.loc)).Add(1)
	for range 10_000 {
		wall, ok := s.nextWall(from)
		if !ok {
			return Occurrence{}
		}
		res := resolveWall(wall, s.loc)
		if at := res.first(); at.After(t) {
			occ := Occurrence{Time: at, Wall: wall}
			switch len(res.instants) {
			case 0:
				occ.Shift = ShiftedByGap
			case 2:
				occ.Shift = FirstOfRepeated
			}
			return occ
		}
		from = wall.Add(time.Second)
	}
	return Occurrence{}
}

// nextElapsed serves schedules with wildcard hours, minutes or seconds: they
// fire at every instant whose wall reading matches, so a skipped hour has no
// runs and a repeated hour has them twice, keeping the real spacing. Within
// one zone period wall time and instants map one to one, so the search runs
// per period. Only `aion explain` needs the DST annotation (annotate).
func (s *CronSchedule) nextElapsed(t time.Time, annotate bool) Occurrence {
	lo, inclusive := t.In(s.loc), false
	for range 1_000 {
		_, offset := lo.Zone()
		_, end := zoneBounds(lo)
		from := naive(lo)
		if !inclusive {
			from = from.Add(1)
		}
		wall, ok := s.nextWall(from)
		if !ok {
			return Occurrence{}
		}
		at := wall.Add(-time.Duration(offset) * time.Second)
		if end.IsZero() || at.Before(end) {
			occ := Occurrence{Time: at.In(s.loc), Wall: wall}
			if !annotate {
				return occ
			}
			if res := resolveWall(wall, s.loc); len(res.instants) == 2 {
				occ.Shift = FirstOfRepeated
				if at.Equal(res.instants[1]) {
					occ.Shift = SecondOfRepeated
				}
			}
			return occ
		}
		lo, inclusive = end.In(s.loc), true
	}
	return Occurrence{}
}

// searchYears bounds the search for a matching wall time: Feb 29 can be
// eight years away (2096 → 2104).
const searchYears = 9

// nextWall returns the first naive wall time at or after from (a UTC-located
// naive time) that matches every field. It works on the fields as integers
// and jumps to the next set bit of each field, so a search costs a handful
// of steps rather than one per hour or minute.
func (s *CronSchedule) nextWall(from time.Time) (time.Time, bool) {
	t := from
	if t.Nanosecond() != 0 {
		t = t.Truncate(time.Second).Add(time.Second)
	}
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	month := int(mo)
	limit := y + searchYears
	for y <= limit {
		switch {
		case sec > 59:
			mi, sec = mi+1, 0
		case mi > 59:
			h, mi = h+1, 0
		case h > 23:
			d, h = d+1, 0
		case month > 12:
			y, month, d = y+1, 1, 1
		case d > daysInMonth(y, month):
			month, d, h, mi, sec = month+1, 1, 0, 0, 0
		case s.month&(1<<month) == 0:
			month, d, h, mi, sec = nextBit(s.month, month, 13), 1, 0, 0, 0
		case !s.dayMatches(y, month, d):
			d, h, mi, sec = d+1, 0, 0, 0
		case s.hour&(1<<h) == 0:
			h, mi, sec = nextBit(s.hour, h, 24), 0, 0
		case s.minute&(1<<mi) == 0:
			mi, sec = nextBit(s.minute, mi, 60), 0
		case s.second&(1<<sec) == 0:
			sec = nextBit(s.second, sec, 60)
		default:
			return time.Date(y, time.Month(month), d, h, mi, sec, 0, time.UTC), true
		}
	}
	return time.Time{}, false
}

// nextBit returns the first set bit of set above from, or overflow when
// there is none below it.
func nextBit(set uint64, from, overflow int) int {
	rest := set >> uint(from+1) << uint(from+1)
	if rest == 0 {
		return overflow
	}
	return min(bits.TrailingZeros64(rest), overflow)
}

func daysInMonth(y, m int) int {
	if m == 2 && (y%4 != 0 || (y%100 == 0 && y%400 != 0)) {
		return 28
	}
	return daysIn[m]
}

func (s *CronSchedule) dayMatches(y, month, d int) bool {
	domMatch := s.dom&(1<<uint(d)) != 0
	dowMatch := s.dow&(1<<uint(time.Date(y, time.Month(month), d, 0, 0, 0, 0, time.UTC).Weekday())) != 0
	if s.domStar || s.dowStar {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}

func parseEvery(expr, text string, loc *time.Location) (Schedule, error) {
	parsed, err := cron.ParseStandard(text)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %v (want @every <duration>, e.g. @every 90s or @every 1h30m)", expr, err)
	}
	delay := parsed.(cron.ConstantDelaySchedule).Delay
	arg := strings.TrimSpace(strings.TrimPrefix(text, "@every"))
	if d, _ := time.ParseDuration(arg); d != delay {
		return nil, fmt.Errorf("cron %q: interval must be a whole number of seconds, at least 1s", expr)
	}
	return &EverySchedule{expr: expr, every: delay, anchor: time.Unix(0, 0).UTC(), loc: loc}, nil
}

// String returns the expression as written.
func (s *EverySchedule) String() string { return s.expr }

// Interval returns the time between fires.
func (s *EverySchedule) Interval() time.Duration { return s.every }

// Next returns the first anchor + k·interval strictly after t.
func (s *EverySchedule) Next(t time.Time) time.Time {
	since := t.Sub(s.anchor)
	k := since / s.every
	if since < 0 && since%s.every != 0 {
		k-- // floor division for times before the anchor
	}
	return s.anchor.Add((k + 1) * s.every).In(s.loc)
}

// KeepsElapsedSpacing reports whether the schedule has a wildcard or step in
// its second, minute or hour field and so fires at every matching instant
// across DST, instead of being a fixed-time job.
func (s *CronSchedule) KeepsElapsedSpacing() bool { return s.elapsed }
