package jobspec

import (
	"fmt"
	"slices"
	"strings"
)

// Selector is one constraint on an executor node's labels. A job's
// constraints all have to hold for a node to be eligible.
type Selector struct {
	Key    string
	Op     SelectorOp
	Values []string // one value for = and !=, the set for in and notin
}

// SelectorOp is how a Selector compares a label.
type SelectorOp string

// The selector operators, in the syntax of Kubernetes label selectors.
const (
	OpEquals    SelectorOp = "="     // key=value (also key==value)
	OpNotEquals SelectorOp = "!="    // key!=value: absent or different
	OpIn        SelectorOp = "in"    // key in (a,b)
	OpNotIn     SelectorOp = "notin" // key notin (a,b): absent or not listed
	OpExists    SelectorOp = "exists"
	OpNotExists SelectorOp = "!"
)

// ParseSelector parses one constraint: "key=value", "key==value",
// "key!=value", "key in (a,b)", "key notin (a,b)", "key" or "!key".
func ParseSelector(expr string) (Selector, error) {
	s := strings.TrimSpace(expr)
	bad := func(why string) (Selector, error) {
		return Selector{}, fmt.Errorf("constraint %q: %s (want key=value, key!=value, key in (a,b), key notin (a,b), key or !key)", expr, why)
	}
	var sel Selector
	switch {
	case strings.HasPrefix(s, "!") && !strings.Contains(s, "="):
		sel = Selector{Key: strings.TrimSpace(s[1:]), Op: OpNotExists}
	case strings.Contains(s, "!="):
		k, v, _ := strings.Cut(s, "!=")
		sel = Selector{Key: strings.TrimSpace(k), Op: OpNotEquals, Values: []string{strings.TrimSpace(v)}}
	case strings.Contains(s, "="):
		k, v, _ := strings.Cut(s, "=")
		v = strings.TrimPrefix(v, "=")
		sel = Selector{Key: strings.TrimSpace(k), Op: OpEquals, Values: []string{strings.TrimSpace(v)}}
	case strings.Contains(s, "("):
		head, list, _ := strings.Cut(s, "(")
		list, closed := strings.CutSuffix(strings.TrimSpace(list), ")")
		fields := strings.Fields(head)
		if !closed || len(fields) != 2 {
			return bad("malformed set")
		}
		switch fields[1] {
		case "in":
			sel.Op = OpIn
		case "notin":
			sel.Op = OpNotIn
		default:
			return bad(fmt.Sprintf("unknown operator %q", fields[1]))
		}
		sel.Key = fields[0]
		for _, v := range strings.Split(list, ",") {
			sel.Values = append(sel.Values, strings.TrimSpace(v))
		}
	default:
		sel = Selector{Key: s, Op: OpExists}
	}
	if !validLabel.MatchString(sel.Key) {
		return bad(fmt.Sprintf("bad label key %q", sel.Key))
	}
	for _, v := range sel.Values {
		if !validLabel.MatchString(v) {
			return bad(fmt.Sprintf("bad label value %q", v))
		}
	}
	return sel, nil
}

// Matches reports whether a node with these labels satisfies the selector.
func (s Selector) Matches(labels map[string]string) bool {
	v, has := labels[s.Key]
	switch s.Op {
	case OpEquals:
		return has && v == s.Values[0]
	case OpNotEquals:
		return !has || v != s.Values[0]
	case OpIn:
		return has && slices.Contains(s.Values, v)
	case OpNotIn:
		return !has || !slices.Contains(s.Values, v)
	case OpExists:
		return has
	case OpNotExists:
		return !has
	}
	return false
}

// String writes the selector in the syntax ParseSelector reads.
func (s Selector) String() string {
	switch s.Op {
	case OpEquals, OpNotEquals:
		return s.Key + string(s.Op) + s.Values[0]
	case OpIn, OpNotIn:
		return fmt.Sprintf("%s %s (%s)", s.Key, s.Op, strings.Join(s.Values, ","))
	case OpNotExists:
		return "!" + s.Key
	}
	return s.Key
}

// ParseSelectors parses a job's constraint list.
func ParseSelectors(exprs []string) ([]Selector, error) {
	sels := make([]Selector, 0, len(exprs))
	for _, e := range exprs {
		sel, err := ParseSelector(e)
		if err != nil {
			return nil, err
		}
		sels = append(sels, sel)
	}
	return sels, nil
}

// MatchAll reports whether labels satisfy every selector.
func MatchAll(sels []Selector, labels map[string]string) bool {
	for _, s := range sels {
		if !s.Matches(labels) {
			return false
		}
	}
	return true
}
