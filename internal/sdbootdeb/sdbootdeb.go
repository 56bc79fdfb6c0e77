// Package sdbootdeb gives tests Debian's systemd-boot-efi package files
// (systemd-bootx64.efi and the UKI stub linuxx64.efi.stub), fetched with
// apt-get download once per test binary and unpacked into a temporary
// directory.
package sdbootdeb

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Paths of the files inside the package.
const (
	Bootloader = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	Stub       = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"
)

var deb struct {
	once sync.Once
	dir  string
	err  error
}

// Path returns the unpacked file rel of the package (Bootloader, Stub).
// The directory lives until Cleanup.
func Path(t testing.TB, rel string) string {
	t.Helper()
	deb.once.Do(fetch)
	if deb.err != nil {
		t.Fatalf("getting systemd-boot-efi: %v", deb.err)
	}
	return filepath.Join(deb.dir, "x", rel)
}

// Cleanup removes the unpacked package (call it from TestMain).
func Cleanup() {
	if deb.dir != "" {
		os.RemoveAll(deb.dir)
	}
}

func fetch() {
	dir, err := os.MkdirTemp("", "bulkhead-sdboot-")
	if err != nil {
		deb.err = err
		return
	}
	deb.dir = dir
	cmd := exec.Command("apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", "systemd-boot-efi")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		deb.err = &exec.ExitError{Stderr: out}
		return
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		deb.err = os.ErrNotExist
		return
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], filepath.Join(dir, "x")).CombinedOutput(); err != nil {
		deb.err = &exec.ExitError{Stderr: out}
	}
}
