package stage0_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/bulkhead-dev/bulkhead/internal/host/stage0"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/test/qemutest"
	"github.com/bulkhead-dev/bulkhead/internal/test/testkernel"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// bootTimeout bounds each boot; a good one takes seconds of TCG.
const bootTimeout = 90 * time.Second

// hello is the content of /hello in the test root, unique in the image.
const hello = "hello from the verified erofs root"

// rootPartUUID names the root partition in the disk test.
const rootPartUUID = "6f1b2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"

// TestVerifiedRootFromImage boots Debian's kernel with a root image inside
// the initramfs: stage 0 loads the modules, attaches a read-only loop
// device, creates dm-verity, reads the whole root, re-arms the table with
// restart_on_corruption, mounts it and switches root into it.
func TestVerifiedRootFromImage(t *testing.T) {
	g := guest(t)
	img, p := rootImage(t, g)
	initrd := makeInitrd(t, g, img)
	vm := boot(t, qemu.Config{Initrd: initrd}, "bulkhead.rootimg=/root.img "+p.Cmdline())
	qemutest.WantResult(t, vm, qemu.Poweroff)
	wantGoodRoot(t, vm)
}

// TestCorruptRootRefused flips one byte in the middle of /init's data, a
// block that mounting alone would never read: the full read must fail on
// that block, and the guest must reboot without mounting the root.
func TestCorruptRootRefused(t *testing.T) {
	g := guest(t)
	img, p := rootImage(t, g)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	mid := g[len(g)/2 : len(g)/2+256]
	off := bytes.Index(b[:p.DataBlocks*verity.BlockSize], mid)
	if off < 0 || bytes.LastIndex(b, mid) != off {
		t.Fatal("the middle of /init is not once in the image's data blocks")
	}
	off += 100
	b[off] ^= 0x01
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Two CPUs: Verify reads with two readers, and must still name the
	// first bad block.
	vm := boot(t, qemu.Config{Initrd: makeInitrd(t, g, img), CPUs: 2}, "bulkhead.rootimg=/root.img "+p.Cmdline())
	qemutest.WantResult(t, vm, qemu.Reboot)
	con := vm.Console()
	want := fmt.Sprintf("bulkhead-init: stage0: root verification failed: /dev/dm-0: block %d: input/output error; refusing to mount it", off/verity.BlockSize)
	if !strings.Contains(con, want) {
		t.Errorf("console lacks %q; tail:\n%s", want, vm.Tail(30))
	}
	t.Logf("corrupted byte %d (block %d): %s", off, off/verity.BlockSize, want)
	if strings.Contains(con, "verified root says") || strings.Contains(con, "mounted /dev/dm-0") {
		t.Errorf("corrupt root was mounted; tail:\n%s", vm.Tail(30))
	}
}

// TestVerifiedRootFromPartition attaches the image as partition 2 of a
// GPT virtio disk made with sfdisk and names it with root=PARTUUID=.
func TestVerifiedRootFromPartition(t *testing.T) {
	g := guest(t)
	img, p := rootImage(t, g)
	disk := gptDisk(t, img)
	vm := boot(t, qemu.Config{Initrd: makeInitrd(t, g, ""), Disk: disk}, "root=PARTUUID="+strings.ToUpper(rootPartUUID)+" "+p.Cmdline())
	qemutest.WantResult(t, vm, qemu.Poweroff)
	wantGoodRoot(t, vm)
	if !regexp.MustCompile(`root PARTUUID=` + rootPartUUID + ` is /dev/vda2`).MatchString(vm.Console()) {
		t.Errorf("root not found on /dev/vda2; tail:\n%s", vm.Tail(30))
	}
}

func wantGoodRoot(t *testing.T, vm *qemu.VM) {
	t.Helper()
	con := vm.Console()
	for _, want := range []string{
		"verified root says: " + hello,
		"root is read-only: true",
		"restart_on_corruption",
	} {
		if !strings.Contains(con, want) {
			t.Errorf("console lacks %q; tail:\n%s", want, vm.Tail(30))
		}
	}
	for _, l := range strings.Split(con, "\n") {
		if strings.Contains(l, "stage0:") || strings.HasPrefix(l, "live table:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

func boot(t *testing.T, cfg qemu.Config, cmdline string) *qemu.VM {
	t.Helper()
	cfg.Kernel = testkernel.Path(t)
	cfg.Cmdline = "console=ttyS0 quiet " + cmdline
	cfg.Timeout = bootTimeout
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout+30*time.Second)
	t.Cleanup(cancel)
	return qemutest.Start(ctx, t, cfg)
}

var guestOnce struct {
	sync.Mutex
	bin []byte
}

// guest builds testdata/guest statically, once per test binary.
func guest(t *testing.T) []byte {
	t.Helper()
	guestOnce.Lock()
	defer guestOnce.Unlock()
	if guestOnce.bin != nil {
		return guestOnce.bin
	}
	out := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/guest")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building guest: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	guestOnce.bin = b
	return b
}

// rootImage makes an erofs root holding the guest as /init and /hello
// with Debian's mkfs.erofs, appends its verity superblock and tree with
// veritysetup format --hash-offset, checks it with veritysetup verify, and
// returns the one-file image and its parameters.
func rootImage(t *testing.T, init []byte) (string, verity.Params) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "root")
	for _, d := range stage0.MountPoints {
		if err := os.MkdirAll(src+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte(hello+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "init"), init, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "root.img")
	run(t, "mkfs.erofs", "--quiet", "-T0", "--all-root", img, src)
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size()%verity.BlockSize != 0 {
		t.Fatalf("erofs image is %d bytes, not whole blocks", fi.Size())
	}
	blocks := uint64(fi.Size()) / verity.BlockSize
	hashOff := fmt.Sprint(fi.Size())
	out := run(t, "veritysetup", "format", "--data-blocks="+fmt.Sprint(blocks), "--hash-offset="+hashOff, img, img)
	root, salt := field(t, out, "Root hash:"), field(t, out, "Salt:")
	run(t, "veritysetup", "verify", "--data-blocks="+fmt.Sprint(blocks), "--hash-offset="+hashOff, img, img, root)
	p, err := verity.ParseParams(fmt.Sprintf("%d:%d:%s:%s", blocks, blocks+1, salt, root))
	if err != nil {
		t.Fatal(err)
	}
	return img, p
}

func field(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q in:\n%s", key, out)
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// gptDisk writes a GPT disk with sfdisk: partition 1 a small ESP-typed
// placeholder, partition 2 the root image, named rootPartUUID.
func gptDisk(t *testing.T, img string) string {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sectors := (len(b) + 1<<20 - 1) / (1 << 20) * 2048
	disk := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(4096+sectors+2048) * 512); err != nil {
		t.Fatal(err)
	}
	script := "label: gpt\n" +
		"start=2048, size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp\n" +
		fmt.Sprintf("start=4096, size=%d, type=4f68bce3-e8cd-4db1-96e7-fbcaf984b709, uuid=%s, name=root-a\n", sectors, rootPartUUID)
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", disk)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	if _, err := f.WriteAt(b, 4096*512); err != nil {
		t.Fatal(err)
	}
	return disk
}

// makeInitrd packs the guest as /init, the root modules with their
// dependencies under /lib/modules/<release>, and, if img is set, the root
// image as /root.img.
func makeInitrd(t *testing.T, init []byte, img string) string {
	t.Helper()
	modDir := testkernel.ModulesDir(t)
	release := filepath.Base(modDir)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(init), 0o755),
	}
	dirs := map[string]bool{}
	var files []cpio.Record
	for _, rel := range qemutest.ModuleFiles(t, modDir, stage0.RootModules...) {
		b, err := os.ReadFile(filepath.Join(modDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join("lib/modules", release, rel)
		for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
		files = append(files, cpio.StaticFile(name, string(b), 0o644))
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) { // parents first
		recs = append(recs, cpio.Directory(d, 0o755))
	}
	recs = append(recs, files...)
	if img != "" {
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, cpio.StaticFile("root.img", string(b), 0o444))
	}
	out := filepath.Join(t.TempDir(), "initrd.cpio")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	w := cpio.Newc.Writer(f)
	if err := cpio.WriteRecords(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}
