package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/uki"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// buildUKISpec writes examples/minimal.yml with boot.uki (and extra
// boot keys) into dir and builds it as raw-efi with the extra flags.
func buildUKISpec(t *testing.T, dir, bootExtra string, flags ...string) diskBuild {
	return buildUKIFormats(t, dir, "raw-efi", bootExtra, flags...)
}

// buildUKIFormats is buildUKISpec for the formats given.
func buildUKIFormats(t *testing.T, dir, formats, bootExtra string, flags ...string) diskBuild {
	t.Helper()
	spec, err := os.ReadFile("../examples/minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "uki.yml")
	if err := os.WriteFile(specPath, append(spec, []byte("boot:\n  uki: true\n"+bootExtra)...), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"build", "--json", "--format", formats, "-o", dir}, flags...)
	out, err := exec.Command(bulkhead, append(args, specPath)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("build: %v\n%s%s", err, out, stderr)
	}
	var sum diskBuild
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestUKIBoot builds the minimal host with boot.uki: the ESP holds one UKI
// in EFI/Linux and no type #1 entry; the UKI's .cmdline carries the verity
// root hash and the slot; systemd-boot boots it, the service answers, and
// the host blesses the UKI by renaming it. The iso-efi of the same spec
// boots its UKI from the CD and serves too. A second build gives the same
// bytes.
func TestUKIBoot(t *testing.T) {
	dir := t.TempDir()
	b := buildUKIFormats(t, dir, "raw-efi,iso-efi", "")
	img := filepath.Join(dir, "uki.img")
	again := buildUKIFormats(t, t.TempDir(), "raw-efi,iso-efi", "")
	for _, f := range []string{"raw-efi", "iso-efi"} {
		if fileDigest(t, b.output(f)) != fileDigest(t, again.output(f)) {
			t.Fatalf("two builds of the UKI %s differ", f)
		}
	}
	name := "bulkhead-" + b.Root.Version
	if names, err := disk.ReadUKIs(img); err != nil || strings.Join(names, " ") != name+"+3.efi" {
		t.Fatalf("UKIs on the ESP: %v, %v", names, err)
	}
	if names, err := disk.ReadEntries(img); err == nil && len(names) > 0 {
		t.Fatalf("type #1 entries beside the UKI: %v", names)
	}
	u, err := disk.ReadESPFile(img, "EFI/Linux/"+name+"+3.efi")
	if err != nil {
		t.Fatal(err)
	}
	secs, err := uki.ReadSections(u)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := disk.ReadLayout(img)
	if err != nil {
		t.Fatal(err)
	}
	rootA, _ := layout.Partition("root-a")
	cmdline := string(secs[".cmdline"])
	// One UKI serves either slot: its command line names none, and stage
	// 0 boots the root slot holding the root hash.
	if !strings.Contains(cmdline, "bulkhead.verity="+b.Root.Verity) || strings.Contains(cmdline, "root=") || strings.Contains(cmdline, "bulkhead.data=") {
		t.Fatalf("UKI command line %q: want the verity parameters and no slot", cmdline)
	}
	if !bytes.Contains(secs[".osrel"], []byte("VERSION_ID="+b.Root.Version)) {
		t.Fatalf(".osrel %q", secs[".osrel"])
	}

	dev := copyImage(t, img)
	vm, port := bootUEFI(t, qemu.Config{Disk: dev})
	waitFor(t, vm, "(PARTUUID="+rootA.GUID+"), found in", 4*time.Minute)
	waitFor(t, vm, "stage0: root verified", 4*time.Minute)
	waitFor(t, vm, "data: created file system on", 2*time.Minute)
	if body := get(t, port, 3*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q", body)
	}
	waitFor(t, vm, "boot: blessed entry "+name+".efi", 2*time.Minute)
	powerOff(t, vm)
	if names, err := disk.ReadUKIs(dev); err != nil || strings.Join(names, " ") != name+".efi" {
		t.Fatalf("UKIs after the boot: %v, %v; want %s.efi", names, err, name)
	}

	// The ISO: the firmware finds the CD's boot image, systemd-boot in it
	// loads the UKI, stage 0 verifies the root image on the CD.
	vm, port = bootUEFI(t, qemu.Config{ISO: b.output("iso-efi")})
	waitFor(t, vm, "stage0: root verified", 4*time.Minute)
	if body := get(t, port, 3*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q from the ISO", body)
	}
	powerOff(t, vm)
}

// TestUKIUpdate: a host booting 1.0.0 as a UKI from slot a takes a signed
// 2.0.0 bundle that carries 2.0.0's UKI (the same image for either slot:
// its command line names none) through its API, reboots into it, and
// stage 0 boots slot b, the one holding 2.0.0's root hash; the UKI is
// blessed and the service answers.
func TestUKIUpdate(t *testing.T) {
	u := newUpdateHost(t)
	v2 := u.bundle(u.spec("2.0.0", nil, "  uki: true\n"), "release")
	u.files = serveFiles(t, filepath.Dir(v2))
	v1 := u.spec("1.0.0", nil, "  uki: true\n")
	cli(t, "build", "--format", "raw-efi", "-o", filepath.Join(u.dir, "out1"), v1)
	img := filepath.Join(u.dir, "out1", "host.img")
	layout, err := disk.ReadLayout(img)
	if err != nil {
		t.Fatal(err)
	}
	rootA, _ := layout.Partition("root-a")
	rootB, _ := layout.Partition("root-b")
	u.dev = copyImage(t, img)
	u.coldBoot()
	waitFor(t, u.vm, "(PARTUUID="+rootA.GUID+"), found in", 5*time.Minute)
	waitFor(t, u.vm, "boot: blessed entry bulkhead-1.0.0.efi", 5*time.Minute)
	if got := u.host("update", "--reboot", "http://10.0.2.100/"+filepath.Base(v2)); !strings.Contains(got, "installed 2.0.0") {
		t.Fatalf("update: %s", got)
	}
	waitFor(t, u.vm, "(PARTUUID="+rootB.GUID+"), found in", 5*time.Minute)
	waitFor(t, u.vm, "boot: blessed entry bulkhead-2.0.0.efi", 5*time.Minute)
	if body := get(t, u.ports[0], time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service after the update: %q", body)
	}
	if st := u.status(); st.Version != "2.0.0" {
		t.Fatalf("status after the update: %+v", st)
	}
	powerOff(t, u.vm)
	names, err := disk.ReadUKIs(u.dev)
	if err != nil || strings.Join(names, " ") != "bulkhead-1.0.0.efi bulkhead-2.0.0.efi" {
		t.Fatalf("UKIs after the update: %v, %v", names, err)
	}
	if names, err := disk.ReadEntries(u.dev); err == nil && len(names) > 0 {
		t.Fatalf("type #1 entries beside the UKIs: %v", names)
	}
}
