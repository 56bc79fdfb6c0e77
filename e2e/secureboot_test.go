package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
	"github.com/bulkhead-dev/bulkhead/builder/uki"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/sdbootdeb"
)

// OVMF's Secure Boot firmware and its blank variable store (setup mode).
const (
	secbootCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	blankVars   = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// sbKeys runs `bulkhead secureboot keys` into a new directory.
func sbKeys(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if out, err := exec.Command(bulkhead, "secureboot", "keys", dir).CombinedOutput(); err != nil {
		t.Fatalf("secureboot keys: %v\n%s", err, out)
	}
	return dir
}

// peerVerify runs sbverify on an EFI program from the image's ESP.
func peerVerify(t *testing.T, img, name, cert string) error {
	t.Helper()
	b, err := disk.ReadESPFile(img, name)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sbverify", "--cert", cert, p).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// espCopy writes a file into the raw image's ESP with mtools.
func espCopy(t *testing.T, img, name string, data []byte) {
	t.Helper()
	l, err := disk.ReadLayout(img)
	if err != nil {
		t.Fatal(err)
	}
	esp, _ := l.Partition("esp")
	src := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", img, esp.Offset), src, "::/"+name)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mcopy %s: %v\n%s", name, err, out)
	}
}

// sbBoot boots the disk under OVMF's Secure Boot firmware with the
// variable store vars (kept between runs), and extra qemu arguments.
func sbBoot(t *testing.T, dev, vars string, extra ...string) (*qemu.VM, int) {
	t.Helper()
	return bootUEFI(t, qemu.Config{Disk: dev, OVMFCode: secbootCode, VarsStore: vars, SecureBoot: true, AllowReboot: true, ExtraArgs: extra})
}

// swtpm starts a software TPM 2.0 for one VM and returns qemu's arguments
// for it (a TIS device on the emulator's control socket).
func swtpm(t *testing.T) []string {
	t.Helper()
	return swtpmAt(t, tpmState(t))
}

// tpmState is a new directory for a software TPM's state, kept for the
// test so that one TPM can serve several boots of a machine.
func tpmState(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bulkhead-swtpm-") // short: a socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// swtpmAt starts a software TPM 2.0 on the state in dir for one VM (it
// ends when the VM does) and returns qemu's arguments for it.
func swtpmAt(t *testing.T, dir string) []string {
	t.Helper()
	sock := filepath.Join(dir, "sock")
	os.Remove(sock)
	cmd := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+dir, "--ctrl", "type=unixio,path="+sock, "--terminate")
	if err := cmd.Start(); err != nil {
		t.Fatalf("swtpm: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("swtpm made no control socket %s in 5 s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return []string{"-chardev", "socket,id=chrtpm,path=" + sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"}
}

// blankVarsStore is a copy of OVMF's blank variable store (Secure Boot
// in setup mode), kept across the test's boots.
func blankVarsStore(t *testing.T) string {
	t.Helper()
	vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	if out, err := exec.Command("cp", blankVars, vars).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return vars
}

// verifyOutput runs bulkhead verify --secureboot on img with cert.
func verifyOutput(t *testing.T, img, cert string) (string, error) {
	out, err := exec.Command(bulkhead, "verify", "--secureboot", "--cert", cert, img).CombinedOutput()
	return string(out), err
}

// TestSecureBoot enrolls keys the way a user would on a new machine and
// then checks that the firmware enforces them on our UKIs:
//   - the build signs systemd-boot and the UKI (sbverify agrees, and so
//     does bulkhead verify --secureboot, which refuses another key) and
//     puts the .auth files of `bulkhead secureboot keys` on the ESP;
//   - the UKI carries a signed PCR 11 policy (.pcrpkey, .pcrsig) that
//     verify checks; with a software TPM, the PCR 11 the host logs equals
//     the value bulkhead verify --secureboot predicted (.pcrpkey included);
//   - on a blank variable store (setup mode) systemd-boot enrolls PK, KEK
//     and db and resets; the same boot goes on with Secure Boot enforced
//     (the kernel says so), the service answers, the UKI is blessed;
//   - three newer UKIs, each tried once (+1): one signed and then changed
//     by one byte, one unsigned, one signed by another key. The firmware
//     refuses each in turn (a refused image leaves systemd-boot, and the
//     machine is reset as a watchdog would), their counters run out, and
//     the signed version boots again.
func TestSecureBoot(t *testing.T) {
	keys, other := sbKeys(t), sbKeys(t)
	dir := t.TempDir()
	// The ESP is sized for two versions; this test puts four UKIs on it.
	b := buildUKISpec(t, dir, "  version: \"1.0\"\ndisk:\n  esp_size: 128M\n", "--secureboot-key", filepath.Join(keys, "db.key"),
		"--secureboot-cert", filepath.Join(keys, "db.crt"), "--secureboot-enroll", keys,
		"--pcr-key", filepath.Join(keys, "KEK.key")) // any RSA key signs the PCR policy
	img := b.output("raw-efi")
	good := "EFI/Linux/bulkhead-1.0+3.efi"
	for _, name := range []string{"EFI/BOOT/BOOTX64.EFI", good} {
		if err := peerVerify(t, img, name, filepath.Join(keys, "db.crt")); err != nil {
			t.Fatalf("sbverify %s: %v", name, err)
		}
		if err := peerVerify(t, img, name, filepath.Join(other, "db.crt")); err == nil {
			t.Fatalf("sbverify accepts %s for another key", name)
		}
	}
	conf, err := disk.ReadESPFile(img, "loader/loader.conf")
	if err != nil || !strings.Contains(string(conf), "secure-boot-enroll force") {
		t.Fatalf("loader.conf %q, %v", conf, err)
	}
	out, err := verifyOutput(t, img, filepath.Join(keys, "db.crt"))
	pcr := regexp.MustCompile(`ok    EFI/Linux/bulkhead-1\.0\+3\.efi pcr11 sha256:([0-9a-f]{64}) pcrsig ok`).FindStringSubmatch(out)
	if err != nil || pcr == nil || !strings.Contains(out, "ok    EFI/BOOT/BOOTX64.EFI") {
		t.Fatalf("verify --secureboot: %v\n%s", err, out)
	}
	if out, err := verifyOutput(t, img, filepath.Join(other, "db.crt")); err == nil || strings.Count(out, "FAIL") != 2 {
		t.Fatalf("verify --secureboot with another certificate: %v\n%s", err, out)
	}
	bad := badUKIs(t, img, good, keys, other)

	dev := copyImage(t, img)
	vars := blankVarsStore(t)
	vm, port := sbBoot(t, dev, vars, swtpm(t)...)
	waitFor(t, vm, "Enrolling secure boot keys from directory: \\loader\\keys\\auto", 4*time.Minute)
	waitFor(t, vm, "Secure boot enabled", 5*time.Minute)
	// The TPM's PCR 11 after the stub measured the UKI is the prediction.
	waitFor(t, vm, "tpm: PCR 11 sha256:"+pcr[1], 3*time.Minute)
	if body := get(t, port, 4*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q", body)
	}
	waitFor(t, vm, "boot: blessed entry bulkhead-1.0.efi", 2*time.Minute)
	powerOff(t, vm)

	for name, data := range bad {
		espCopy(t, dev, "EFI/Linux/"+name, data)
	}
	for _, version := range []string{"4", "3", "2"} {
		vm, _ := sbBoot(t, dev, vars)
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		refused := regexp.MustCompile(`Error loading \\EFI\\Linux\\bulkhead-` + version + `\+[0-9-]+\.efi: (Security Violation|Access Denied)`)
		_, err := vm.WaitForRegexp(ctx, refused, 0)
		cancel()
		if err != nil {
			t.Fatalf("UKI %s was not refused: %v", version, err)
		}
		if strings.Contains(vm.Console(), "Linux version") {
			t.Fatalf("a kernel started from a refused UKI:\n%s", vm.Tail(40))
		}
		vm.Kill()
		vm.Wait()
	}
	vm, port = sbBoot(t, dev, vars)
	waitFor(t, vm, "Secure boot enabled", 5*time.Minute)
	if body := get(t, port, 4*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q after the fallback", body)
	}
	powerOff(t, vm)
	names, err := disk.ReadUKIs(dev)
	if err != nil {
		t.Fatal(err)
	}
	want := "bulkhead-1.0.efi bulkhead-2+0-1.efi bulkhead-3+0-1.efi bulkhead-4+0-1.efi"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("UKIs after the fallback: %s, want %s", got, want)
	}
}

// badUKIs makes three UKIs newer than the signed one at good, each tried
// once, from its kernel, initrd and command line: version 4 signed with
// the key in keysDir and then changed in one byte of its kernel, 3
// unsigned, 2 signed by the key in otherDir.
func badUKIs(t *testing.T, img, good, keysDir, otherDir string) map[string][]byte {
	t.Helper()
	b, err := disk.ReadESPFile(img, good)
	if err != nil {
		t.Fatal(err)
	}
	secs, err := uki.ReadSections(b)
	if err != nil {
		t.Fatal(err)
	}
	stub, err := os.ReadFile(sdbootdeb.Path(t, sdbootdeb.Stub))
	if err != nil {
		t.Fatal(err)
	}
	build := func(version string) []byte {
		u, err := uki.Build(uki.Input{Stub: stub, Linux: secs[".linux"], Initrd: secs[".initrd"],
			Cmdline: string(secs[".cmdline"]), OSRel: uki.OSRelease(version)})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	sign := func(dir string, u []byte) []byte {
		k, err1 := os.ReadFile(filepath.Join(dir, "db.key"))
		c, err2 := os.ReadFile(filepath.Join(dir, "db.crt"))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		s, err := secureboot.ParseSigner(k, c)
		if err != nil {
			t.Fatal(err)
		}
		if u, err = s.Sign(u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	changed := sign(keysDir, build("4"))
	changed[len(changed)/2] ^= 0x01 // in the initrd or the kernel: hashed content
	return map[string][]byte{
		"bulkhead-4+1.efi": changed,
		"bulkhead-3+1.efi": build("3"),
		"bulkhead-2+1.efi": sign(otherDir, build("2")),
	}
}
