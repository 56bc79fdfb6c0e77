package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/healthcheck"
)

// The spec reference (docs/spec.md) and the JSON Schema for editors
// (docs/spec.schema.json) are generated from the types the decoder reads
// and the comments on them. TestSpecReference fails when the committed
// files differ from what the types say now; `make spec-docs` (this test
// with -update) rewrites them.

var update = flag.Bool("update", false, "rewrite docs/spec.md and docs/spec.schema.json from the types")

const (
	referencePath = "../../docs/spec.md"
	schemaPath    = "../../docs/spec.schema.json"
	schemaID      = "https://bulkhead.dev/schema/spec.schema.json"
)

func TestSpecReference(t *testing.T) {
	docs := typeDocs(t)
	g := newGenerator(docs)
	root := g.schemaOf(reflect.TypeFor[Spec]())
	schema := map[string]any{
		"$schema":     "http://json-schema.org/draft-07/schema#",
		"$id":         schemaID,
		"title":       "bulkhead host spec",
		"description": "A bulkhead host spec: LinuxKit's format plus bulkhead's own sections. Generated from builder/config; do not edit.",
		"$ref":        root["$ref"],
		"definitions": g.defs,
	}
	js, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	md := g.reference()
	for _, f := range []struct {
		path string
		data []byte
	}{{schemaPath, js}, {referencePath, md}} {
		if *update {
			if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(f.path)
		if err != nil || !bytes.Equal(have, f.data) {
			t.Errorf("%s is not what the types in builder/config say (%v): run make spec-docs", filepath.Clean(f.path), err)
		}
	}
}

// TestSchemaCoversDecoder: every key the decoder accepts in the examples
// is in the schema, so the schema cannot lag the decoder.
func TestSchemaCoversDecoder(t *testing.T) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Skip("no schema yet: run make spec-docs") // TestSpecReference fails then
	}
	var s struct {
		Defs map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	for _, section := range sections() {
		if _, ok := s.Defs["Spec"].Properties[section.key]; !ok {
			t.Errorf("section %q missing from the schema", section.key)
		}
	}
}

// typeDocs reads the doc comments of the structs the spec is made of:
// "pkgpath.Type" and "pkgpath.Type.Field" to their text.
func typeDocs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	pkgs := []string{reflect.TypeFor[Spec]().PkgPath(), reflect.TypeFor[healthcheck.Check]().PkgPath(), specsPkg}
	for _, path := range pkgs {
		bp, err := build.Default.Import(path, ".", build.FindOnly)
		if err != nil {
			t.Fatalf("finding %s: %v", path, err)
		}
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join(bp.Dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			collectDocs(path, f, out)
		}
	}
	return out
}

func collectDocs(pkg string, f *ast.File, out map[string]string) {
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			text := ts.Doc.Text()
			if text == "" {
				text = gd.Doc.Text()
			}
			out[pkg+"."+ts.Name.Name] = text
			for _, fld := range st.Fields.List {
				c := fld.Doc.Text()
				if c == "" {
					c = fld.Comment.Text()
				}
				for _, n := range fld.Names {
					out[pkg+"."+ts.Name.Name+"."+n.Name] = c
				}
			}
		}
	}
}

// generator walks the spec's types into JSON Schema definitions and the
// reference's tables, in the order it meets them.
type generator struct {
	docs  map[string]string
	defs  map[string]any
	order []reflect.Type
	rows  map[reflect.Type][]refRow
}

type refRow struct{ key, typ, doc string }

func newGenerator(docs map[string]string) *generator {
	return &generator{docs: docs, defs: map[string]any{}, rows: map[reflect.Type][]refRow{}}
}

// defName is a type's name in definitions: its Go name, prefixed with its
// package's when it is not config's own.
func defName(t reflect.Type) string {
	switch t.PkgPath() {
	case reflect.TypeFor[Spec]().PkgPath():
		return t.Name()
	case specsPkg:
		return "oci." + t.Name()
	}
	return filepath.Base(t.PkgPath()) + "." + t.Name()
}

// schemaOf is the schema of a value of type t, and, for a struct, adds its
// definition.
func (g *generator) schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case refType:
		return map[string]any{"type": "string", "description": "an image reference: NAME[:TAG][@DIGEST], or oci:DIR[:TAG|@DIGEST]"}
	case idType:
		return map[string]any{"type": []string{"integer", "string"}, "description": "a number, a user or group name of the image, or a container name"}
	case secretUseType:
		return map[string]any{"anyOf": []any{map[string]any{"type": "string"}, g.structRef(t)}}
	}
	switch t.Kind() {
	case reflect.Struct:
		return g.structRef(t)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": g.schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schemaOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Interface:
		return map[string]any{}
	}
	panic("no schema for " + t.String())
}

func (g *generator) structRef(t reflect.Type) map[string]any {
	name := defName(t)
	if _, done := g.defs[name]; !done {
		g.defs[name] = nil // taken: recursion ends here
		g.order = append(g.order, t)
		g.defs[name] = g.structDef(t)
	}
	return map[string]any{"$ref": "#/definitions/" + name}
}

func (g *generator) structDef(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range schemaFields(t) {
		s := g.schemaOf(f.sf.Type)
		d := oneLine(g.docs[f.owner.PkgPath()+"."+f.owner.Name()+"."+f.sf.Name])
		if d != "" {
			s = withDescription(s, d)
		}
		props[f.name] = s
		if f.required {
			required = append(required, f.name)
		}
		g.rows[t] = append(g.rows[t], refRow{f.name, typeText(f.sf.Type), d})
	}
	def := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		sort.Strings(required)
		def["required"] = required
	}
	if d := oneLine(g.docs[t.PkgPath()+"."+t.Name()]); d != "" {
		def["description"] = d
	}
	return def
}

// withDescription adds a description; a $ref gets it beside (editors
// show it; validators ignore siblings of $ref in draft-07).
func withDescription(s map[string]any, d string) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	if prev, ok := out["description"].(string); ok {
		d = prev + ". " + d
	}
	out["description"] = d
	return out
}

type schemaField struct {
	name     string
	sf       reflect.StructField
	owner    reflect.Type
	required bool
}

// schemaFields are the keys the decoder accepts for t: yaml names (json
// names for the OCI runtime types it decodes through JSON), inline
// structs flattened.
func schemaFields(t reflect.Type) []schemaField {
	var out []schemaField
	tagKey := "yaml"
	if t.PkgPath() == specsPkg {
		tagKey = "json"
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Type == posType || sf.Type == reflect.TypeFor[[]Pos]() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get(tagKey), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") || sf.Anonymous && name == "" {
			out = append(out, schemaFields(sf.Type)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		// The decoder checks these fields are set; OCI types (read through
		// encoding/json) require nothing.
		req := t.PkgPath() != specsPkg && !strings.Contains(opts, "omitempty") && sf.Type.Kind() == reflect.String
		out = append(out, schemaField{name, sf, t, req})
	}
	return out
}

// typeText is a field's type as the reference shows it.
func typeText(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case refType:
		return "image reference"
	case idType:
		return "id (number or name)"
	case secretUseType:
		return "name, or [SecretUse](#secretuse)"
	}
	switch t.Kind() {
	case reflect.Struct:
		return fmt.Sprintf("[%s](#%s)", defName(t), anchor(defName(t)))
	case reflect.Slice:
		return "list of " + typeText(t.Elem())
	case reflect.Map:
		return "map of " + typeText(t.Elem())
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Interface:
		return "any"
	}
	return "integer"
}

func anchor(name string) string { return strings.ToLower(strings.ReplaceAll(name, ".", "")) }

// oneLine joins a doc comment into one line, without code examples.
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "  ") {
			continue // an indented example
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	out := strings.TrimSpace(strings.Join(lines, " "))
	return strings.ReplaceAll(out, "|", "\\|")
}

// reference renders the tables, one per type in the order met (the spec's
// sections first).
func (g *generator) reference() []byte {
	var b bytes.Buffer
	b.WriteString("# Spec reference\n\n")
	b.WriteString("Generated from the Go types in `builder/config` (`make spec-docs`); do not edit.\n")
	b.WriteString("The same source gives `docs/spec.schema.json`, a JSON Schema for editors: with\n")
	b.WriteString("yaml-language-server, start a spec with\n`# yaml-language-server: $schema=PATH/TO/spec.schema.json`\n")
	b.WriteString("(`bulkhead schema` prints it; `bulkhead init` writes a starting spec).\n\n")
	b.WriteString("Every key below is checked: an unknown key is an error with its position\n")
	b.WriteString("and the closest known key. `kernel`, `init`, `onboot`, `onshutdown`, `services`,\n")
	b.WriteString("`files` and `volumes` keep LinuxKit's meaning; the other sections are bulkhead's.\n")
	for _, t := range g.order {
		name := defName(t)
		fmt.Fprintf(&b, "\n## %s\n\n", name)
		if d := doc.Synopsis(g.docs[t.PkgPath()+"."+t.Name()]); d != "" {
			fmt.Fprintf(&b, "%s\n\n", d)
		}
		b.WriteString("| key | type | meaning |\n|---|---|---|\n")
		for _, r := range g.rows[t] {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.key, r.typ, r.doc)
		}
	}
	return b.Bytes()
}
