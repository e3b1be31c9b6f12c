package jobspec

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder turns YAML nodes into Go values strictly: unknown fields,
// duplicate keys and wrongly typed values are all reported with their
// position, and decoding goes on so that one pass finds every problem.
type decoder struct {
	file string
	errs ErrorList
	// at records where each field path was written, for later checks.
	at map[string]Position
	// aliases is the file's budget for alias expansion; aliasDepth > 0
	// while decoding inside an alias that was charged already.
	aliases    *aliasBudget
	aliasDepth int
}

// aliasBudget counts down the values that aliases may still expand to in
// one file; exceeded is set once the one error about it was reported.
type aliasBudget struct {
	left     int
	exceeded bool
}

// expand charges the values the alias expands to against the file's
// budget. It returns false, reporting the problem once per file, when they
// do not fit: the alias is then not decoded.
func (d *decoder) expand(alias *yaml.Node, path string) bool {
	if d.aliasDepth > 0 {
		return true // part of an alias charged whole
	}
	b := d.aliases
	if b.exceeded {
		return false
	}
	b.left -= countValues(alias, b.left)
	if b.left < 0 {
		b.exceeded = true
		d.errorf(alias, path, "alias *%s: the aliases in this file expand to more than %d values", alias.Value, MaxAliasValues)
		return false
	}
	return true
}

// countValues counts the nodes n expands to, following aliases, but stops
// soon after the count passes limit (aliases may even form cycles).
func countValues(n *yaml.Node, limit int) int {
	count := 1
	stack := []*yaml.Node{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		count += len(n.Content)
		if count > limit {
			return count
		}
		stack = append(stack, n.Content...)
	}
	return count
}

func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.errs = append(d.errs, d.pos(n).errorf(field, format, args...))
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// decode fills v (addressable) from n; path names the field in messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		if !d.expand(n, path) {
			return
		}
		d.aliasDepth++
		defer func() { d.aliasDepth-- }()
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
	}
	if d.at != nil && path != "" {
		d.at[path] = d.pos(n)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the default
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "want a single value, got %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path)
		v.Set(elem)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of fields, got %s", kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		field := joinPath(path, key.Value)
		if first, dup := seen[key.Value]; dup {
			d.errorf(key, field, "duplicate field (first set at line %d)", first.Line)
			continue
		}
		seen[key.Value] = key
		index, known := fields[key.Value]
		if !known {
			d.errorf(key, field, "unknown field%s", suggest(key.Value, fields))
			continue
		}
		d.decode(value, v.Field(index), field)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		field := joinPath(path, key.Value)
		if key.Kind != yaml.ScalarNode {
			d.errorf(key, path, "keys must be plain strings, got %s", kindName(key))
			continue
		}
		if first, dup := seen[key.Value]; dup {
			d.errorf(key, field, "duplicate key (first set at line %d)", first.Line)
			continue
		}
		seen[key.Value] = key
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(value, elem, field)
		m.SetMapIndex(reflect.ValueOf(key.Value), elem)
	}
	v.Set(m)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want a single value, got %s", kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			d.errorf(n, path, "want true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, 32)
		if err != nil {
			d.errorf(n, path, "want a whole number, got %q", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.errorf(n, path, "want a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("jobspec: no decoder for %s", v.Type())) // a programming error in the model
	}
}

// yamlFields maps each yaml tag name of t to its field index.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "an alias"
	}
}

// suggest names the closest known field when the unknown one is a likely
// typo: two edits away, or sharing its first four letters ("retry" for "retries").
func suggest(name string, fields map[string]int) string {
	best, bestDist := "", 3
	for f := range fields {
		dist := editDistance(name, f)
		if len(name) >= 4 && len(f) >= 4 && name[:4] == f[:4] {
			dist = min(dist, 2)
		}
		if dist < bestDist || (dist == bestDist && f < best) {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
