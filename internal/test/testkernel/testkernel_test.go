package testkernel

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestPath checks that the kernel is a bzImage ("HdrS" magic at 0x202) and
// that its modules directory carries a modules.order.
func TestPath(t *testing.T) {
	p := Path(t)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 0x206 || !bytes.Equal(b[0x202:0x206], []byte("HdrS")) {
		t.Fatalf("%s is not a bzImage", p)
	}
	if os.Getenv(EnvKernel) != "" {
		return
	}
	if _, err := os.Stat(filepath.Join(ModulesDir(t), "modules.order")); err != nil {
		t.Fatal(err)
	}
}
