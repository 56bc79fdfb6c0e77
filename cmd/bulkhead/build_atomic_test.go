package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
)

func buildInto(ctx context.Context, t *testing.T, out, spec string, args ...string) (string, int) {
	t.Helper()
	var so, se bytes.Buffer
	args = append(append([]string{"build", "--store", t.TempDir(), "-o", out}, args...), spec)
	code := run(ctx, args, &so, &se)
	return se.String(), code
}

// A build whose second format fails leaves the output directory as it was:
// the tar written first is not there, the earlier build's files are intact.
func TestBuildFailedFormatLeavesOutputAsItWas(t *testing.T) {
	spec := fixture(t)
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Without a kernel, kernel+initrd fails after the tar is written.
	_, rest, _ := strings.Cut(string(data), "init:\n")
	if err := os.WriteFile(spec, []byte("init:\n"+rest), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "host.tar"), []byte("earlier build"), 0o644); err != nil {
		t.Fatal(err)
	}
	se, code := buildInto(context.Background(), t, out, spec, "--name", "host", "--format", "tar,kernel+initrd")
	if code != 1 || !strings.Contains(se, "writing kernel+initrd: the spec names no kernel image") {
		t.Fatalf("exit %d, stderr %s", code, se)
	}
	if got := testfile.Names(t, out); len(got) != 1 || got[0] != "host.tar" {
		t.Fatalf("output directory holds %v after a failed build", got)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "host.tar")); string(b) != "earlier build" {
		t.Errorf("host.tar was replaced by a failed build")
	}
}

func TestBuildCanceledLeavesNothing(t *testing.T) {
	spec := fixture(t)
	out := t.TempDir()
	// Cancel once the tar is written, as SIGINT would mid-build.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := func(format string, args ...any) {
		if fmt.Sprintf(format, args...) == "writing kernel+initrd" {
			cancel()
		}
	}
	f := buildFlags{out: out, name: "host", formats: "tar,kernel+initrd", arch: "amd64", store: t.TempDir(), compression: "zstd"}
	if _, err := buildHost(ctx, []string{spec}, f, 0, io.Discard, progress); err == nil {
		t.Fatal("a canceled build succeeded")
	}
	if got := testfile.Names(t, out); len(got) != 0 {
		t.Fatalf("output directory holds %v after a canceled build", got)
	}
}

func TestBuildRemovesStaleStage(t *testing.T) {
	spec := fixture(t)
	out := t.TempDir()
	stale := filepath.Join(out, output.StagePrefix+"killed")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, ".host.tar.tmp-1"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if se, code := buildInto(context.Background(), t, out, spec, "--name", "host", "--format", "tar"); code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	for _, n := range testfile.Names(t, out) {
		if strings.HasPrefix(n, ".") {
			t.Errorf("%s left in the output directory", n)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "host.tar")); err != nil {
		t.Error(err)
	}
}

func TestBuildNameIsAFileName(t *testing.T) {
	spec := fixture(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	for _, name := range []string{"../escaped", "a/b", "..", "host\nx", "bad\x00", ".hidden"} {
		se, code := buildInto(context.Background(), t, out, spec, "--name", name, "--format", "tar")
		if code != 2 || !strings.Contains(se, "--name: ") {
			t.Errorf("--name %q: exit %d, stderr %s", name, code, se)
		}
	}
	if got := testfile.Names(t, parent); len(got) != 0 {
		t.Errorf("refused builds wrote %v", got)
	}
}

// build reads its specs the way validate does: /dev/zero and a FIFO are
// refused at once, and nothing is written.
func TestBuildRefusesSpecialSpecFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "host.yml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"/dev/zero", fifo} {
		out := t.TempDir()
		se, code := buildInto(context.Background(), t, out, spec, "--name", "host")
		if code != 1 || !strings.Contains(se, spec+":1:1: spec is not a regular file") {
			t.Errorf("build %s: exit %d, stderr %s", spec, code, se)
		}
		if got := testfile.Names(t, out); len(got) != 0 {
			t.Errorf("build %s wrote %v", spec, got)
		}
	}
}
