package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder turns yaml.Nodes into Go values, collecting every problem with
// its position instead of stopping at the first.
type decoder struct {
	file string
	errs *errorList
	// warns are accepted oddities worth saying (see Spec.Warnings).
	warns Errors
	// uses records binds that name a volume, checked once all files are merged.
	uses []volumeUse
	// budget bounds the work done on one document, so aliases that expand
	// exponentially ("billion laughs") cannot stall the decoder.
	budget int
	spent  bool
}

// newDecoder returns a decoder for a document of size bytes.
func newDecoder(file string, size int, errs *errorList) *decoder {
	return &decoder{file: file, errs: errs, budget: 16*size + 10000}
}

// spend takes one unit of work; once the budget is gone it reports the
// document (once) and returns false.
func (d *decoder) spend(n *yaml.Node) bool {
	if d.budget > 0 {
		d.budget--
		return true
	}
	if !d.spent {
		d.spent = true
		d.errorf(n, "document too complex: aliases expand too far")
	}
	return false
}

// volumeUse is a bind whose source names a volume.
type volumeUse struct {
	volume string
	bind   string
	pos    Pos
}

func (d *decoder) pos(n *yaml.Node) Pos { return nodePos(d.file, n) }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.add(d.pos(n), format, args...)
}

// warnf records something the spec may do but probably did not mean.
func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	d.warns = append(d.warns, &Error{Pos: d.pos(n), Msg: fmt.Sprintf(format, args...)})
}

var (
	posType = reflect.TypeFor[Pos]()
	refType = reflect.TypeFor[Ref]()
	idType  = reflect.TypeFor[ID]()
)

// specsPkg holds the OCI runtime types, decoded through encoding/json so
// their json tags (and nothing else) define the accepted keys.
const specsPkg = "github.com/opencontainers/runtime-spec/specs-go"

// maxAliasDepth bounds alias chains and merge keys.
const maxAliasDepth = 32

func quote(s string) string { return strconv.Quote(s) }

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return quote(n.Value)
	}
	return "nothing"
}

func prefix(what string) string {
	if what == "" {
		return ""
	}
	return what + ": "
}

// pair is one key and value of a mapping.
type pair struct {
	key, value *yaml.Node
}

// pairs lists a mapping's entries, with YAML merge keys ("<<") expanded:
// merged entries come first and explicit keys override them.
func (d *decoder) pairs(n *yaml.Node, depth int) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.spend(k) {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(v, depth+1)...)
			continue
		}
		own = append(own, pair{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	explicit := map[string]bool{}
	for _, p := range own {
		explicit[p.key.Value] = true
	}
	var out []pair
	seen := map[string]bool{}
	for _, p := range merged {
		if !explicit[p.key.Value] && !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return append(out, own...)
}

func (d *decoder) mergePairs(v *yaml.Node, depth int) []pair {
	if depth > maxAliasDepth {
		d.errorf(v, "merge keys nested too deeply")
		return nil
	}
	if !d.spend(v) {
		return nil
	}
	v = resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, depth)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			out = append(out, d.mergePairs(item, depth+1)...)
		}
		return out
	}
	d.errorf(v, "merge key: expected a mapping, got %s", describe(v))
	return nil
}

// field is a settable key of a struct.
type field struct {
	name  string
	index []int
}

// fieldsOf lists the keys a struct accepts, from its yaml tags, with inline
// structs flattened and position fields left out.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Type == posType {
			continue
		}
		tag := sf.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for _, f := range fieldsOf(sf.Type) {
				out = append(out, field{f.name, append([]int{i}, f.index...)})
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out = append(out, field{name, []int{i}})
	}
	return out
}

// structure decodes a mapping into the struct v and returns the value node
// of each key it set, so callers can record positions and check values.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, what string) map[string]*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%sexpected a mapping, got %s", prefix(what), describe(n))
		return nil
	}
	fields := fieldsOf(v.Type())
	names := make([]string, len(fields))
	byName := map[string][]int{}
	for i, f := range fields {
		names[i] = f.name
		byName[f.name] = f.index
	}
	set := map[string]*yaml.Node{}
	for _, p := range d.pairs(n, 0) {
		key := resolve(p.key)
		if key.Kind != yaml.ScalarNode {
			d.errorf(p.key, "%sexpected a field name, got %s", prefix(what), describe(key))
			continue
		}
		idx, ok := byName[key.Value]
		if !ok {
			d.errorf(p.key, "unknown field %s%s", quote(key.Value), didYouMean(key.Value, names))
			continue
		}
		if prev, dup := set[key.Value]; dup {
			d.errorf(p.key, "field %s already set at %s", quote(key.Value), d.pos(prev))
			continue
		}
		set[key.Value] = p.value
		d.decode(p.value, v.FieldByIndex(idx), key.Value)
	}
	return set
}

// decode sets v from n and reports whether it could.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, what string) bool {
	n = resolve(n)
	if n == nil || isNull(n) {
		return true
	}
	if !d.spend(n) {
		return false
	}
	t := v.Type()
	switch {
	case t == refType:
		return d.ref(n, v, what)
	case t == idType:
		return d.id(n, v, what)
	case t == secretUseType:
		return d.secretUse(n, v, what)
	case t.PkgPath() == specsPkg:
		return d.viaJSON(n, v, what)
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := reflect.New(t.Elem())
		if !d.decode(n, nv.Elem(), what) {
			return false
		}
		v.Set(nv)
		return true
	case reflect.Struct:
		return d.structure(n, v, what) != nil
	case reflect.Slice:
		return d.slice(n, v, what)
	case reflect.Map:
		return d.mapping(n, v, what)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, "%sexpected a string, got %s", prefix(what), describe(n))
			return false
		}
		v.SetString(n.Value)
		return true
	case reflect.Bool:
		return d.boolean(n, v, what)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return d.integer(n, v, what)
	}
	d.errorf(n, "%scannot decode into %s", prefix(what), t)
	return false
}

func (d *decoder) slice(n *yaml.Node, v reflect.Value, what string) bool {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%sexpected a list, got %s", prefix(what), describe(n))
		return false
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	ok := true
	for i, item := range n.Content {
		ok = d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", what, i)) && ok
	}
	v.Set(out)
	return ok
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, what string) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%sexpected a mapping, got %s", prefix(what), describe(n))
		return false
	}
	out := reflect.MakeMap(v.Type())
	seen := map[string]*yaml.Node{}
	ok := true
	for _, p := range d.pairs(n, 0) {
		key := resolve(p.key)
		if key.Kind != yaml.ScalarNode || isNull(key) {
			d.errorf(p.key, "%sexpected a string key, got %s", prefix(what), describe(key))
			ok = false
			continue
		}
		if prev, dup := seen[key.Value]; dup {
			d.errorf(p.key, "%skey %s already set at %s", prefix(what), quote(key.Value), d.pos(prev))
			ok = false
			continue
		}
		seen[key.Value] = p.key
		elem := reflect.New(v.Type().Elem()).Elem()
		if !d.decode(p.value, elem, what+"."+key.Value) {
			ok = false
			continue
		}
		out.SetMapIndex(reflect.ValueOf(key.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(out)
	return ok
}

func (d *decoder) boolean(n *yaml.Node, v reflect.Value, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		d.errorf(n, "%sexpected true or false, got %s", prefix(what), describe(n))
		return false
	}
	v.SetBool(b)
	return true
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, what string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.errorf(n, "%sexpected an integer, got %s", prefix(what), describe(n))
		return false
	}
	nv := reflect.New(v.Type())
	if err := n.Decode(nv.Interface()); err != nil {
		d.errorf(n, "%sinteger %s out of range", prefix(what), n.Value)
		return false
	}
	v.Set(nv.Elem())
	return true
}

func (d *decoder) ref(n *yaml.Node, v reflect.Value, what string) bool {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%sexpected an image reference, got %s", prefix(what), describe(n))
		return false
	}
	v.Set(reflect.ValueOf(Ref{Ref: n.Value, Pos: d.pos(n)}))
	return true
}

func (d *decoder) id(n *yaml.Node, v reflect.Value, what string) bool {
	id, err := idFromScalar(n)
	if err != nil {
		d.errorf(n, "%s%v", prefix(what), err)
		return false
	}
	v.Set(reflect.ValueOf(id))
	return true
}

// idFromScalar reads a uid or gid: a number, or a name. A name made only of
// digits is taken as the number it spells.
func idFromScalar(n *yaml.Node) (ID, error) {
	if n.Kind != yaml.ScalarNode {
		return ID{}, fmt.Errorf("expected a number or a name, got %s", describe(n))
	}
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil || i < 0 || i > math.MaxUint32 {
			return ID{}, fmt.Errorf("id %s out of range", n.Value)
		}
		u := uint32(i)
		return ID{Num: &u}, nil
	case "!!str":
		return idFromString(n.Value)
	}
	return ID{}, fmt.Errorf("expected a number or a name, got %s", describe(n))
}

func idFromString(s string) (ID, error) {
	if s == "" {
		return ID{}, errors.New("empty id")
	}
	if u, err := strconv.ParseUint(s, 10, 32); err == nil {
		u32 := uint32(u)
		return ID{Num: &u32}, nil
	}
	if strings.TrimLeft(s, "0123456789") == "" {
		return ID{}, fmt.Errorf("id %s out of range", s)
	}
	return ID{Name: s}, nil
}

// viaJSON decodes an OCI runtime type: node -> any -> JSON -> the type, with
// unknown fields rejected.
func (d *decoder) viaJSON(n *yaml.Node, v reflect.Value, what string) bool {
	var x any
	d.budget -= len(n.Content)
	if err := n.Decode(&x); err != nil {
		d.errorf(n, "%s%s", prefix(what), strings.TrimPrefix(err.Error(), "yaml: "))
		return false
	}
	data, err := json.Marshal(x)
	if err != nil {
		d.errorf(n, "%scannot convert to JSON: keys must be strings", prefix(what))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Addr().Interface()); err != nil {
		d.jsonError(n, err, what)
		return false
	}
	return true
}

// jsonError reports a JSON decoding error at the node it is about, when it
// can be found.
func (d *decoder) jsonError(n *yaml.Node, err error, what string) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		at := findPath(n, te.Field)
		field := te.Field
		if field == "" {
			field = what
		} else if what != "" {
			field = what + "." + field
		}
		d.errorf(at, "%sexpected %s, got %s", prefix(field), jsonKind(te.Type), describe(at))
		return
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if k := findKey(n, strings.Trim(name, `"`), 0); k != nil {
			d.errorf(k, "%sunknown field %s", prefix(what), name)
			return
		}
	}
	d.errorf(n, "%s%s", prefix(what), msg)
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an integer"
}

// findPath follows a dotted JSON field path through mappings; it returns the
// deepest node reached.
func findPath(n *yaml.Node, path string) *yaml.Node {
	if path == "" {
		return n
	}
	for _, key := range strings.Split(path, ".") {
		n = resolve(n)
		if n.Kind == yaml.SequenceNode {
			// json paths skip list indexes; search the items.
			found := false
			for _, item := range n.Content {
				if v := valueOf(resolve(item), key); v != nil {
					n, found = v, true
					break
				}
			}
			if !found {
				return n
			}
			continue
		}
		v := valueOf(n, key)
		if v == nil {
			return n
		}
		n = v
	}
	return resolve(n)
}

// valueOf returns the value of key in a mapping node, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// findKey finds a mapping key named key anywhere under n.
func findKey(n *yaml.Node, key string, depth int) *yaml.Node {
	if n == nil || depth > maxAliasDepth {
		return nil
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i]
			}
		}
	}
	for _, c := range n.Content {
		if k := findKey(c, key, depth+1); k != nil { // aliases not followed
			return k
		}
	}
	return nil
}
