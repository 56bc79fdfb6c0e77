package recipe

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

var recipeType = reflect.TypeFor[Recipe]()

// parser checks a recipe's YAML tree and remembers where each field was, so
// errors name a file:line:col.
type parser struct {
	file string
	// pos maps a field path (go[1].output) to its node.
	pos  map[string]*yaml.Node
	errs []string
}

func (p *parser) err() error { return errors.New(strings.Join(p.errs, "\n")) }

// errorf records a problem at the field path at, or at the nearest enclosing
// field that exists in the file.
func (p *parser) errorf(at, format string, args ...any) {
	n := p.lookup(at)
	p.errs = append(p.errs, fmt.Sprintf("%s:%d:%d: %s", p.file, n.Line, n.Column, fmt.Sprintf(format, args...)))
}

func (p *parser) lookup(at string) *yaml.Node {
	for {
		if n, ok := p.pos[at]; ok {
			return n
		}
		i := strings.LastIndexAny(at, ".[")
		if i < 0 {
			return p.pos[""]
		}
		at = at[:i]
	}
}

// checkKeys reports keys that t has no field for, and records positions.
func (p *parser) checkKeys(n *yaml.Node, t reflect.Type, at string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.AliasNode:
		p.checkKeys(n.Alias, t, at)
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		p.checkStruct(n, t, at)
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			sub := fmt.Sprintf("%s[%d]", at, i)
			p.pos[sub] = c
			p.checkKeys(c, t.Elem(), sub)
		}
	}
}

func (p *parser) checkStruct(n *yaml.Node, t reflect.Type, at string) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := fields[k.Value]
		if !ok {
			p.pos["?"] = k
			p.errorf("?", "unknown field %q%s", k.Value, suggest(k.Value, fields))
			delete(p.pos, "?")
			continue
		}
		sub := k.Value
		if at != "" {
			sub = at + "." + k.Value
		}
		p.pos[sub] = v
		p.checkKeys(v, f.Type, sub)
	}
}

// yamlFields maps YAML keys to struct fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

// suggest offers the known key closest to an unknown one.
func suggest(key string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	for k := range fields {
		if d := distance(key, k); d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
