package rootimg

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/erofs/go-erofs"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/internal/host/stage0"
)

const mtime = 1700000000

// testTree builds a small root with every kind of entry Write must keep.
// The big file lives in a blob at an offset, like a layer in the store.
func testTree(t *testing.T) (*rootfs.Tree, map[string][]byte) {
	t.Helper()
	big := randomBytes(3<<20+123, 1)
	blob := filepath.Join(t.TempDir(), "layer")
	if err := os.WriteFile(blob, append(bytes.Repeat([]byte{9}, 100), big...), 0o644); err != nil {
		t.Fatal(err)
	}
	contents := map[string][]byte{
		"etc/hostname":        []byte("bulkhead\n"),
		"etc/empty":           nil,
		"usr/lib/big":         big,
		"bin/su":              []byte("#!setuid\n"),
		"home/user/notes.txt": []byte("owned by 1000\n"),
	}
	tr := rootfs.New()
	put := func(e *rootfs.Entry) {
		e.ModTime = mtime
		tr.Put(e)
	}
	file := func(p string, mode uint32, uid int) {
		put(&rootfs.Entry{Path: p, Kind: rootfs.KindFile, Mode: mode, UID: uid, GID: uid,
			Size: int64(len(contents[p])), Content: rootfs.Content{Data: contents[p]}})
	}
	put(&rootfs.Entry{Path: "home/user", Kind: rootfs.KindDir, Mode: 0o700, UID: 1000, GID: 1000})
	put(&rootfs.Entry{Path: "tmp", Kind: rootfs.KindDir, Mode: 0o1777})
	put(&rootfs.Entry{Path: "dev", Kind: rootfs.KindDir, Mode: 0o755})
	file("etc/hostname", 0o644, 0)
	file("etc/empty", 0o600, 0)
	file("bin/su", 0o4755, 0)
	file("home/user/notes.txt", 0o640, 1000)
	put(&rootfs.Entry{Path: "usr/lib/big", Kind: rootfs.KindFile, Mode: 0o644, Size: int64(len(big)),
		Content: rootfs.Content{Blob: blob, Offset: 100}})
	tr.Get("etc/hostname").Xattrs = map[string]string{"user.origin": "spec", "trusted.overlay.opaque": "y"}
	tr.Get("").Xattrs = map[string]string{"user.root": "1"}
	put(&rootfs.Entry{Path: "bin/sh", Kind: rootfs.KindSymlink, Mode: 0o777, Link: "su"})
	put(&rootfs.Entry{Path: "bin/su2", Kind: rootfs.KindHardlink, Link: "bin/su"})
	put(&rootfs.Entry{Path: "dev/null", Kind: rootfs.KindCharDev, Mode: 0o666, Major: 1, Minor: 3})
	put(&rootfs.Entry{Path: "dev/sda", Kind: rootfs.KindBlockDev, Mode: 0o660, GID: 6, Major: 8, Minor: 300})
	return tr, contents
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n+8)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

func writeImage(t *testing.T, tr *rootfs.Tree, opts ...Option) (string, *Image) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "root.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := Write(t.Context(), tr, f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p, img
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required (apt-get install erofs-utils cryptsetup-bin): %v", name, err)
	}
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestWriteExtractsWithErofsUtils(t *testing.T) {
	tr, contents := testTree(t)
	p, img := writeImage(t, tr, WithEpoch(mtime))
	if want := []string{"/proc", "/sys", "/run", "/var"}; !slices.Equal(img.Added, want) {
		t.Errorf("added mount points %v, want %v", img.Added, want)
	}
	st, _ := os.Stat(p)
	if st.Size() != img.Size || img.FSSize%4096 != 0 || img.Verity.HashStart != uint64(img.FSSize/4096)+1 {
		t.Fatalf("file %d bytes, image %+v", st.Size(), img)
	}
	dir := filepath.Join(t.TempDir(), "x")
	run(t, "fsck.erofs", "--extract="+dir, "--preserve", p)

	for name, want := range contents {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(got), err, len(want))
		}
	}
	for _, c := range []struct {
		path     string
		mode     fs.FileMode
		uid, gid uint32
	}{
		{".", fs.ModeDir | 0o755, 0, 0},
		{"etc/hostname", 0o644, 0, 0},
		{"etc/empty", 0o600, 0, 0},
		{"bin/su", 0o755, 0, 0}, // fsck.erofs 1.5 chowns after chmod, which drops setuid: see checkRawMode
		{"home/user", fs.ModeDir | 0o700, 1000, 1000},
		{"home/user/notes.txt", 0o640, 1000, 1000},
		{"tmp", fs.ModeDir | fs.ModeSticky | 0o777, 0, 0},
		{"proc", fs.ModeDir | 0o755, 0, 0},
		{"var", fs.ModeDir | 0o755, 0, 0},
		{"bin/sh", fs.ModeSymlink | 0o777, 0, 0},
		{"dev/null", fs.ModeDevice | fs.ModeCharDevice | 0o666, 0, 0},
		{"dev/sda", fs.ModeDevice | 0o660, 0, 6},
	} {
		fi, err := os.Lstat(filepath.Join(dir, c.path))
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || sys.Uid != c.uid || sys.Gid != c.gid {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", c.path, fi.Mode(), sys.Uid, sys.Gid, c.mode, c.uid, c.gid)
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "su" {
		t.Errorf("bin/sh -> %q (%v)", l, err)
	}
	for p, dev := range map[string][2]uint32{"dev/null": {1, 3}, "dev/sda": {8, 300}} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		rdev := fi.Sys().(*syscall.Stat_t).Rdev
		if maj, min := unixMajor(rdev), unixMinor(rdev); maj != dev[0] || min != dev[1] {
			t.Errorf("%s: device %d:%d, want %d:%d", p, maj, min, dev[0], dev[1])
		}
	}
	checkHardLink(t, p)
	checkRawMode(t, p, "/bin/su", 0o104755)
	checkRawMode(t, p, "/tmp", 0o41777)
	checkXattrs(t, p)
	checkMtime(t, dir)
}

func unixMajor(d uint64) uint32 { return uint32((d>>8)&0xfff | (d>>32)&^0xfff) }
func unixMinor(d uint64) uint32 { return uint32(d&0xff | (d>>12)&^0xff) }

// checkHardLink asks dump.erofs for the inode behind both names.
func checkHardLink(t *testing.T, img string) {
	t.Helper()
	re := regexp.MustCompile(`NID: (\d+)`)
	nidOf := func(p string) string {
		out := run(t, "dump.erofs", "--path="+p, img)
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dump.erofs %s: no NID in\n%s", p, out)
		}
		if !strings.Contains(out, "Links: 2") {
			t.Errorf("dump.erofs %s: want 2 links:\n%s", p, out)
		}
		return m[1]
	}
	if a, b := nidOf("/bin/su"), nidOf("/bin/su2"); a != b {
		t.Errorf("bin/su is inode %s, bin/su2 is inode %s: not a hard link", a, b)
	}
}

// checkRawMode reads the i_mode of the inode dump.erofs finds for p straight
// from the image, since erofs-utils 1.5 shows and extracts no setuid bit.
func checkRawMode(t *testing.T, img, p string, want uint16) {
	t.Helper()
	out := run(t, "dump.erofs", "--path="+p, img)
	m := regexp.MustCompile(`NID: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dump.erofs %s: no NID in\n%s", p, out)
	}
	nid, _ := strconv.ParseInt(m[1], 10, 64)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	meta := int64(binary.LittleEndian.Uint32(b[1024+40:]))
	pos := meta<<b[1024+12] + nid*32
	if got := binary.LittleEndian.Uint16(b[pos+4:]); got != want {
		t.Errorf("%s: on-disk mode %o, want %o", p, got, want)
	}
}

// checkXattrs reads the xattrs back (erofs-utils' fsck does not extract
// them).
func checkXattrs(t *testing.T, img string) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	efs, err := erofs.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := fs.Stat(efs, "etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	got := fi.Sys().(*erofs.Stat).Xattrs
	if got["user.origin"] != "spec" || got["trusted.overlay.opaque"] != "y" || len(got) != 2 {
		t.Errorf("xattrs %v", got)
	}
	fi, err = fs.Stat(efs, ".")
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Sys().(*erofs.Stat).Xattrs; got["user.root"] != "1" || len(got) != 1 {
		t.Errorf("root xattrs %v", got)
	}
}

func checkMtime(t *testing.T, dir string) {
	t.Helper()
	for _, p := range []string{"etc/hostname", "usr/lib/big", "proc"} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.ModTime().Unix() != mtime {
			t.Errorf("%s: mtime %d, want %d", p, fi.ModTime().Unix(), mtime)
		}
	}
}

func TestWriteVerifiesWithVeritysetup(t *testing.T) {
	tr, _ := testTree(t)
	p, img := writeImage(t, tr)
	root := hex.EncodeToString(img.Verity.RootHash)
	off := fmt.Sprint(img.FSSize)
	run(t, "veritysetup", "verify", "--hash-offset="+off, p, p, root)
	if img.Verity.DataBlocks != uint64(img.FSSize/4096) {
		t.Fatalf("data blocks %d for %d bytes", img.Verity.DataBlocks, img.FSSize)
	}

	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, 5000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.CommandContext(t.Context(), "veritysetup", "verify", "--hash-offset="+off, p, p, root).CombinedOutput(); err == nil {
		t.Fatalf("veritysetup verify passed on a corrupted image:\n%s", out)
	}
}

func TestWriteReproducible(t *testing.T) {
	tr, _ := testTree(t)
	a, imgA := writeImage(t, tr, WithEpoch(mtime))
	tr2, _ := testTree(t)
	b, imgB := writeImage(t, tr2, WithEpoch(mtime))
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) || imgA.Verity.String() != imgB.Verity.String() {
		t.Fatal("two writes of the same tree differ")
	}
	// A third write over a file holding junk gives the same bytes.
	junk := filepath.Join(t.TempDir(), "junk.img")
	if err := os.WriteFile(junk, bytes.Repeat([]byte{0xaa}, len(ba)+10000), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(junk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(t.Context(), tr, f, WithEpoch(mtime)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	bc, _ := os.ReadFile(junk)
	if !bytes.Equal(ba, bc) {
		t.Fatal("writing over an old file gives different bytes")
	}
	// Golden: changes only with the on-disk layout (e.g. a new go-erofs)
	// or the salt's derivation.
	const golden = "c6344e9677d61aee007f4563ed9041a7771f46f6ae4e232ca22782a08ba6fe8f"
	if sum := sha256.Sum256(ba); hex.EncodeToString(sum[:]) != golden {
		t.Errorf("image sha256 %x, golden %s (verity %s)", sum, golden, imgA.Verity)
	}
}

func TestWriteRejectsMountPointFile(t *testing.T) {
	tr := rootfs.New()
	tr.Put(&rootfs.Entry{Path: "var", Kind: rootfs.KindSymlink, Mode: 0o777, Link: "data"})
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Write(t.Context(), tr, f); err == nil || !strings.Contains(err.Error(), "mount point /var") {
		t.Fatalf("got %v, want a mount point error", err)
	}
}

func TestMountPointsMatchStage0(t *testing.T) {
	var want []string
	for _, m := range stage0.MountPoints {
		want = append(want, strings.TrimPrefix(m, "/"))
	}
	if !slices.Equal(MountPoints, want) {
		t.Fatalf("MountPoints %v, stage0 has %v", MountPoints, stage0.MountPoints)
	}
}
