package sysctl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestApplyWritesAndReportsMissing(t *testing.T) {
	dir := t.TempDir()
	for _, s := range Hardening[:3] {
		p := Path(dir, s.Key)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("0\n"), 0o644)
	}
	// Every other parameter is "not in this kernel": its directory is missing.
	errs := Apply(dir, Hardening)
	if len(errs) != len(Hardening)-3 {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(Hardening)-3, errs)
	}
	for _, err := range errs {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v does not wrap ErrNotExist", err)
		}
	}
	got, _ := os.ReadFile(filepath.Join(dir, "kernel/kptr_restrict"))
	if string(got) != "2\n" {
		t.Fatalf("kptr_restrict = %q", got)
	}
}

func TestPath(t *testing.T) {
	if p := Path("/proc/sys", "net.core.bpf_jit_harden"); p != "/proc/sys/net/core/bpf_jit_harden" {
		t.Fatal(p)
	}
}
