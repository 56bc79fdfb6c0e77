package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
)

// sealedSpec is what buildUKISpec appends for an encrypted /var.
const sealedSpec = "  version: \"1.0\"\ndisk:\n  encrypt_data: tpm\n"

// luksDump runs cryptsetup luksDump on a copy of the LUKS2 header area of
// the image's data partition (the first 16 MiB).
func luksDump(t *testing.T, img string) string {
	t.Helper()
	l, err := disk.ReadLayout(img)
	if err != nil {
		t.Fatal(err)
	}
	data, ok := l.Partition("data")
	if !ok {
		t.Fatal("no data partition")
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 16<<20)
	if _, err := f.ReadAt(hdr, data.Offset); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "header")
	if err := os.WriteFile(p, hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cryptsetup", "luksDump", p).CombinedOutput()
	if err != nil {
		t.Fatalf("cryptsetup luksDump of the data partition: %v\n%s", err, out)
	}
	return string(out)
}

// TestTPMSealedData: disk.encrypt_data: tpm on OVMF's Secure Boot firmware
// with a software TPM that keeps its state between boots.
//   - First boot (keys enrolled from setup mode): the host makes the data
//     partition a LUKS2 volume, seals its passphrase to the TPM under the
//     PCR 11 policy the UKI carries signed, extends PCR 11 after, and
//     mounts /var from the volume; the service answers. cryptsetup
//     luksDump reads the header (our keyslot, segment and token); the
//     partition holds no plain ext4.
//   - Second boot: the TPM unseals the passphrase again without anything
//     re-sealed (boot 2 on the same /var).
//   - The UKI swapped for one signed by the same Secure Boot key whose PCR
//     policy is signed by another key: it boots, the TPM refuses to
//     unseal (the UKI's key is not the one /var is sealed to), /var is a
//     tmpfs, the volume is left as it was.
//   - No TPM at all (without_tpm defaults to fail): /var is a tmpfs, the
//     volume is left as it was.
func TestTPMSealedData(t *testing.T) {
	keys, other := sbKeys(t), sbKeys(t)
	sign := []string{"--secureboot-key", filepath.Join(keys, "db.key"), "--secureboot-cert", filepath.Join(keys, "db.crt")}
	b := buildUKISpec(t, t.TempDir(), sealedSpec, append(sign, "--secureboot-enroll", keys, "--pcr-key", filepath.Join(keys, "KEK.key"))...)
	// The same host, its PCR policy signed by another key.
	stranger := buildUKISpec(t, t.TempDir(), sealedSpec, append(sign, "--pcr-key", filepath.Join(other, "KEK.key"))...)
	entry := "EFI/Linux/bulkhead-1.0+3.efi"
	u, err := disk.ReadESPFile(b.output("raw-efi"), entry)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(u, []byte("bulkhead.data.encrypt=tpm")) {
		t.Fatal("the UKI's command line does not ask for the sealed /var")
	}
	strangerUKI, err := disk.ReadESPFile(stranger.output("raw-efi"), entry)
	if err != nil {
		t.Fatal(err)
	}

	dev := copyImage(t, b.output("raw-efi"))
	vars := blankVarsStore(t)
	state := tpmState(t)
	vm, port := sbBoot(t, dev, vars, swtpmAt(t, state)...)
	waitFor(t, vm, "Secure boot enabled", 5*time.Minute)
	waitFor(t, vm, "stage0: kept the UKI's signed PCR policy for stage 1", 3*time.Minute)
	waitFor(t, vm, "data: created a LUKS2 volume on", 3*time.Minute)
	waitFor(t, vm, "tpm: extended PCR 11", time.Minute)
	waitFor(t, vm, "data: created file system on /dev/", time.Minute)
	waitFor(t, vm, "data: boot 1 on this data partition", time.Minute)
	if body := get(t, port, 4*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q", body)
	}
	waitFor(t, vm, "boot: blessed entry bulkhead-1.0.efi", 2*time.Minute)
	powerOff(t, vm)

	dump := luksDump(t, dev)
	for _, want := range []string{"Version:       \t2", "aes-xts-plain64", "bulkhead-tpm2", "pbkdf2", "sector: 4096"} {
		if !strings.Contains(dump, want) {
			t.Errorf("luksDump has no %q:\n%s", want, dump)
		}
	}
	uuid := luksUUID(t, dump)

	vm, port = sbBoot(t, dev, vars, swtpmAt(t, state)...)
	waitFor(t, vm, "data: the TPM unsealed the key of the LUKS2 volume", 5*time.Minute)
	waitFor(t, vm, "data: boot 2 on this data partition", time.Minute)
	if body := get(t, port, 4*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q", body)
	}
	powerOff(t, vm)
	if again := luksDump(t, dev); again != dump {
		t.Fatalf("the second boot changed the LUKS2 header (re-sealed?):\n%s\nwas:\n%s", again, dump)
	}

	espCopy(t, dev, "EFI/Linux/bulkhead-1.0.efi", strangerUKI)
	vm, port = sbBoot(t, dev, vars, swtpmAt(t, state)...)
	waitFor(t, vm, "Secure boot enabled", 5*time.Minute)
	waitFor(t, vm, "is not the key /var is sealed to", 3*time.Minute)
	waitFor(t, vm, "/var is a tmpfs", time.Minute)
	if body := get(t, port, 4*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q", body)
	}
	powerOff(t, vm)

	espCopy(t, dev, "EFI/Linux/bulkhead-1.0.efi", u)
	vm, _ = sbBoot(t, dev, vars)
	waitFor(t, vm, "is a LUKS2 volume sealed to a TPM, and this machine has no TPM 2.0", 5*time.Minute)
	waitFor(t, vm, "/var is a tmpfs", time.Minute)
	vm.Kill()
	vm.Wait()
	if got := luksUUID(t, luksDump(t, dev)); got != uuid {
		t.Fatalf("the LUKS2 volume changed: UUID %s, was %s", got, uuid)
	}
}

// luksUUID is the UUID line of a luksDump.
func luksUUID(t *testing.T, dump string) string {
	t.Helper()
	for _, l := range strings.Split(dump, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "UUID" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no UUID in luksDump:\n%s", dump)
	return ""
}
