package boot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCountBoot(t *testing.T) {
	dir := t.TempDir()
	for want := 1; want <= 3; want++ {
		n, err := countBoot(dir)
		if err != nil || n != want {
			t.Fatalf("boot %d: countBoot = %d, %v", want, n, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, BootCountFile))
	if err != nil || string(b) != "3\n" {
		t.Fatalf("counter file %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, BootCountFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := countBoot(dir); err == nil {
		t.Fatal("a garbled counter was accepted")
	}
}
