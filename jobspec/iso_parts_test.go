package jobspec

import "testing"

// TestParseISOPeriod_ErrorPrecedence pins which problem a period reports
// when it has more than one: the checks run designator by designator, left
// to right, and within one component in the order place, then set.
func TestParseISOPeriod_ErrorPrecedence(t *testing.T) {
	const order = "components go Y, M, W, D, then T and H, M, S, e.g. P1DT12H"
	for _, tc := range []struct{ in, want string }{
		{"PT1.5Y", `"Y" out of order or repeated: ` + order}, // order before the fraction
		{"P1.5Y", "only seconds may have a fraction, e.g. PT1.5S"},
		{"P1.5S", `"S" needs T before it, e.g. PT1S`}, // T before the fraction
		{"PT1.5S1M", "only the last component may have a fraction"},
		{"PT1.5ST", "only the last component may have a fraction"}, // before T twice
		{"P1T", `number "1" has no unit: ` + order},
		{"P.5T", `missing number before "T"`},
		{"P1DT", "T must be followed by hours, minutes or seconds, e.g. PT30M"},
		{"PT1H2H", `"H" out of order or repeated: ` + order},
		{"PTT1H", "T appears twice: " + order},
		{"P1.S", `"1.": want digits after the decimal mark`},
		{"PT1.1234567890S", `fraction of a second "1234567890": want at most 9 digits`},
		{"P10000000000D", "10000000000D is too large"},
		{"P1DX", `unexpected "X": ` + order},
		{"P1D2", `number "2" has no unit: ` + order},
	} {
		_, err := parseISOPeriod(tc.in, false)
		if err == nil || err.Error() != tc.want {
			t.Errorf("parseISOPeriod(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestParseISOStart_ErrorPrecedence pins the order of a start's checks:
// the date, then the clock's shape and fraction, its ranges, then the zone.
func TestParseISOStart_ErrorPrecedence(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2026-01-01T25:00:00.1234567890", `fraction of a second ".1234567890": want 1 to 9 digits`}, // before the hour's range
		{"2026-01-01T25:00", "hour 25 out of range 0-23"},
		{"2026-01-01T10:00:61Z", "second 61 out of range 0-59"}, // before the zone
		{"2026-01-01T10:00+2400", `zone "+2400": hours 24 out of range 0-23`},
		{"2026-01-01X", `"X" after the date: want T and a time, e.g. 2026-01-01T02:00:00Z`},
		{"2026-13-01", "month 13 out of range 1-12"},
		{"2026-02-30T10:00", "day 30 out of range 1-28 for 2026-02"},
		{"2026-01-01T10:00:0", `seconds ":0": want two digits, e.g. T02:00:05`},
	} {
		_, _, _, err := parseISOStart(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("parseISOStart(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}
