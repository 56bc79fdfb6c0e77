// Package testkernel gives tests a real Linux kernel to boot: Debian's cloud
// kernel at the version images/kernel/image.yml pins (package, version and
// sha256; scripts/bump-pins moves the pin), fetched once with apt-get
// download and cached under the user's cache directory, or the bzImage named
// by $BULKHEAD_TEST_KERNEL.
//
// It is test support: its functions take a testing.TB and fail the test (never
// skip it) when no kernel can be had.
package testkernel

import (
	"errors"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// EnvKernel names a bzImage to use instead of Debian's cloud kernel.
const EnvKernel = "BULKHEAD_TEST_KERNEL"

// recipe is the kernel image's recipe, relative to the module root: its
// pin is the test kernel's.
const recipe = "images/kernel/image.yml"

// Path returns the path of a bootable x86-64 kernel image (bzImage).
func Path(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(EnvKernel); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("testkernel: $%s: %v", EnvKernel, err)
		}
		return p
	}
	return tree(tb).kernel
}

// ModulesDir returns the /lib/modules/<release> directory (without depmod's
// modules.dep: read a module's dependencies from its .modinfo) that belongs to the
// kernel Path returns. It always uses Debian's package, so it fails when
// $BULKHEAD_TEST_KERNEL is set: a custom kernel brings no modules.
func ModulesDir(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(EnvKernel); p != "" {
		tb.Fatalf("testkernel: no modules for $%s=%s", EnvKernel, p)
	}
	return tree(tb).modules
}

// extracted is one unpacked kernel package in the cache.
type extracted struct {
	kernel  string // boot/vmlinuz-<release>
	modules string // lib/modules/<release>
}

var (
	once    sync.Once
	onceVal extracted
	onceErr error
)

func tree(tb testing.TB) extracted {
	tb.Helper()
	once.Do(func() { onceVal, onceErr = fetch() })
	if onceErr != nil {
		tb.Fatalf("testkernel: %v (set $%s to a bzImage to use another kernel)", onceErr, EnvKernel)
	}
	return onceVal
}

// fetch reads the pin, and downloads and unpacks the pinned package into
// the cache unless it is there already.
func fetch() (extracted, error) {
	cache, err := cacheDir()
	if err != nil {
		return extracted{}, err
	}
	p, err := readPin()
	if err != nil {
		return extracted{}, err
	}
	dir := filepath.Join(cache, strings.ReplaceAll(p.Package+"_"+p.Version, ":", "%3a"))
	if e, err := find(dir); err == nil {
		return e, nil
	}
	if err := download(p, dir); err != nil {
		return extracted{}, err
	}
	return find(dir)
}

// cacheDir returns $XDG_CACHE_HOME/bulkhead/testkernel (or the OS default
// cache directory).
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding cache directory: %w", err)
	}
	dir := filepath.Join(base, "bulkhead", "testkernel")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache directory: %w", err)
	}
	return dir, nil
}

// pin is the kernel recipe's pinned package.
type pin struct {
	Package string `yaml:"package"`
	Version string `yaml:"version"`
	SHA256  string `yaml:"sha256"`
}

// readPin reads the kernel recipe's pin, finding the module root from the
// working directory (a test runs in its package's directory).
func readPin() (pin, error) {
	dir, err := os.Getwd()
	if err != nil {
		return pin{}, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return pin{}, errors.New("no go.mod above the working directory: cannot find " + recipe)
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, recipe))
	if err != nil {
		return pin{}, fmt.Errorf("reading the kernel pin: %w", err)
	}
	var r struct {
		Kernel pin `yaml:"kernel"`
	}
	if err := yaml.Unmarshal(b, &r); err != nil {
		return pin{}, fmt.Errorf("%s: %w", recipe, err)
	}
	if p := r.Kernel; p.Package != "" && p.Version != "" && p.SHA256 != "" {
		return p, nil
	}
	return pin{}, fmt.Errorf("%s pins no kernel package, version and sha256", recipe)
}

// download fetches the pinned package with apt-get download (updating
// apt's lists once if it has none), checks its sha256, and unpacks it into
// dir, atomically: it is unpacked next to dir and renamed into place.
func download(p pin, dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return fmt.Errorf("creating download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	arg := p.Package + "=" + p.Version
	get := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "download", arg)
		cmd.Dir = tmp
		return cmd.CombinedOutput()
	}
	out, err := get()
	if err != nil {
		if uout, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %w: %s", uerr, lastLines(uout, 5))
		}
		out, err = get()
	}
	if err != nil {
		return fmt.Errorf("pinned %s is no longer served by apt: run scripts/bump-pins (apt-get download: %w: %s)", arg, err, lastLines(out, 5))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: got %d .deb files", arg, len(debs))
	}
	if sum, err := fileSHA256(debs[0]); err != nil || sum != p.SHA256 {
		return fmt.Errorf("apt-get download %s: sha256 %s, %s pins %s (%v)", arg, sum, recipe, p.SHA256, err)
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return fmt.Errorf("unpacking %s: %w: %s", filepath.Base(debs[0]), err, lastLines(out, 5))
	}
	if err := os.Rename(root, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return nil // another test process got there first
		}
		return fmt.Errorf("caching %s: %w", arg, err)
	}
	return nil
}

func fileSHA256(name string) (string, error) {
	sum, _, err := regfile.SHA256(name)
	return sum, err
}

// find locates the kernel and its modules in an unpacked package.
func find(dir string) (extracted, error) {
	kernels, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return extracted{}, fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", dir, len(kernels))
	}
	release := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	modules := filepath.Join(dir, "lib", "modules", release)
	if _, err := os.Stat(modules); err != nil {
		return extracted{}, errors.Join(fmt.Errorf("%s: no modules for %s", dir, release), err)
	}
	return extracted{kernel: kernels[0], modules: modules}, nil
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
