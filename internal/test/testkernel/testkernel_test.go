package testkernel

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

// TestPinned: the kernel is the one images/kernel/image.yml pins, unpacked
// under a cache directory named by package and version.
func TestPinned(t *testing.T) {
	if os.Getenv(EnvKernel) != "" {
		t.Skipf("$%s names another kernel", EnvKernel)
	}
	p, err := readPin()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.SHA256) != 64 || !strings.HasPrefix(p.Package, "linux-image-") {
		t.Fatalf("pin %+v", p)
	}
	if want := p.Package + "_" + p.Version; !strings.Contains(Path(t), string(filepath.Separator)+want+string(filepath.Separator)) {
		t.Fatalf("kernel %s is not from the pinned %s", Path(t), want)
	}
}
