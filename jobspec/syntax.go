package jobspec

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The YAML library reports a syntax error as "yaml: line N: message", with
// no column. yamlSyntaxError finds the column on that line for the errors
// it recognizes and adds a hint for the two a crontab habit causes: an
// unquoted @daily, and a ": " inside a command.

// Messages of go.yaml.in/yaml/v3 that yamlSyntaxError locates.
const (
	yamlCannotStart   = "found character that cannot start any token"
	yamlMappingValues = "mapping values are not allowed in this context"
	yamlTab           = "found a tab character that violates indentation"
)

// yamlSyntaxError turns the YAML library's error for data into an Error at
// the line it names and the column of the problem on that line.
func yamlSyntaxError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: file, Line: 1, Col: 1, Msg: "YAML syntax: " + msg}
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n != 1 {
		return e
	}
	_, msg, _ = strings.Cut(msg, ": ")
	e.Line, e.Msg = line, "YAML syntax: "+msg
	text, ok := lineOf(data, line)
	if !ok {
		return e
	}
	l := parseYAMLLine(text)
	e.Col = column(text, l.indent)
	switch msg {
	case yamlCannotStart:
		locateCannotStart(e, l)
	case yamlMappingValues:
		locateMappingValue(e, l)
	case yamlTab:
		if i := strings.IndexByte(text, '\t'); i >= 0 {
			e.Col = column(text, i)
			e.Msg += "; indent with spaces, not tabs"
		}
	}
	return e
}

// column is the 1-based column of byte offset at in text, counted in
// characters as the YAML library counts the columns of values.
func column(text string, at int) int { return utf8.RuneCountInString(text[:at]) + 1 }

// lineOf returns line n (1-based) of data without its line ending.
func lineOf(data []byte, n int) (string, bool) {
	for i := 1; i < n; i++ {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return "", false
		}
		data = data[nl+1:]
	}
	if nl := bytes.IndexByte(data, '\n'); nl >= 0 {
		data = data[:nl]
	}
	return strings.TrimSuffix(string(data), "\r"), true
}

// yamlLine is one line of a job file read as "[- ]key: value".
type yamlLine struct {
	text   string
	indent int // bytes before the first non-blank one
	key    string
	// value is what follows "key: ", without a trailing comment; valueAt
	// is its byte offset in text. Both are empty/-1 without a key.
	value   string
	valueAt int
}

// parseYAMLLine splits a line into its key and value where it reads as a
// plain "key: value" (after any "- " of a list item).
func parseYAMLLine(text string) yamlLine {
	l := yamlLine{text: text, valueAt: -1}
	l.indent = len(text) - len(strings.TrimLeft(text, " \t"))
	at := l.indent
	for strings.HasPrefix(text[at:], "- ") {
		at += 2
		for at < len(text) && text[at] == ' ' {
			at++
		}
	}
	sep := strings.Index(text[at:], ": ")
	if sep <= 0 || strings.ContainsAny(text[at:at+sep], `"'{[#`) {
		return l
	}
	l.key = text[at : at+sep]
	l.valueAt = at + sep + 2
	for l.valueAt < len(text) && text[l.valueAt] == ' ' {
		l.valueAt++
	}
	l.value = text[l.valueAt:]
	if c := strings.Index(l.value, " #"); c >= 0 {
		l.value = l.value[:c]
	}
	l.value = strings.TrimRight(l.value, " \t")
	return l
}

// locateCannotStart points at the character no plain value may start with,
// the reserved @ or `, and says to quote the value.
func locateCannotStart(e *Error, l yamlLine) {
	at := -1
	if l.value != "" && strings.ContainsAny(l.value[:1], "@`") {
		at = l.valueAt
	} else {
		for i := l.indent; i < len(l.text); i++ {
			if strings.IndexByte("@`", l.text[i]) >= 0 && (i == 0 || strings.IndexByte(" \t[{,", l.text[i-1]) >= 0) {
				at = i
				break
			}
		}
	}
	if at < 0 {
		return
	}
	e.Col = column(l.text, at)
	if at == l.valueAt {
		e.Field = l.key
		e.Msg += fmt.Sprintf("; quote the value: a plain YAML value cannot start with %c, write %s: %s", l.text[at], l.key, yamlQuote(l.value))
		return
	}
	e.Msg += fmt.Sprintf("; quote the value: a plain YAML value cannot start with %c", l.text[at])
}

// locateMappingValue points at the ": " inside a value that YAML reads as
// the start of a nested mapping, and says to quote the value.
func locateMappingValue(e *Error, l yamlLine) {
	if l.valueAt < 0 {
		return
	}
	i := strings.Index(l.value+" ", ": ")
	if i < 0 {
		return
	}
	e.Col, e.Field = column(l.text, l.valueAt+i), l.key
	e.Msg += fmt.Sprintf(`; quote the value: ": " inside a plain YAML value starts a mapping, write %s: %s`, l.key, yamlQuote(l.value))
}

// yamlQuote quotes v for YAML: in double quotes when that needs no escape,
// otherwise in single quotes (where only ' is doubled).
func yamlQuote(v string) string {
	if !strings.ContainsAny(v, `"\`) {
		return `"` + v + `"`
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}
