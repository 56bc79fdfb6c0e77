package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/docs"
)

// TestFlagsAfterArguments: every verb takes its flags before or after its
// positional arguments; "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	spec := writeSpec(t, "h.yml", "kernel:\n  image: k\ninit: [i]\n")
	for _, args := range [][]string{{"validate", spec, "--json"}, {"validate", "--json", spec}} {
		out, errOut, code := runCLI(args...)
		if code != 0 || strings.TrimSpace(out) != "[]" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if _, errOut, code := runCLI("validate", "--", "--json"); code != 1 || !strings.Contains(errOut, "--json") {
		t.Errorf("validate -- --json: exit %d, stderr %q: want --json read as a file", code, errOut)
	}
}

// TestBadFlagIsOneLine: a bad flag value is the error and a hint, once.
func TestBadFlagIsOneLine(t *testing.T) {
	spec := writeSpec(t, "h.yml", "kernel:\n  image: k\ninit: [i]\n")
	for _, args := range [][]string{
		{"validate", "--max-spec-size", "x", spec},
		{"build", spec, "--nope"},
		{"image", "ls", "--store"},
	} {
		out, errOut, code := runCLI(args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--help)") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q: want exit 2 and one line", args, code, out, errOut)
		}
	}
}

// TestHelpConventions: --version, help CMD [SUB], and --help on command
// groups answer on stdout with exit 0.
func TestHelpConventions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--version"}, "bulkhead "},
		{[]string{"help"}, "Commands:"},
		{[]string{"help", "build"}, "Usage: bulkhead build"},
		{[]string{"build", "--help"}, "Usage: bulkhead build"},
		{[]string{"help", "image", "ls"}, "Usage: bulkhead image ls"},
		{[]string{"image", "--help"}, "  ls "},
		{[]string{"image", "help"}, "  build "},
		{[]string{"kernel", "--help"}, "  check "},
		{[]string{"kernel", "check", "-h"}, "Usage: bulkhead kernel check"},
		{[]string{"ca", "--help"}, "  issue "},
	} {
		out, errOut, code := runCLI(tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, stdout %q (stderr %q), want %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if _, errOut, code := runCLI("biuld"); code != 2 || !strings.Contains(errOut, `did you mean "build"?`) {
		t.Errorf("biuld: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := runCLI("image", "lss"); code != 2 || !strings.Contains(errOut, `did you mean "ls"?`) {
		t.Errorf("image lss: exit %d, stderr %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI("version")
	for _, want := range []string{"bulkhead ", "\ncommit ", "\ngo       " + runtime.Version(), "\nplatform " + runtime.GOOS + "/" + runtime.GOARCH} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("version: exit %d, %q lacks %q", code, out, want)
		}
	}
	out, _, code = runCLI("version", "--json")
	var info binaryInfo
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil || info.Go != runtime.Version() || info.Version == "" || info.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version --json: exit %d, %q, %v", code, out, err)
	}
}

// TestInit: init writes a spec that validates, with the schema beside it
// for editors, and never replaces a file unasked.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "edge.yml")
	out, errOut, code := runCLI("init", spec, "--example", "services")
	if code != 0 || !strings.Contains(out, "wrote "+spec+" (from the services example)") {
		t.Fatalf("init: exit %d, %q %q", code, out, errOut)
	}
	data, err := os.ReadFile(spec)
	if err != nil || !strings.HasPrefix(string(data), "# yaml-language-server: $schema=bulkhead.schema.json\n") {
		t.Fatalf("spec: %v %q", err, data)
	}
	schema, err := os.ReadFile(filepath.Join(dir, "bulkhead.schema.json"))
	if err != nil || !bytes.Equal(schema, docs.Schema) {
		t.Errorf("schema beside the spec: %v", err)
	}
	if out, errOut, code := runCLI("validate", spec); code != 0 {
		t.Errorf("validate of the spec init wrote: exit %d, %s%s", code, out, errOut)
	}
	if _, errOut, code := runCLI("init", spec); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("init over a file: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI("init", "--example", "nope", filepath.Join(dir, "x.yml")); code != 2 || !strings.Contains(errOut, "want hardened, minimal, services") {
		t.Errorf("init --example nope: exit %d, %q", code, errOut)
	}
	if out, _, code := runCLI("schema"); code != 0 || out != string(docs.Schema) {
		t.Errorf("schema: exit %d", code)
	}
}
