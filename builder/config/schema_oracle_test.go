package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"
)

// TestSchemaAcceptsWhatTheDecoderAccepts validates specs against the
// committed schema with an independent JSON Schema implementation: every
// example (ours and LinuxKit's) passes, and the usual mistakes fail as the
// decoder fails them.
func TestSchemaAcceptsWhatTheDecoderAccepts(t *testing.T) {
	schemaJSON, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(schemaJSON))
	if err != nil {
		t.Fatalf("the schema does not load: %v", err)
	}
	validate := func(data []byte) (bool, string) {
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return true, "" // what plain YAML cannot read (LinuxKit's block comments, which the decoder repairs)
		}
		r, err := schema.Validate(gojsonschema.NewGoLoader(doc))
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, e := range r.Errors() {
			msgs = append(msgs, e.String())
		}
		return r.Valid(), strings.Join(msgs, "; ")
	}
	files, _ := filepath.Glob("../../examples/*.yml")
	compat := compatFiles(t) // testdata/linuxkit, and $BULKHEAD_LINUXKIT_EXAMPLES when .ci/run sets it
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range append(files, compat...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(f, data); err != nil {
			continue // the schema need not accept what the decoder refuses
		}
		if ok, why := validate(data); !ok {
			t.Errorf("%s: the decoder accepts it, the schema does not: %s", f, why)
		}
	}
	for _, bad := range []string{
		head + "sevices: []\n",
		head + "services:\n  - name: a\n    image: b\n    capabilites: [CAP_NET_ADMIN]\n",
		"kernel:\n  image: k\n  cmdlin: x\ninit: [i]\n",
		head + "services:\n  - image: b\n",
		head + "boot:\n  tries: three\n",
	} {
		if ok, _ := validate([]byte(bad)); ok {
			t.Errorf("the schema accepts %q", bad)
		}
	}
}
