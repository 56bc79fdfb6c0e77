package luks2

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/xts"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/test/qemutest"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
)

// bootTimeout bounds the guest: a boot, a format, an ext4 file system
// made and mounted twice, under software emulation.
const bootTimeout = 3 * time.Minute

// TestDMCryptInGuest boots Debian's kernel on a 64 MiB virtio disk: the
// guest formats it with Format, maps it with Open (dm-crypt), makes ext4
// on it and writes a file, closes it, and reopens it and reads the file the first time with the generic AES, the second with AES-NI.
// On the build machine, cryptsetup then accepts the disk and finds
// the volume key Unlock finds, and decrypting the data segment in Go
// (x/crypto/xts, plain64 IVs counted in 512-byte sectors, 4096-byte
// sectors) gives the ext4 file system the kernel wrote, with the file:
// dm-crypt encrypted it the way cryptsetup's volumes are.
func TestDMCryptInGuest(t *testing.T) {
	disk := image(t, 64<<20)
	pass := passphrase(11)
	console := bootGuest(t, disk, hex.EncodeToString(pass))
	for _, re := range []string{
		`format uuid=\S+ luks before=false after=true in \S+`,
		`round 1: unlocked in \S+, opened /dev/dm-0 in \S+`,
		`table: 0 98304 crypt aes-xts-plain64 <64-byte key> 0 \d+:\d+ 32768 1 sector_size:4096`,
		`round 1: xts\(aes\) driver : xts\(ecb\(aes-generic\)\)`,
		`round 2: xts\(aes\) driver : xts-aes-aesni`,
		`round 1: ext4 created=true`,
		`round 2: read back: hello from the encrypted data partition`,
		`round 2: closed`,
		`guest done`,
	} {
		if !regexp.MustCompile(`(?m)^` + re + `\r?$`).MatchString(console) {
			t.Errorf("console lacks a line matching %q", re)
		}
	}
	if t.Failed() {
		t.Fatalf("console:\n%s", console)
	}

	keyFile := writeFile(t, "passphrase", pass)
	dump := cryptsetup(t, "luksDump", disk)
	if !strings.Contains(dump, "0: bulkhead-tpm2") {
		t.Errorf("luksDump shows no token:\n%s", dump)
	}
	h, f := openHeader(t, disk)
	key, err := h.Unlock(f, pass)
	if err != nil {
		t.Fatal(err)
	}
	if want := dumpVolumeKey(t, disk, keyFile); !bytes.Equal(key, want) {
		t.Fatalf("Unlock found %x, cryptsetup %x", key, want)
	}

	data, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	cipherText := data[DataOffset:]
	if bytes.Contains(cipherText, []byte("hello from the encrypted")) || ext4Magic(cipherText) {
		t.Fatal("the data segment holds plaintext")
	}
	hello := []byte("hello from the encrypted data partition")
	plain := decrypt(t, key, cipherText, SectorSize/512)
	if !ext4Magic(plain) || !bytes.Contains(plain, hello) {
		t.Fatal("the decrypted data segment holds no ext4 superblock or not the file")
	}
	// IVs counted in 4096-byte sectors (iv_large_sectors) agree on sector
	// 0 only: the file's block decrypts to noise.
	if bytes.Contains(decrypt(t, key, cipherText, 1), hello) {
		t.Error("decrypted with IVs counted in 4096-byte sectors, the file is there too: the IV check proves nothing")
	}
	img := writeFile(t, "plain.img", plain)
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck on the decrypted segment: %v\n%s", err, out)
	}
	out, err := exec.Command("debugfs", "-R", "cat /hello", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello from the encrypted data partition") {
		t.Errorf("debugfs cat /hello: %v\n%s", err, out)
	}
}

// decrypt decrypts a data segment with aes-xts-plain64: sector k of
// SectorSize bytes has IV k*ivStep (dm-crypt counts IVs in 512-byte
// sectors unless iv_large_sectors is set, so ivStep is 8).
func decrypt(t *testing.T, key, cipherText []byte, ivStep uint64) []byte {
	t.Helper()
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, len(cipherText))
	for off := 0; off+SectorSize <= len(cipherText); off += SectorSize {
		c.Decrypt(plain[off:off+SectorSize], cipherText[off:off+SectorSize], uint64(off/SectorSize)*ivStep)
	}
	return plain
}

func ext4Magic(b []byte) bool { return binary.LittleEndian.Uint16(b[1024+56:]) == 0xef53 }

// bootGuest boots testdata/guest on disk and returns its console.
func bootGuest(t *testing.T, disk, passHex string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout+30*time.Second)
	defer cancel()
	begin := time.Now()
	vm := qemutest.Start(ctx, t, qemu.Config{
		Kernel:  testkernel.Path(t),
		Initrd:  guestInitrd(t),
		Cmdline: qemutest.Cmdline + " bulkhead.luks.pass=" + passHex,
		Disk:    disk,
		Timeout: bootTimeout,
	})
	qemutest.WantResult(t, vm, qemu.Poweroff)
	console := vm.Console()
	var lines []string
	for _, l := range strings.Split(console, "\n") {
		if l = strings.TrimSpace(l); regexp.MustCompile(`^(format|round|table|xts|module|guest)`).MatchString(l) {
			lines = append(lines, l)
		}
	}
	t.Logf("guest ran in %s:\n%s", time.Since(begin).Round(time.Millisecond), strings.Join(lines, "\n"))
	return console
}

// guestInitrd packs testdata/guest as /init with the disk and dm-crypt
// modules (dependencies first) under /modules.
func guestInitrd(t *testing.T) string {
	t.Helper()
	return qemutest.InitrdWith(t, qemutest.BuildMain(t, "./testdata/guest"), testkernel.ModulesDir(t), slices.Concat(qemutest.DiskModules, Modules)...)
}
