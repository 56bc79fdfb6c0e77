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
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
	"github.com/bulkhead-dev/bulkhead/internal/test/memtest"
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

func TestFilesFromOutsideTheSpecDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "spec")
	for p, data := range map[string]string{"spec/in.txt": "in", "out.txt": "out"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../out.txt", filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "host.yml")
	yaml := "files:\n" +
		"  - {path: a, source: in.txt}\n" +
		"  - {path: b, source: ../out.txt}\n" +
		"  - {path: c, source: link.txt}\n" +
		"  - {path: d, source: " + filepath.Join(dir, "in.txt") + "}\n"
	spec, err := config.Parse(specPath, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	host, err := Assemble(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := filepath.EvalSymlinks(filepath.Join(root, "out.txt"))
	want := []OutsideFile{{"b", out, specPath + ":3:5"}, {"c", out, specPath + ":4:5"}}
	if len(host.Outside) != 2 || host.Outside[0] != want[0] || host.Outside[1] != want[1] {
		t.Errorf("Outside = %+v\nwant %+v", host.Outside, want)
	}
	_, err = Assemble(context.Background(), spec, nil, WithRefuseOutside(true))
	if err == nil || !strings.Contains(err.Error(), specPath+`:3:5: files "b": source `+out+" is outside the spec's directory") {
		t.Errorf("refusing: %v", err)
	}
}

// Every file a spec names is read the same way: update keys and the API's
// CA too, so /dev/zero or a FIFO is refused at once.
func TestSpecNamedKeysAndCARefuseSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, yaml := range []string{
		"update:\n  keys: [/dev/zero]\n",
		"update:\n  keys: [" + fifo + "]\n",
		"api:\n  ca: /dev/zero\n",
		"api:\n  ca: " + fifo + "\n",
	} {
		err, alloc := assembleFiles(t, yaml)
		if !errors.Is(err, regfile.ErrNotRegular) {
			t.Errorf("%q: %v", yaml, err)
		}
		if alloc > memtest.MiB {
			t.Errorf("%q: allocated %d bytes", yaml, alloc)
		}
	}
}
