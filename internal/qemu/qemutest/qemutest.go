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
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/bulkhead-dev/bulkhead/internal/init/kmod"
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
	dir := tb.TempDir()
	init := buildGuest(tb, dir)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(init), 0o755),
		cpio.Directory("modules", 0o755),
	}
	if len(modules) > 0 {
		paths, err := moduleOrder(modulesDir, modules)
		if err != nil {
			tb.Fatalf("qemutest: %v", err)
		}
		for i, p := range paths {
			b, err := os.ReadFile(p)
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
	bin := filepath.Join(dir, "init")
	cmd := exec.Command(goTool(), "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("qemutest: building guest: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatal(err)
	}
	return b
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

// moduleOrder returns the .ko files for names and everything they depend on
// (read from each module's .modinfo "depends="), dependencies first.
func moduleOrder(modulesDir string, names []string) ([]string, error) {
	index, err := indexModules(modulesDir)
	if err != nil {
		return nil, err
	}
	var order []string
	done := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		name = strings.ReplaceAll(name, "-", "_")
		if done[name] {
			return nil
		}
		done[name] = true
		path, ok := index[name]
		if !ok {
			return fmt.Errorf("module %s not found in %s", name, modulesDir)
		}
		deps, err := moduleDepends(path)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		order = append(order, path)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func indexModules(dir string) (map[string]string, error) {
	index := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, ok := strings.CutSuffix(d.Name(), ".ko"); ok && !d.IsDir() {
			index[strings.ReplaceAll(name, "-", "_")] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("indexing modules: %w", err)
	}
	return index, nil
}

func moduleDepends(path string) ([]string, error) {
	info, err := kmod.ModInfo(path)
	if err != nil || info["depends"] == "" {
		return nil, err
	}
	return strings.Split(info["depends"], ","), nil
}
