package jobspec

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// ISO 8601 repeating intervals, as Apache Mesos Chronos accepts them:
// R[n]/<start>/<period>.
//
// Occurrence k is computed from the start directly, never by stepping from
// occurrence k-1, so there is no drift:
//
//  1. take the start's wall time in the schedule's location;
//  2. add k*(12*years+months) months, clamping the day to the month's last
//     day (Jan 31 + P1M is Feb 28 or 29, + P2M is Mar 31: a month period
//     never skips a month, unlike time.AddDate);
//  3. add k*(7*weeks+days) calendar days, keeping the wall time;
//  4. turn that wall time into an instant: its first occurrence when the
//     clock is set back over it, the instant of the jump when the clock
//     jumps over it;
//  5. add k*(hours, minutes, seconds) as elapsed time.
//
// So P1D keeps 09:00 across DST while PT24H moves by an hour on the wall.

const (
	// isoMaxRepetitions bounds n in Rn.
	isoMaxRepetitions = 1_000_000_000
	// isoMaxCalendarYears bounds the calendar part of a period (years and
	// months, and separately weeks and days).
	isoMaxCalendarYears = 10_000
	// isoMaxTimeSeconds bounds the time part of a period: 100 years.
	isoMaxTimeSeconds = 36524 * 24 * 3600
	// isoHorizonYears bounds how far from the start occurrences are computed;
	// a schedule has no occurrence beyond it (Next returns the zero time).
	isoHorizonYears = 100_000
	// isoHorizonSeconds is isoHorizonYears in seconds (Gregorian mean year).
	isoHorizonSeconds = isoHorizonYears * 31_556_952
	// isoMaxIndex bounds occurrence indexes so index arithmetic never overflows.
	isoMaxIndex = 1 << 62
	// isoMeanMonthSeconds and isoDaySeconds estimate a period's length to
	// find the occurrence index near a time before searching exactly.
	isoMeanMonthSeconds = 30.436875 * 86400
	isoDaySeconds       = 86400
	// isoExample is shown when the overall shape is wrong.
	isoExample = "want R[n]/<start>/<period>, e.g. R/2026-01-01T02:00:00Z/P1D"
)

// ISOSchedule is an ISO 8601 repeating interval R[n]/<start>/<period>. It
// does not change after parsing and is safe for concurrent use.
type ISOSchedule struct {
	reps int // number of runs in total; -1 for unbounded
	loc  *time.Location

	start time.Time // occurrence 0, in loc
	// wall is the wall time the start asked for: the written time when the
	// start has no zone designator (it may fall in a DST gap), otherwise the
	// start instant's reading in loc. Calendar steps are taken from it.
	wall time.Time
	// zoned says the start was written with a zone designator (or was now);
	// offset is the designator's offset east of UTC in seconds, kept so that
	// String writes the start as it was given.
	zoned  bool
	offset int
	// fromNow says the start was empty: it stands for the time the schedule
	// was anchored at (now, or when the job was applied), and that time is
	// the first repetition.
	fromNow bool

	period isoPeriod
	// lastIndex is the largest occurrence index computed: reps-1 or the
	// horizon, whichever is smaller; -1 when the schedule never fires.
	lastIndex int64
}

// isoPeriod is a parsed PnYnMnWnDTnHnMnS. The components are kept as written
// for String; months, days and elapsed are what the computation uses.
type isoPeriod struct {
	years, monthsPart, weeks, daysPart int64
	hours, minutes                     int64
	seconds                            int64 // whole seconds
	nanos                              int64 // fraction of the seconds component

	months  int64         // 12*years + monthsPart
	days    int64         // 7*weeks + daysPart
	elapsed time.Duration // hours, minutes and seconds
}

// ParseISO8601 parses an ISO 8601 repeating interval R[n]/<start>/<period>
// computed in loc (nil means UTC). An empty start means now, which the caller
// must fix so that every leader computes the same times.
func ParseISO8601(expr string, loc *time.Location, now time.Time) (*ISOSchedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("ISO 8601 schedule %q: %s", expr, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(strings.TrimSpace(expr), "/")
	switch {
	case len(parts) < 3:
		return nil, fail("%s", isoExample)
	case len(parts) > 3:
		return nil, fail("too many '/': %s", isoExample)
	}

	s := &ISOSchedule{loc: loc}
	reps, err := parseISORepetitions(parts[0])
	if err != nil {
		return nil, fail("repetitions %q: %v", parts[0], err)
	}
	s.reps = reps

	if parts[1] == "" {
		s.start = now.In(loc) // In also drops any monotonic clock reading
		s.wall = naive(s.start)
		s.zoned, s.fromNow = true, true
	} else {
		wall, zone, zoned, err := parseISOStart(parts[1])
		if err != nil {
			return nil, fail("start: %v", err)
		}
		if zoned {
			// wall was read in the designated zone: it is an instant.
			s.start = wall.Add(-time.Duration(zone) * time.Second).In(loc)
			s.wall = naive(s.start)
		} else {
			s.start = resolveWall(wall, loc).first().In(loc)
			s.wall = wall
		}
		s.zoned, s.offset = zoned, zone
	}

	p, err := parseISOPeriod(parts[2], reps >= 0 && reps <= 1)
	if err != nil {
		return nil, fail("period %q: %v", parts[2], err)
	}
	s.period = p
	s.lastIndex = s.computeLastIndex()
	return s, nil
}

// parseISORepetitions parses "R" (unbounded, -1) or "Rn".
func parseISORepetitions(r string) (int, error) {
	const want = "want R (repeat forever) or Rn with n a whole number from 0 to 1000000000"
	if !strings.HasPrefix(r, "R") {
		return 0, fmt.Errorf("%s", want)
	}
	digits := r[1:]
	if digits == "" {
		return -1, nil
	}
	if !isoAllDigits(digits) {
		return 0, fmt.Errorf("%q is not a whole number: %s", digits, want)
	}
	digits = strings.TrimLeft(digits, "0")
	if len(digits) > 10 {
		return 0, fmt.Errorf("too many repetitions: %s", want)
	}
	n, err := strconv.ParseInt("0"+digits, 10, 64)
	if err != nil || n > isoMaxRepetitions {
		return 0, fmt.Errorf("too many repetitions: %s", want)
	}
	return int(n), nil
}

// isoStartFormat is shown when a start is not a date and time.
const isoStartFormat = "want YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]] with an optional zone Z, +hh:mm, +hhmm or +hh"

// parseISOStart parses YYYY-MM-DD[Thh:mm[:ss[.fff]][zone]]. It returns the
// written date and time as a naive wall time, and, when a zone designator is
// present, its offset east of UTC in seconds.
func parseISOStart(v string) (wall time.Time, offset int, zoned bool, err error) {
	year, month, day, err := parseISODate(v)
	if err != nil {
		return time.Time{}, 0, false, err
	}
	var c isoClock
	if rest := v[10:]; rest != "" {
		if rest[0] != 'T' {
			return time.Time{}, 0, false, fmt.Errorf("%q after the date: want T and a time, e.g. 2026-01-01T02:00:00Z", rest)
		}
		if c, rest, err = parseISOClock(rest[1:]); err != nil {
			return time.Time{}, 0, false, err
		}
		if rest != "" {
			if offset, err = parseISOZone(rest); err != nil {
				return time.Time{}, 0, false, err
			}
			zoned = true
		}
	}
	wall = time.Date(year, month, day, c.hour, c.minute, c.second, c.nanos, time.UTC)
	return wall, offset, zoned, nil
}

// parseISODate parses the date a start begins with, exactly YYYY-MM-DD,
// and checks that the day exists.
func parseISODate(v string) (year int, month time.Month, day int, err error) {
	if len(v) < 10 || v[4] != '-' || v[7] != '-' ||
		!isoAllDigits(v[0:4]) || !isoAllDigits(v[5:7]) || !isoAllDigits(v[8:10]) {
		return 0, 0, 0, fmt.Errorf("%q is not a date and time: %s", v, isoStartFormat)
	}
	year, _ = strconv.Atoi(v[0:4])
	m, _ := strconv.Atoi(v[5:7])
	day, _ = strconv.Atoi(v[8:10])
	if m < 1 || m > 12 {
		return 0, 0, 0, fmt.Errorf("month %d out of range 1-12", m)
	}
	if dim := isoDaysInMonth(year, time.Month(m)); day < 1 || day > dim {
		return 0, 0, 0, fmt.Errorf("day %d out of range 1-%d for %04d-%02d", day, dim, year, m)
	}
	return year, time.Month(m), day, nil
}

// isoClock is the time of day of a start.
type isoClock struct {
	hour, minute, second, nanos int
}

// parseISOClock parses the time of day after a start's T, hh:mm[:ss[.fff]],
// and returns what follows it: the zone designator, if any.
func parseISOClock(v string) (c isoClock, rest string, err error) {
	if len(v) < 5 || v[2] != ':' || !isoAllDigits(v[0:2]) || !isoAllDigits(v[3:5]) {
		return c, "", fmt.Errorf("time %q: want hh:mm or hh:mm:ss, e.g. T02:00:00", v)
	}
	c.hour, _ = strconv.Atoi(v[0:2])
	c.minute, _ = strconv.Atoi(v[3:5])
	rest = v[5:]
	if strings.HasPrefix(rest, ":") {
		if len(rest) < 3 || !isoAllDigits(rest[1:3]) {
			return c, "", fmt.Errorf("seconds %q: want two digits, e.g. T02:00:05", rest)
		}
		c.second, _ = strconv.Atoi(rest[1:3])
		rest = rest[3:]
		if rest != "" && (rest[0] == '.' || rest[0] == ',') {
			if c.nanos, rest, err = parseISOFraction(rest); err != nil {
				return c, "", err
			}
		}
	}
	if err := c.check(); err != nil {
		return c, "", err
	}
	return c, rest, nil
}

// parseISOFraction parses a decimal mark ('.' or ',', v's first byte) and
// 1 to 9 digits into nanoseconds, and returns what follows.
func parseISOFraction(v string) (nanos int, rest string, err error) {
	n := isoDigitsEnd(v, 1)
	frac := v[1:n]
	if frac == "" || len(frac) > 9 {
		return 0, "", fmt.Errorf("fraction of a second %q: want 1 to 9 digits", v[:n])
	}
	nanos, _ = strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
	return nanos, v[n:], nil
}

// check reports an hour, minute or second out of range.
func (c isoClock) check() error {
	switch {
	case c.hour > 23:
		return fmt.Errorf("hour %d out of range 0-23", c.hour)
	case c.minute > 59:
		return fmt.Errorf("minute %d out of range 0-59", c.minute)
	case c.second > 59:
		return fmt.Errorf("second %d out of range 0-59", c.second)
	}
	return nil
}

// parseISOZone parses Z, ±hh:mm, ±hhmm or ±hh into seconds east of UTC.
func parseISOZone(z string) (int, error) {
	const want = "want Z, +hh:mm, +hhmm or +hh (or -)"
	if z == "Z" {
		return 0, nil
	}
	if z[0] != '+' && z[0] != '-' {
		return 0, fmt.Errorf("zone %q: %s", z, want)
	}
	digits := z[1:]
	var hh, mm string
	switch {
	case len(digits) == 2:
		hh = digits
	case len(digits) == 4:
		hh, mm = digits[0:2], digits[2:4]
	case len(digits) == 5 && digits[2] == ':':
		hh, mm = digits[0:2], digits[3:5]
	default:
		return 0, fmt.Errorf("zone %q: %s", z, want)
	}
	if !isoAllDigits(hh) || !isoAllDigits(mm) {
		return 0, fmt.Errorf("zone %q: %s", z, want)
	}
	h, _ := strconv.Atoi(hh)
	m := 0
	if mm != "" {
		m, _ = strconv.Atoi(mm)
	}
	if h > 23 {
		return 0, fmt.Errorf("zone %q: hours %d out of range 0-23", z, h)
	}
	if m > 59 {
		return 0, fmt.Errorf("zone %q: minutes %d out of range 0-59", z, m)
	}
	offset := h*3600 + m*60
	if z[0] == '-' {
		offset = -offset
	}
	return offset, nil
}

// isoDesignators lists a period's designators in the only order they may
// appear; a component's position in it tells which field it sets. M means
// months before T and minutes after it, which the order makes unambiguous.
const isoDesignators = "YMWDTHMS"

// Positions in isoDesignators.
const (
	isoYears = iota
	isoMonths
	isoWeeks
	isoDays
	isoT
	isoHours
	isoMinutes
	isoSeconds
)

// isoPeriodOrder is shown when a period's components are out of order.
const isoPeriodOrder = "components go Y, M, W, D, then T and H, M, S, e.g. P1DT12H"

// parseISOPeriod parses PnYnMnWnDTnHnMnS: the components as written, then
// the totals the computation uses, checked against the bounds. once says
// the schedule has at most one repetition, so the period is never stepped:
// it may then be zero ("P", "PT0S": Chronos's run-once form) or short.
func parseISOPeriod(v string, once bool) (isoPeriod, error) {
	var p isoPeriod
	if !strings.HasPrefix(v, "P") {
		return p, fmt.Errorf("must start with P, e.g. P1D or PT30M")
	}
	if v == "P" {
		if once {
			return p, nil
		}
		return p, fmt.Errorf("needs at least one component, e.g. P1D or PT30M (a bare P, no period, is only for R1 or R0: run once)")
	}
	if err := p.readComponents(v[1:]); err != nil {
		return p, err
	}
	if err := p.total(); err != nil {
		return p, err
	}
	if once {
		return p, nil
	}
	if err := p.checkLength(); err != nil {
		return p, err
	}
	return p, nil
}

// isoComponent is one number of a period and its designator, as written:
// the S of PT1.5S has whole "1", frac "5" and unit 'S'.
type isoComponent struct {
	whole, frac string
	unit        byte
}

// isoPeriodScan is how far reading a period's components has got.
type isoPeriodScan struct {
	pos       int  // index in isoDesignators of the next allowed designator
	inTime    bool // after T
	count     int  // components seen
	timeCount int  // components seen after T
	fraction  bool // the last component had a fraction: no other may follow
}

// readComponents reads the components after P, the date part (Y, M, W, D)
// then T and the time part (H, M, S), each at most once and in that order,
// and sets the fields they name.
func (p *isoPeriod) readComponents(rest string) error {
	var sc isoPeriodScan
	for rest != "" {
		if sc.fraction {
			return fmt.Errorf("only the last component may have a fraction")
		}
		if rest[0] == 'T' {
			if sc.inTime {
				return fmt.Errorf("T appears twice: %s", isoPeriodOrder)
			}
			sc.inTime, sc.pos = true, isoT+1
			rest = rest[1:]
			continue
		}
		c, n, err := readISOComponent(rest)
		if err != nil {
			return err
		}
		i, err := sc.place(c)
		if err != nil {
			return err
		}
		if err := p.set(i, c); err != nil {
			return err
		}
		sc.advance(i, c)
		rest = rest[n:]
	}
	return sc.complete()
}

// readISOComponent reads a number (digits, then optionally '.' or ',' and
// digits) and its designator from the start of v, and returns them with
// their length in bytes.
func readISOComponent(v string) (isoComponent, int, error) {
	var c isoComponent
	n := isoDigitsEnd(v, 0)
	c.whole = v[:n]
	if n < len(v) && (v[n] == '.' || v[n] == ',') {
		m := isoDigitsEnd(v, n+1)
		c.frac = v[n+1 : m]
		if c.frac == "" {
			return c, 0, fmt.Errorf("%q: want digits after the decimal mark", v[:m])
		}
		n = m
	}
	if n == len(v) {
		return c, 0, fmt.Errorf("number %q has no unit: %s", v, isoPeriodOrder)
	}
	c.unit = v[n]
	switch {
	case strings.IndexByte(isoDesignators, c.unit) < 0:
		return c, 0, fmt.Errorf("unexpected %q: %s", string(c.unit), isoPeriodOrder)
	case c.whole == "":
		return c, 0, fmt.Errorf("missing number before %q", string(c.unit))
	case c.unit == 'T':
		return c, 0, fmt.Errorf("number %q has no unit: %s", v[:n], isoPeriodOrder)
	}
	return c, n + 1, nil
}

// place finds c's designator at or after the next allowed one and returns
// its index in isoDesignators. A time designator needs T before it.
func (sc *isoPeriodScan) place(c isoComponent) (int, error) {
	i := strings.IndexByte(isoDesignators[sc.pos:], c.unit)
	if i < 0 {
		return 0, fmt.Errorf("%q out of order or repeated: %s", string(c.unit), isoPeriodOrder)
	}
	i += sc.pos
	if !sc.inTime && i > isoT {
		return 0, fmt.Errorf("%q needs T before it, e.g. PT%s%c", string(c.unit), c.whole, c.unit)
	}
	return i, nil
}

// advance records that the component c took designator i.
func (sc *isoPeriodScan) advance(i int, c isoComponent) {
	sc.pos = i + 1
	sc.count++
	if sc.inTime {
		sc.timeCount++
	}
	sc.fraction = c.frac != ""
}

// complete reports a period that ended early: a T with no time component
// after it, or no component at all.
func (sc *isoPeriodScan) complete() error {
	if sc.inTime && sc.timeCount == 0 {
		return fmt.Errorf("T must be followed by hours, minutes or seconds, e.g. PT30M")
	}
	if sc.count == 0 {
		return fmt.Errorf("needs at least one component, e.g. P1D or PT30M")
	}
	return nil
}

// set stores the number of c in the field of designator i (its index in
// isoDesignators). Only seconds may have a fraction, of at most 9 digits.
func (p *isoPeriod) set(i int, c isoComponent) error {
	if c.frac != "" && c.unit != 'S' {
		return fmt.Errorf("only seconds may have a fraction, e.g. PT1.5S")
	}
	if len(strings.TrimLeft(c.whole, "0")) > 10 {
		return fmt.Errorf("%s%c is too large", c.whole, c.unit)
	}
	num, _ := strconv.ParseInt(c.whole, 10, 64)
	switch i {
	case isoYears:
		p.years = num
	case isoMonths:
		p.monthsPart = num
	case isoWeeks:
		p.weeks = num
	case isoDays:
		p.daysPart = num
	case isoHours:
		p.hours = num
	case isoMinutes:
		p.minutes = num
	case isoSeconds:
		p.seconds = num
		if len(c.frac) > 9 {
			return fmt.Errorf("fraction of a second %q: want at most 9 digits", c.frac)
		}
		if c.frac != "" {
			p.nanos, _ = strconv.ParseInt(c.frac+strings.Repeat("0", 9-len(c.frac)), 10, 64)
		}
	}
	return nil
}

// total sums the components into the months, days and elapsed time the
// computation uses, each within its bound.
func (p *isoPeriod) total() error {
	// Each component has at most 10 digits, so these sums cannot overflow.
	p.months = 12*p.years + p.monthsPart
	if p.months > 12*isoMaxCalendarYears {
		return fmt.Errorf("years and months exceed %d years", isoMaxCalendarYears)
	}
	p.days = 7*p.weeks + p.daysPart
	if p.days > isoMaxCalendarYears*36524/100 {
		return fmt.Errorf("weeks and days exceed %d years", isoMaxCalendarYears)
	}
	secs := 3600*p.hours + 60*p.minutes + p.seconds
	if secs > isoMaxTimeSeconds || (secs == isoMaxTimeSeconds && p.nanos > 0) {
		return fmt.Errorf("hours, minutes and seconds exceed 100 years (876576 hours)")
	}
	p.elapsed = time.Duration(secs)*time.Second + time.Duration(p.nanos)
	return nil
}

// checkLength reports a period too short to schedule: zero, or under a
// second without a calendar part.
func (p *isoPeriod) checkLength() error {
	if p.months == 0 && p.days == 0 && p.elapsed == 0 {
		return fmt.Errorf("has zero length; want a positive period, e.g. P1D or PT30M (a zero period is only for R1 or R0: run once, e.g. R1//PT0S)")
	}
	if p.months == 0 && p.days == 0 && p.elapsed < time.Second {
		return fmt.Errorf("is shorter than one second, the finest interval Aion schedules")
	}
	return nil
}

// computeLastIndex returns the largest occurrence index to consider: the
// last repetition, capped so that occurrences stay within the horizon and
// index arithmetic cannot overflow.
func (s *ISOSchedule) computeLastIndex() int64 {
	last := int64(isoMaxIndex)
	p := s.period
	if p.months > 0 {
		last = min(last, 12*isoHorizonYears/p.months)
	}
	if p.days > 0 {
		last = min(last, isoHorizonYears*36524/100/p.days)
	}
	if p.elapsed > 0 {
		// isoHorizonSeconds*1e9 / elapsed, in 128 bits.
		hi, lo := bits.Mul64(isoHorizonSeconds, uint64(time.Second))
		if hi < uint64(p.elapsed) {
			q, _ := bits.Div64(hi, lo, uint64(p.elapsed))
			last = min(last, int64(min(q, isoMaxIndex)))
		}
	}
	if s.reps >= 0 {
		last = min(last, int64(s.reps)-1)
	}
	return last
}

// String returns the canonical form: R or Rn, the start in full
// (YYYY-MM-DDThh:mm:ss[.fff] and its zone designator as given, Z for UTC;
// an empty start becomes the time it stood for, in UTC), and the period with
// its nonzero components.
func (s *ISOSchedule) String() string {
	var b strings.Builder
	b.WriteByte('R')
	if s.reps >= 0 {
		b.WriteString(strconv.Itoa(s.reps))
	}
	b.WriteByte('/')
	if s.zoned {
		zone := time.FixedZone("", s.offset)
		b.WriteString(s.start.In(zone).Format("2006-01-02T15:04:05.999999999Z07:00"))
	} else {
		b.WriteString(s.wall.Format("2006-01-02T15:04:05.999999999"))
	}
	b.WriteByte('/')
	b.WriteString(s.period.String())
	return b.String()
}

// String formats the period with its nonzero components, keeping weeks and
// days, hours and minutes as written.
func (p isoPeriod) String() string {
	var b strings.Builder
	b.WriteByte('P')
	for _, c := range []struct {
		n    int64
		unit byte
	}{{p.years, 'Y'}, {p.monthsPart, 'M'}, {p.weeks, 'W'}, {p.daysPart, 'D'}} {
		if c.n != 0 {
			b.WriteString(strconv.FormatInt(c.n, 10))
			b.WriteByte(c.unit)
		}
	}
	if p.months == 0 && p.days == 0 && p.elapsed == 0 {
		return "PT0S" // the zero period of a run-once schedule
	}
	if p.elapsed > 0 {
		b.WriteByte('T')
		if p.hours != 0 {
			b.WriteString(strconv.FormatInt(p.hours, 10) + "H")
		}
		if p.minutes != 0 {
			b.WriteString(strconv.FormatInt(p.minutes, 10) + "M")
		}
		if p.seconds != 0 || p.nanos != 0 {
			b.WriteString(strconv.FormatInt(p.seconds, 10))
			if p.nanos != 0 {
				frac := fmt.Sprintf("%09d", p.nanos)
				b.WriteString("." + strings.TrimRight(frac, "0"))
			}
			b.WriteByte('S')
		}
	}
	return b.String()
}

// Repetitions returns n of Rn, or -1 for R (repeat forever).
func (s *ISOSchedule) Repetitions() int { return s.reps }

// Start returns the first occurrence, in the schedule's location.
func (s *ISOSchedule) Start() time.Time { return s.start }

// Location returns the time zone the schedule is computed in.
func (s *ISOSchedule) Location() *time.Location { return s.loc }

// Next returns the first occurrence strictly after t, or the zero time when
// there is none.
func (s *ISOSchedule) Next(t time.Time) time.Time {
	k, ok := s.index(t)
	if !ok {
		return time.Time{}
	}
	return s.instant(k)
}

// nextOccurrence is Next with the wall time asked for and how DST moved it.
func (s *ISOSchedule) nextOccurrence(t time.Time) Occurrence {
	k, ok := s.index(t)
	if !ok {
		return Occurrence{}
	}
	return s.occurrence(k)
}

// calendarWall returns the wall time of occurrence k before any elapsed
// time is added: steps 1-3 of the computation.
func (s *ISOSchedule) calendarWall(k int64) time.Time {
	w := s.wall
	if k == 0 || (s.period.months == 0 && s.period.days == 0) {
		return w
	}
	y, mo, d := w.Date()
	h, mi, sec := w.Clock()
	// Months: k*months fits easily, lastIndex caps it at the horizon.
	total := int64(mo-1) + k*s.period.months
	year := int64(y) + total/12
	month := time.Month(total%12 + 1)
	d = min(d, isoDaysInMonth(int(year), month))
	// Days: time.Date normalizes the day overflow into later months.
	return time.Date(int(year), month, d+int(k*s.period.days), h, mi, sec, w.Nanosecond(), time.UTC)
}

// elapsedAfter returns t plus k times the period's time part, exactly, as
// a time in loc. k*elapsed may not fit in a Duration, so it is split into
// seconds and nanoseconds in 128 bits.
func (s *ISOSchedule) elapsedAfter(t time.Time, k int64) time.Time {
	if k == 0 || s.period.elapsed == 0 {
		return t.In(s.loc)
	}
	hi, lo := bits.Mul64(uint64(k), uint64(s.period.elapsed))
	secs, nanos := bits.Div64(hi, lo, uint64(time.Second)) // hi < 1e9: lastIndex bounds k
	return time.Unix(t.Unix()+int64(secs), int64(t.Nanosecond())+int64(nanos)).In(s.loc)
}

// instant returns occurrence k (0 <= k <= lastIndex).
func (s *ISOSchedule) instant(k int64) time.Time {
	if k == 0 {
		return s.start
	}
	base := s.start
	if s.period.months != 0 || s.period.days != 0 {
		base = resolveWall(s.calendarWall(k), s.loc).first()
	}
	return s.elapsedAfter(base, k)
}

// occurrence returns occurrence k with its DST annotation.
func (s *ISOSchedule) occurrence(k int64) Occurrence {
	at := s.instant(k)
	occ := Occurrence{Time: at, Wall: s.calendarWall(k)}
	if k > 0 && s.period.elapsed > 0 {
		// Elapsed time was added after the calendar step: the wall time is
		// whatever the clock reads then; only a repeated reading is noted.
		occ.Wall = naive(at)
	}
	res := resolveWall(occ.Wall, s.loc)
	switch {
	case len(res.instants) == 0:
		occ.Shift = ShiftedByGap
	case len(res.instants) > 1 && at.Equal(res.instants[0]):
		occ.Shift = FirstOfRepeated
	case len(res.instants) > 1:
		occ.Shift = SecondOfRepeated
	}
	return occ
}

// index returns the smallest k in [0, lastIndex] whose occurrence is
// strictly after t; ok is false when there is none. Occurrences are
// non-decreasing in k, so it estimates k from the period's mean length,
// gallops to bracket the answer and finishes with a binary search: a few
// dozen steps at most, whatever the distance from the start.
func (s *ISOSchedule) index(t time.Time) (k int64, ok bool) {
	last := s.lastIndex
	if last < 0 {
		return 0, false
	}
	if s.instant(0).After(t) {
		return 0, true
	}
	// Invariant from here: instant(lo) <= t < instant(hi).
	est := s.estimate(t)
	var lo, hi int64
	if s.instant(est).After(t) {
		hi = est
		for step := int64(1); ; step *= 2 {
			if step >= hi {
				lo = 0 // instant(0) <= t, checked above
				break
			}
			lo = hi - step
			if !s.instant(lo).After(t) {
				break
			}
			hi = lo
		}
	} else {
		lo = est
		for step := int64(1); ; step *= 2 {
			if lo == last {
				return 0, false
			}
			hi = last
			if step < last-lo {
				hi = lo + step
			}
			if s.instant(hi).After(t) {
				break
			}
			lo = hi
		}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if s.instant(mid).After(t) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, true
}

// estimate guesses the index of the occurrence at t from the period's mean
// length, clamped to [0, lastIndex]. Only the search's speed depends on it.
func (s *ISOSchedule) estimate(t time.Time) int64 {
	p := s.period
	length := float64(p.months)*isoMeanMonthSeconds + float64(p.days)*isoDaySeconds + p.elapsed.Seconds()
	diff := float64(t.Unix()-s.start.Unix()) + float64(t.Nanosecond()-s.start.Nanosecond())/1e9
	k := math.Floor(diff / length)
	switch {
	case !(k > 0): // also NaN
		return 0
	case k >= float64(s.lastIndex):
		return s.lastIndex
	default:
		return int64(k)
	}
}

// isoAllDigits reports whether every byte of v is an ASCII digit (true for
// the empty string; callers check lengths themselves).
func isoAllDigits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// isoDigitsEnd returns the index of the first byte of v at or after from
// that is not an ASCII digit (len(v) if there is none).
func isoDigitsEnd(v string, from int) int {
	n := from
	for n < len(v) && v[n] >= '0' && v[n] <= '9' {
		n++
	}
	return n
}

// isoDaysInMonth returns the number of days in month m of year y
// (proleptic Gregorian).
func isoDaysInMonth(y int, m time.Month) int {
	// Day 0 of the next month is the last day of this one.
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
