package measured

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPCR(t *testing.T) {
	dir := t.TempDir() + "/"
	want := strings.Repeat("AB", 32)
	if err := os.WriteFile(filepath.Join(dir, "11"), []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := PCR(dir, 11); err != nil || got != strings.ToLower(want) {
		t.Fatalf("PCR = %q, %v", got, err)
	}
	if _, err := PCR(dir, 7); !errors.Is(err, ErrNoTPM) {
		t.Fatalf("missing PCR: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "12"), []byte("zz"), 0o644)
	if _, err := PCR(dir, 12); err == nil {
		t.Fatal("garbage accepted")
	}
}
