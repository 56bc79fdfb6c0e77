package rootfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/internal/memtest"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// assembleFiles assembles a spec of files entries only and returns the
// error and the bytes allocated.
func assembleFiles(t *testing.T, yaml string, opts ...Option) (error, uint64) {
	t.Helper()
	spec, err := config.Parse("host.yml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var aerr error
	alloc := memtest.Allocated(func() {
		_, aerr = Assemble(context.Background(), spec, nil, opts...)
	})
	return aerr, alloc
}

func TestFilesSourceSpecialFileRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"/dev/zero", fifo} {
		err, alloc := assembleFiles(t, "files:\n  - path: etc/zero\n    source: "+src+"\n")
		if !errors.Is(err, regfile.ErrNotRegular) || !strings.Contains(err.Error(), `host.yml:2:5: files "etc/zero": reading source: `+src+": not a regular file") {
			t.Errorf("source %s: error %v", src, err)
		}
		if alloc > memtest.MiB {
			t.Errorf("source %s: allocated %d bytes", src, alloc)
		}
	}
}

func TestFilesSourceSizeLimit(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<30); err != nil { // sparse
		t.Fatal(err)
	}
	err, alloc := assembleFiles(t, "files:\n  - path: etc/big\n    source: "+big+"\n")
	var tl *regfile.TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "larger than the limit of 128 MiB") {
		t.Errorf("1 GiB source: error %v", err)
	}
	if alloc > memtest.MiB {
		t.Errorf("1 GiB source: allocated %d bytes", alloc)
	}
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := "files:\n  - path: etc/small\n    source: " + small + "\n"
	if err, _ := assembleFiles(t, spec, WithLimits(config.Sizes{File: 2047})); !errors.As(err, &tl) || tl.Limit != 2047 {
		t.Errorf("2 KiB source over a 2047-byte limit: %v", err)
	}
	if err, _ := assembleFiles(t, spec, WithLimits(config.Sizes{File: 2048})); err != nil {
		t.Errorf("2 KiB source at the limit: %v", err)
	}
}
