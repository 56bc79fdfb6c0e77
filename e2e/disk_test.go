package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// diskBuild is what `bulkhead build --json --format raw-efi,iso-efi` says.
type diskBuild struct {
	Outputs []struct {
		Path   string `json:"path"`
		Format string `json:"format"`
		Digest string `json:"digest"`
	} `json:"outputs"`
	Root struct {
		Version  string `json:"version"`
		RootHash string `json:"root_hash"`
		Verity   string `json:"verity"`
		Size     int64  `json:"size"`
	} `json:"root"`
}

func (b diskBuild) output(format string) string {
	for _, o := range b.Outputs {
		if o.Format == format {
			return o.Path
		}
	}
	return ""
}

// buildDisk builds spec as raw-efi and iso-efi into dir.
func buildDisk(t *testing.T, spec, dir string) diskBuild {
	t.Helper()
	cmd := exec.Command(bulkhead, "build", "--json", "--format", "raw-efi,iso-efi", "-o", dir, spec)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bulkhead build %s: %v\n%s\n(the component images come from `make images`)", spec, err, stderr.String())
	}
	var b diskBuild
	if err := json.Unmarshal(stdout.Bytes(), &b); err != nil {
		t.Fatalf("build summary: %v\n%s", err, stdout.String())
	}
	if b.output("raw-efi") == "" || b.output("iso-efi") == "" || b.Root.RootHash == "" {
		t.Fatalf("build summary lacks an output or the root hash:\n%s", stdout.String())
	}
	return b
}

// bootUEFI boots a disk or ISO image through OVMF with the web service's
// port forwarded, and returns the host port.
func bootUEFI(t *testing.T, cfg qemu.Config) (*qemu.VM, int) {
	t.Helper()
	cfg.UEFI, cfg.MemoryMB, cfg.CPUs, cfg.Network = true, 1024, 1, true
	if cfg.Timeout == 0 {
		cfg.Timeout = 8 * time.Minute
	}
	vm, ports := start(t, cfg, 8080)
	return vm, ports[0]
}

// powerOff presses the power button and waits for the guest to end.
func powerOff(t *testing.T, vm *qemu.VM) {
	t.Helper()
	if err := vm.Powerdown(); err != nil {
		t.Fatal(err)
	}
	res, err := vm.Wait()
	if err != nil || res.Reason != qemu.Poweroff {
		t.Fatalf("guest ended with %+v, %v; want poweroff", res, err)
	}
}

// copyImage copies a (sparse) image so a boot does not change the original.
// copyImage copies a disk image for a test to boot, on a disk of 1 GiB as
// `bulkhead run` boots it (--disk-size): the host grows /var to the end,
// with room for an update's bundle.
func copyImage(t *testing.T, src string) string {
	t.Helper()
	dst := copyImageAsIs(t, src)
	if layoutSize(t, dst) < 1<<30 {
		if err := os.Truncate(dst, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// copyImageAsIs copies a disk image, its size unchanged.
func copyImageAsIs(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return dst
}

func fileDigest(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestRawEFI builds examples/minimal.yml as raw-efi and iso-efi twice and
// checks, with real parts: the two builds are identical; veritysetup
// accepts root-a's hash tree and root hash; the disk boots through OVMF
// and systemd-boot from the verified root, / refuses writes, the service
// answers, the entry is blessed after the settle time, and a file under
// /var survives a reboot; a flipped byte in root-a stops the boot before
// any service; the ISO boots the same system.
func TestRawEFI(t *testing.T) {
	a := buildDisk(t, "../examples/minimal.yml", t.TempDir())
	b := buildDisk(t, "../examples/minimal.yml", t.TempDir())
	for _, format := range []string{"raw-efi", "iso-efi"} {
		if x, y := fileDigest(t, a.output(format)), fileDigest(t, b.output(format)); x != y {
			t.Errorf("%s differs between two builds: %s, %s", format, x, y)
		}
	}
	img := a.output("raw-efi")
	layout, err := disk.ReadLayout(img)
	if err != nil {
		t.Fatal(err)
	}
	rootA, ok := layout.Partition("root-a")
	if !ok {
		t.Fatalf("no root-a in %+v", layout)
	}
	params, err := verity.ParseParams(a.Root.Verity)
	if err != nil {
		t.Fatal(err)
	}
	entryOptions(t, img, a, rootA)

	t.Run("veritysetup", func(t *testing.T) { veritysetupVerify(t, img, rootA, params, a.Root.RootHash) })
	t.Run("scan", func(t *testing.T) { scanArtifacts(t, img, a.output("iso-efi")) })
	t.Run("boot", func(t *testing.T) { bootRawTwice(t, img, a) })
	t.Run("corrupt-root", func(t *testing.T) { bootCorrupt(t, img, rootA, params) })
	t.Run("iso", func(t *testing.T) {
		vm, port := bootUEFI(t, qemu.Config{ISO: a.output("iso-efi")})
		waitFor(t, vm, "stage0: root verified", 4*time.Minute)
		if body := get(t, port, 3*time.Minute); !strings.Contains(body, "hello from minimal") {
			t.Fatalf("service answered %q", body)
		}
		powerOff(t, vm)
	})
}

// entryOptions checks the counted entry on the ESP: its name, and that it
// boots root-a with the verity parameters the build reported.
func entryOptions(t *testing.T, img string, b diskBuild, rootA disk.Partition) {
	t.Helper()
	names, err := disk.ReadEntries(img)
	if err != nil {
		t.Fatal(err)
	}
	want := "bulkhead-" + b.Root.Version + "+3.conf"
	if len(names) != 1 || names[0] != want {
		t.Fatalf("entries %v, want [%s]", names, want)
	}
	conf, err := disk.ReadESPFile(img, "loader/entries/"+want)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"root=PARTUUID=" + rootA.GUID, verity.CmdlineKey + "=" + b.Root.Verity, "bulkhead.data=PARTUUID="} {
		if !strings.Contains(string(conf), s) {
			t.Errorf("entry lacks %q:\n%s", s, conf)
		}
	}
	loader, err := disk.ReadESPFile(img, "loader/loader.conf")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(loader), "default") {
		t.Errorf("loader.conf sets a default:\n%s", loader)
	}
}

// veritysetupVerify cuts the root image out of root-a and has veritysetup
// check it: with the build's root hash it passes, with another it fails.
func veritysetupVerify(t *testing.T, img string, rootA disk.Partition, p verity.Params, rootHash string) {
	if _, err := exec.LookPath("veritysetup"); err != nil {
		t.Fatal("veritysetup is missing: make test installs cryptsetup-bin")
	}
	src, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	root := filepath.Join(t.TempDir(), "root.img")
	dst, err := os.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, rootA.Offset, rootA.Size)); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	offset := strconv.FormatUint(p.DataBlocks*verity.BlockSize, 10)
	out, err := exec.Command("veritysetup", "verify", "--hash-offset="+offset, root, root, rootHash).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup verify: %v\n%s", err, out)
	}
	wrong := []byte(rootHash)
	wrong[0] ^= 1
	if out, err := exec.Command("veritysetup", "verify", "--hash-offset="+offset, root, root, string(wrong)).CombinedOutput(); err == nil {
		t.Fatalf("veritysetup verify accepted a wrong root hash:\n%s", out)
	}
}

// bootRawTwice boots a copy of the disk, the image's size: the first boot
// creates /var, serves, and blesses its entry; the second, on a larger
// disk, finds /var as it was left and grows it.
func bootRawTwice(t *testing.T, img string, b diskBuild) {
	dev := copyImageAsIs(t, img)
	vm, port := bootUEFI(t, qemu.Config{Disk: dev})
	waitFor(t, vm, "stage0: root verified", 4*time.Minute)
	waitFor(t, vm, "root is read-only (a test write to / was refused)", time.Minute)
	waitFor(t, vm, "data: created file system on", time.Minute)
	waitFor(t, vm, "data: boot 1 on this data partition", time.Minute)
	if body := get(t, port, 3*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q", body)
	}
	blessed := "bulkhead-" + b.Root.Version + ".conf"
	waitFor(t, vm, "service hello healthy", time.Minute)
	waitFor(t, vm, "boot: blessed entry "+blessed, 2*time.Minute)
	powerOff(t, vm)
	names, err := disk.ReadEntries(dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != blessed {
		t.Fatalf("entries after the first boot: %v, want [%s]", names, blessed)
	}

	// A bigger disk, as when the image is written to a larger volume: the
	// data partition and its file system grow to the end.
	if err := os.Truncate(dev, layoutSize(t, dev)+256<<20); err != nil {
		t.Fatal(err)
	}
	vm, _ = bootUEFI(t, qemu.Config{Disk: dev})
	waitFor(t, vm, "data: boot 2 on this data partition", 4*time.Minute)
	waitFor(t, vm, "data: grew partition to the end of the disk (288 MiB)", time.Minute) // 32 MiB + 256 MiB
	waitFor(t, vm, "data: grew file system to", time.Minute)
	if strings.Contains(vm.Console(), "data: created file system") {
		t.Fatal("the second boot created the data file system again")
	}
	waitFor(t, vm, "service hello started", 2*time.Minute)
	powerOff(t, vm)
}

// bootCorrupt flips one byte inside the file system on root-a: stage 0
// must refuse the root and reboot, and no service may start.
func bootCorrupt(t *testing.T, img string, rootA disk.Partition, p verity.Params) {
	dev := copyImage(t, img)
	// The middle of the file system is file data (erofs lays out inodes
	// and data from the start; the tree has tens of MiB of binaries).
	testfile.FlipByte(t, dev, rootA.Offset+int64(p.DataBlocks/2)*verity.BlockSize+123)
	vm, _ := bootUEFI(t, qemu.Config{Disk: dev, Timeout: 5 * time.Minute})
	waitFor(t, vm, "root verification failed", 4*time.Minute)
	waitFor(t, vm, "refusing to mount it", 10*time.Second)
	res, err := vm.Wait()
	if err != nil || res.Reason != qemu.Reboot {
		t.Fatalf("guest ended with %+v, %v; want a reboot", res, err)
	}
	for _, never := range []string{"bulkhead-init: started", "containerd ready", "service hello started"} {
		if strings.Contains(vm.Console(), never) {
			t.Errorf("console shows %q after a failed verification", never)
		}
	}
}

func layoutSize(t *testing.T, img string) int64 {
	t.Helper()
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// scanArtifacts: bulkhead scan reads the disk and the ISO as the root they
// boot, with the kernel of their boot entry, and finds the same packages.
func scanArtifacts(t *testing.T, img, iso string) {
	var summaries []string
	for _, p := range []string{img, iso} {
		out, err := exec.Command(bulkhead, "scan", "--json", p).Output()
		if err != nil {
			t.Fatalf("scan %s: %v", p, err)
		}
		var rep struct {
			Packages []struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"packages"`
			Failed []string `json:"failed"`
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatal(err)
		}
		var names []string
		kernel := false
		for _, pk := range rep.Packages {
			names = append(names, pk.Name+"@"+pk.Version)
			kernel = kernel || pk.Name == "linux"
		}
		if !kernel || len(rep.Failed) != 0 || len(names) < 10 {
			t.Errorf("scan %s: kernel %v, failed %v, %d packages", filepath.Base(p), kernel, rep.Failed, len(names))
		}
		summaries = append(summaries, strings.Join(names, " "))
	}
	if summaries[0] != summaries[1] {
		t.Errorf("the disk and the ISO scan to different packages:\n%s\n%s", summaries[0], summaries[1])
	}
}

// TestUnhealthyEntryMarkedBad boots a disk whose only service never passes
// its health check: once the assessment deadline passes, the init marks
// the entry bad (+0-1) and, with no other entry to fall back to, stays up
// and says so; the attempt is on record.
func TestUnhealthyEntryMarkedBad(t *testing.T) {
	spec, err := os.ReadFile("../examples/minimal.yml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(spec), "http: http://127.0.0.1:8080/healthz", "tcp: 127.0.0.1:9", 1)
	bad += "boot:\n  deadline: 40s\n  settle: 2s\n"
	dir := t.TempDir()
	specPath := filepath.Join(dir, "unhealthy.yml")
	if err := os.WriteFile(specPath, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bulkhead, "build", "--json", "--format", "raw-efi", "-o", dir, specPath)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var sum diskBuild
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatal(err)
	}
	dev := copyImage(t, filepath.Join(dir, "unhealthy.img"))
	vm, port := bootUEFI(t, qemu.Config{Disk: dev})
	if body := get(t, port, 4*time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service answered %q", body)
	}
	entry := "bulkhead-" + sum.Root.Version
	waitFor(t, vm, "service hello not healthy yet: tcp 127.0.0.1:9", time.Minute)
	waitFor(t, vm, "boot: assessment of "+entry+"+2-1.conf failed: not healthy within 40s: service hello unhealthy", 2*time.Minute)
	waitFor(t, vm, "boot: marked entry "+entry+"+0-1.conf bad; no other entry can boot, staying on this version", 30*time.Second)
	if body := get(t, port, time.Minute); !strings.Contains(body, "hello from minimal") {
		t.Fatalf("service stopped answering after the assessment: %q", body)
	}
	powerOff(t, vm)
	names, err := disk.ReadEntries(dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != entry+"+0-1.conf" {
		t.Fatalf("entries: %v, want [%s+0-1.conf]", names, entry)
	}
}
