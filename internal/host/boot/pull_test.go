package boot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/host/apply"
)

// TestRunningSeedsUKI: a host booted from a unified kernel image offers
// that image (counter in its name or not) as a chunk source for a pull,
// and no other version's.
func TestRunningSeedsUKI(t *testing.T) {
	esp := t.TempDir()
	dir := filepath.Join(esp, "EFI", "Linux")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int{"bulkhead-1.0.0+2-1.efi": 7, "bulkhead-1.0.0.1.efi": 3, "bulkhead-1.0.1.efi": 5} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seeds, done := runningSeeds(apply.Host{Version: "1.0.0"}, esp)
	defer done()
	var got []string
	for _, s := range seeds {
		got = append(got, s.Name)
		if s.Name == "running unified kernel image" && s.Size != 7 {
			t.Errorf("the UKI seed is %d bytes, want 7", s.Size)
		}
	}
	if len(got) != 1 || got[0] != "running unified kernel image" {
		t.Errorf("seeds %q, want the running version's UKI only", got)
	}
}
