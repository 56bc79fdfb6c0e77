// Package qemutest builds tiny guests for boot tests: a static Go PID 1
// (testdata/guest) packed with kernel modules into a newc initrd. The guest
// prints "hello from guest" and then does what its kernel command line asks
// (see testdata/guest/main.go): wait for the power button, power off, reboot,
// panic, or serve HTTP on a port.
//
// Its functions take a testing.TB and fail the test when something is missing.
package qemutest

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/bulkhead-dev/bulkhead/internal/modindex"
)

//go:embed testdata/guest/main.go
var guestSource []byte

// Module sets for Initrd.
var (
	// NetModules drive qemu's virtio-net-pci NIC.
	NetModules = []string{"virtio_pci", "virtio_net"}
	// PowerButtonModules turn the ACPI power button into an input event.
	PowerButtonModules = []string{"button", "evdev"}
	// DiskModules drive qemu's virtio disk (/dev/vda).
	DiskModules = []string{"virtio_pci", "virtio_blk"}
	// PanicModules report a kernel panic to qemu's pvpanic device.
	PanicModules = []string{"pvpanic_mmio"}
)

// Cmdline is the base kernel command line for a test guest.
const Cmdline = "console=ttyS0 quiet"

// Initrd writes an initrd holding the guest as /init and the named modules of
// modulesDir (with their dependencies, loaded first) under /modules, and
// returns its path in a temporary directory of tb.
func Initrd(tb testing.TB, modulesDir string, modules ...string) string {
	tb.Helper()
	return InitrdWith(tb, buildGuest(tb, tb.TempDir()), modulesDir, modules...)
}

// BuildMain compiles the main package in pkg (a directory of the calling
// test's package, such as ./testdata/guest) statically for linux/amd64
// and returns the binary: a guest of a test's own for InitrdWith.
func BuildMain(tb testing.TB, pkg string) []byte {
	tb.Helper()
	return goBuild(tb, "", pkg)
}

// goBuild builds the main package pkg (in dir, "" for the test's own)
// statically for linux/amd64, with extra environment, and returns the
// binary.
func goBuild(tb testing.TB, dir, pkg string, env ...string) []byte {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "init")
	cmd := exec.Command(goTool(), "build", "-trimpath", "-o", bin, pkg)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("qemutest: building %s: %v\n%s", pkg, err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// InitrdWith is Initrd with init as /init.
func InitrdWith(tb testing.TB, init []byte, modulesDir string, modules ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(init), 0o755),
		cpio.Directory("modules", 0o755),
	}
	if len(modules) > 0 {
		for i, p := range ModuleFiles(tb, modulesDir, modules...) {
			b, err := os.ReadFile(filepath.Join(modulesDir, p))
			if err != nil {
				tb.Fatalf("qemutest: %v", err)
			}
			name := fmt.Sprintf("modules/%03d-%s", i, filepath.Base(p))
			recs = append(recs, cpio.StaticFile(name, string(b), 0o644))
		}
	}
	out := filepath.Join(dir, "initrd.cpio")
	if err := writeCpio(out, recs); err != nil {
		tb.Fatalf("qemutest: writing initrd: %v", err)
	}
	return out
}

var guestOnce struct {
	sync.Mutex
	bin []byte
}

// buildGuest compiles the embedded guest statically for linux/amd64 in its
// own throwaway module (once per test binary) and returns the binary.
func buildGuest(tb testing.TB, dir string) []byte {
	tb.Helper()
	guestOnce.Lock()
	defer guestOnce.Unlock()
	if guestOnce.bin == nil {
		guestOnce.bin = compileGuest(tb, dir)
	}
	return guestOnce.bin
}

func compileGuest(tb testing.TB, dir string) []byte {
	tb.Helper()
	src := filepath.Join(dir, "guest-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		tb.Fatal(err)
	}
	files := map[string][]byte{"main.go": guestSource, "go.mod": []byte("module guest\n\ngo 1.22\n")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return goBuild(tb, src, ".", "GOWORK=off", "GOFLAGS=")
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func writeCpio(path string, recs []cpio.Record) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := cpio.Newc.Writer(f)
	err = cpio.WriteRecords(w, recs)
	if err == nil {
		err = cpio.WriteTrailer(w)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ModuleFiles returns the module files (relative to dir) for names and
// everything they need, dependencies first, from the kernel's module index.
// A name the kernel has neither as a module nor built in (modules.builtin)
// fails the test; a built-in one needs no file.
func ModuleFiles(tb testing.TB, dir string, names ...string) []string {
	tb.Helper()
	ix, err := modindex.Read(dir)
	if err != nil {
		tb.Fatalf("qemutest: %v", err)
	}
	order, missing, problems := ix.Closure(names)
	if len(problems) > 0 {
		tb.Fatalf("qemutest: %v", problems[0])
	}
	if len(missing) > 0 {
		builtin, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			tb.Fatalf("qemutest: %v", err)
		}
		in := map[string]bool{}
		for _, l := range strings.Fields(string(builtin)) {
			in[modindex.Name(l)] = true
		}
		for _, m := range missing {
			if !in[m] {
				tb.Fatalf("qemutest: module %s not found in %s", m, dir)
			}
		}
	}
	return order
}
