package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func writeSpec(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	good := writeSpec(t, "good.yml", "kernel:\n  image: linuxkit/kernel:6.6\ninit: [linuxkit/init:v1]\nservices:\n  - name: getty\n    image: linuxkit/getty:v1\n    binds: [\"data:/data\"]\n")
	vols := writeSpec(t, "vols.yml", "volumes:\n  - name: data\n")
	bad := writeSpec(t, "bad.yml", "sevices: []\nservices:\n  - name: getty\n    image: linuxkit/getty:v2\n")

	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"validate", good, vols}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if want := good + ": ok\n" + vols + ": ok\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"validate", good, vols, bad}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := bad + `:1:1: unknown field "sevices" (did you mean "services"?)` + "\n" +
		bad + `:3:5: duplicate container name "getty" (first defined at ` + good + ":5:5)\n"
	if stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("stderr:\n%s\nwant:\n%s\nstdout: %q", stderr.String(), want, stdout.String())
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"validate", "--json", bad}, &stdout, &stderr); code != 1 {
		t.Fatalf("--json exit %d, want 1", code)
	}
	var problems []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &problems); err != nil {
		t.Fatalf("--json output %q: %v", stdout.String(), err)
	}
	if len(problems) != 1 || problems[0]["file"] != bad || problems[0]["line"] != 1.0 ||
		problems[0]["col"] != 1.0 || !strings.HasPrefix(problems[0]["message"].(string), "unknown field") {
		t.Errorf("problems = %v", problems)
	}
}

func TestValidateUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"validate"}, &stdout, &stderr); code != 2 {
		t.Errorf("no files: exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"validate", filepath.Join(t.TempDir(), "nope.yml")}, &stdout, &stderr); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}

func TestValidateSpecLimits(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.yml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := writeSpec(t, "big.yml", "# "+strings.Repeat("x", 4000)+"\nkernel: {image: k}\ninit: [i]\n")
	esc := writeSpec(t, "esc.yml", "files:\n  - path: ../x\n    contents: x\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"/dev/zero"}, "/dev/zero:1:1: spec is not a regular file (a character device)"},
		{[]string{fifo}, fifo + ":1:1: spec is not a regular file (a FIFO)"},
		{[]string{"--max-spec-size", "2K", big}, big + ":1:1: spec file is larger than the limit of 2 KiB"},
		{[]string{esc}, esc + `:2:11: path "../x" escapes the root: ".." is not allowed`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"validate"}, tc.args...), &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("validate %v: exit %d, stderr %q, want %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"validate", "--max-spec-size", "8K", big}, &stdout, &stderr); code != 0 {
		t.Errorf("--max-spec-size 8K: exit %d, stderr %s", code, stderr.String())
	}
}

// TestValidateWarnings: a relative mount destination passes with a warning,
// on stderr and as severity "warning" in --json, and exit 0.
func TestValidateWarnings(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "w.yml")
	body := "kernel:\n  image: linuxkit/kernel:6.6\ninit:\n  - linuxkit/init:v1\nservices:\n  - name: a\n    image: alpine\n" +
		"    mounts:\n      - type: tmpfs\n        destination: data\n"
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"validate", spec}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if want := spec + `:9:9: warning: mount destination "data" is not absolute`; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr %q, want %q...", stderr.String(), want)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"validate", "--json", spec}, &stdout, &stderr); code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	var problems []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &problems); err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0]["severity"] != "warning" || problems[0]["line"] != 9.0 {
		t.Errorf("problems = %v", problems)
	}
}

// TestValidateHost: what the spec's text allows but the host cannot boot
// or build with is an error at validate, not at boot.
func TestValidateHost(t *testing.T) {
	noInit := writeSpec(t, "noinit.yml", "kernel:\n  image: bulkhead/kernel:6.1-cloud\n")
	noSource := writeSpec(t, "nosrc.yml", "kernel:\n  image: k\ninit: [i]\nfiles:\n  - path: etc/x\n    source: nothere.txt\n")
	for _, tc := range []struct{ spec, want string }{
		{noInit, noInit + ":2:10: no init: images: a host needs an init"},
		{noSource, noSource + `:5:5: files "etc/x": source "nothere.txt" does not exist`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"validate", tc.spec}, &stdout, &stderr); code != 1 || !strings.HasPrefix(stderr.String(), tc.want) {
			t.Errorf("validate %s: exit %d, stderr %q, want prefix %q", tc.spec, code, stderr.String(), tc.want)
		}
		// build refuses it too, before it resolves any image
		stdout.Reset()
		stderr.Reset()
		if code := run(context.Background(), []string{"build", "--store", t.TempDir(), "-o", t.TempDir(), tc.spec}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), strings.TrimPrefix(tc.want, tc.spec)) {
			t.Errorf("build %s: exit %d, stderr %q, want it to contain %q", tc.spec, code, stderr.String(), strings.TrimPrefix(tc.want, tc.spec))
		}
	}
}

// TestValidateChecksStoredImages: once the store holds the images (a
// build put them there), validate reports a bind target a read-only
// image lacks, at the container's entry, as build does; without a store,
// or with a directory that is not one, it says the images were not
// checked, and still accepts the spec.
func TestValidateChecksStoredImages(t *testing.T) {
	spec := fixture(t)
	store := t.TempDir()
	if _, se, code := buildOnce(t, store, spec); code != 0 {
		t.Fatalf("build: exit %d: %s", code, se)
	}
	data, _ := os.ReadFile(spec)
	os.WriteFile(spec, bytes.Replace(data, []byte("    readonly: true\n"), []byte("    readonly: true\n    binds: [\"/var/lib/web:/etc/nginx\"]\n"), 1), 0o644)

	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"validate", "--store", filepath.Join(t.TempDir(), "none"), spec}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "not in the store") || stdout.String() != spec+": ok\n" {
		t.Fatalf("no store: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	// A directory that is not a store is not made one.
	notStore := t.TempDir()
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"validate", "--store", notStore, spec}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "not in the store") || stdout.String() != spec+": ok\n" {
		t.Fatalf("a directory that is not a store: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if left, _ := os.ReadDir(notStore); len(left) != 0 {
		t.Fatalf("validate wrote %d entries into a directory that is not a store", len(left))
	}
	stdout.Reset()
	stderr.Reset()
	code := run(context.Background(), []string{"validate", "--store", store, spec}, &stdout, &stderr)
	if want := spec + `:7:5: services "web": mount target /etc/nginx is not in image `; code != 1 || !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q, want it to start %q", code, stderr.String(), want)
	}
}
