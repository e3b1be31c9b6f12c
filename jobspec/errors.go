package jobspec

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a job file, located at the value (or key) that
// causes it.
type Error struct {
	File  string
	Line  int
	Col   int
	Field string // dotted path inside the job, e.g. "retries.backoff.max"; empty for the file itself
	Msg   string
}

// Error formats the problem as file:line:col: field: message.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Col)
	} else {
		fmt.Fprintf(&b, "%s: ", e.File) // a problem with the file as a whole
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList holds every problem found in a set of job files, in file and
// line order. Loading returns all of them at once.
type ErrorList []*Error

// Error lists the problems one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

func (l ErrorList) sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// Position is a place in a job file.
type Position struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// String formats the position as file:line:col.
func (p Position) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

func (p Position) errorf(field, format string, args ...any) *Error {
	return &Error{File: p.File, Line: p.Line, Col: p.Col, Field: field, Msg: fmt.Sprintf(format, args...)}
}
