package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
