// Package testkernel gives tests a real Linux kernel to boot: Debian's cloud
// kernel (linux-image-*-cloud-amd64), fetched once with apt-get download and
// cached under the user's cache directory, or the bzImage named by
// $BULKHEAD_TEST_KERNEL.
//
// It is test support: its functions take a testing.TB and fail the test (never
// skip it) when no kernel can be had.
package testkernel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// EnvKernel names a bzImage to use instead of Debian's cloud kernel.
const EnvKernel = "BULKHEAD_TEST_KERNEL"

// metaPackage is Debian's metapackage that depends on the current cloud kernel.
const metaPackage = "linux-image-cloud-amd64"

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

// fetch resolves the cloud kernel package, and downloads and unpacks it into
// the cache unless it is there already.
func fetch() (extracted, error) {
	cache, err := cacheDir()
	if err != nil {
		return extracted{}, err
	}
	pkg, err := resolvePackage()
	if err != nil {
		return extracted{}, err
	}
	dir := filepath.Join(cache, pkg)
	if e, err := find(dir); err == nil {
		return e, nil
	}
	if err := download(pkg, dir); err != nil {
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

// resolvePackage asks apt which versioned kernel package the metapackage
// depends on, updating apt's lists once if it knows nothing yet.
func resolvePackage() (string, error) {
	pkg, err := dependsOf(metaPackage)
	if err == nil {
		return pkg, nil
	}
	if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
		return "", fmt.Errorf("apt-get update: %w: %s", uerr, lastLines(out, 5))
	}
	return dependsOf(metaPackage)
}

func dependsOf(meta string) (string, error) {
	out, err := exec.Command("apt-cache", "depends", meta).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w: %s", meta, err, lastLines(out, 5))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		dep, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Depends: ")
		if ok && strings.HasPrefix(dep, "linux-image-") {
			return dep, nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s: no linux-image dependency", meta)
}

// download fetches pkg with apt-get download and unpacks it into dir,
// atomically: it is unpacked next to dir and renamed into place.
func download(pkg, dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return fmt.Errorf("creating download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	get := exec.Command("apt-get", "download", pkg)
	get.Dir = tmp
	if out, err := get.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %w: %s", pkg, err, lastLines(out, 5))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: got %d .deb files", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return fmt.Errorf("unpacking %s: %w: %s", filepath.Base(debs[0]), err, lastLines(out, 5))
	}
	if err := os.Rename(root, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return nil // another test process got there first
		}
		return fmt.Errorf("caching %s: %w", pkg, err)
	}
	return nil
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
