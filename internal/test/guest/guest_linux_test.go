package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParam(t *testing.T) {
	const cmdline = "console=ttyS0 quiet bulkhead.phase=2 bulkhead.phase2=x bulkhead.luks.pass=00ff bulkhead.empty=\n"
	for name, want := range map[string]string{
		"bulkhead.phase":     "2",
		"bulkhead.luks.pass": "00ff",
		"bulkhead.empty":     "",
		"quiet":              "", // a flag, not name=value
		"bulkhead":           "",
		"phase":              "",
	} {
		if got := param(cmdline, name); got != want {
			t.Errorf("param(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestWaitFor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vda")
	go func() {
		time.Sleep(200 * time.Millisecond)
		os.WriteFile(path, nil, 0o600)
	}()
	if err := WaitFor(path, 10*time.Second); err != nil {
		t.Fatalf("WaitFor a file made after 200ms: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "vdb")
	err := WaitFor(missing, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), missing+" did not appear") {
		t.Fatalf("WaitFor a file never made: %v", err)
	}
}
