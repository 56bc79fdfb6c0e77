package output

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/sys/unix"
)

func writeInitrd(t *testing.T, opts ...Option) []byte {
	t.Helper()
	tr, _ := testTree(t)
	var buf bytes.Buffer
	if err := WriteInitrd(context.Background(), &buf, tr, opts...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// oracle runs a real tool with stdin from in and returns its stdout.
func oracle(t *testing.T, dir string, in []byte, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not installed (apt-get install -y cpio zstd): %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func TestInitrdReadBackWithURoot(t *testing.T) {
	tr, wants := testTree(t)
	raw := writeInitrd(t, WithCompression(None))
	if !bytes.HasSuffix(bytes.TrimRight(raw, "\x00"), []byte("TRAILER!!!")) {
		t.Fatalf("archive does not end with the trailer: %q", raw[max(0, len(raw)-64):])
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	inos := map[uint64]string{}
	for _, r := range recs {
		p := strings.TrimPrefix(strings.TrimPrefix(r.Name, "."), "/")
		names = append(names, p)
		w, ok := wants[p]
		if !ok {
			t.Errorf("unexpected member %q", r.Name)
			continue
		}
		checkRecord(t, r, p, w)
		if other, dup := inos[r.Ino]; dup && !(slices.Contains(hardLinked, p) && slices.Contains(hardLinked, other)) {
			t.Errorf("%s and %s share ino %d", p, other, r.Ino)
		}
		inos[r.Ino] = p
	}
	if got, want := names, walkOrder(tr); !slices.Equal(got, want) {
		t.Errorf("members\n got %q\nwant %q", got, want)
	}
}

func checkRecord(t *testing.T, r cpio.Record, p string, w want) {
	t.Helper()
	if got, want := r.Mode, uint64(w.typ|w.perm); got != want {
		t.Errorf("%s: mode %o, want %o", p, got, want)
	}
	if r.UID != uint64(w.uid) || r.GID != uint64(w.gid) {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, r.UID, r.GID, w.uid, w.gid)
	}
	if r.MTime != uint64(w.mtime) {
		t.Errorf("%s: mtime %d, want %d", p, r.MTime, w.mtime)
	}
	if r.Rmajor != uint64(w.major) || r.Rminor != uint64(w.minor) {
		t.Errorf("%s: device %d:%d, want %d:%d", p, r.Rmajor, r.Rminor, w.major, w.minor)
	}
	data, err := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case w.link != "":
		if string(data) != w.link {
			t.Errorf("%s: symlink to %q, want %q", p, data, w.link)
		}
	case slices.Contains(hardLinked, p):
		if r.NLink != 3 {
			t.Errorf("%s: nlink %d, want 3", p, r.NLink)
		}
		last := p == hardLinked[len(hardLinked)-1]
		if last && !bytes.Equal(data, w.data) || !last && len(data) != 0 {
			t.Errorf("%s: %d bytes of data; want the data on the last link only", p, len(data))
		}
	case w.typ == 0o100000:
		if r.NLink != 1 || !bytes.Equal(data, w.data) {
			t.Errorf("%s: nlink %d, %d bytes; want 1, %d bytes", p, r.NLink, len(data), len(w.data))
		}
	case w.typ == 0o040000 && r.NLink < 2:
		t.Errorf("%s: directory nlink %d", p, r.NLink)
	}
}

func TestInitrdHardLinksShareIno(t *testing.T) {
	raw := writeInitrd(t, WithCompression(None))
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var inos []uint64
	for _, r := range recs {
		if slices.Contains(hardLinked, r.Name) {
			inos = append(inos, r.Ino)
		}
	}
	if len(inos) != 3 || inos[0] != inos[1] || inos[1] != inos[2] || inos[0] == 0 {
		t.Errorf("hard links have inos %v, want three equal non-zero", inos)
	}
}

// TestInitrdGNUCpio decompresses with zstd(1) and lists and unpacks with
// GNU cpio, then checks every file on disk.
func TestInitrdGNUCpio(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("unpacking device nodes and owners needs root (CI runs as root)")
	}
	_, wants := testTree(t)
	archive := oracle(t, t.TempDir(), writeInitrd(t), "zstd", "-d", "-c")
	if plain := writeInitrd(t, WithCompression(None)); !bytes.Equal(archive, plain) {
		t.Fatal("zstd -d output differs from the uncompressed archive")
	}
	list := string(oracle(t, t.TempDir(), archive, "cpio", "-i", "-t", "-v", "-n", "--quiet"))
	checkListing(t, list, wants)

	dir := t.TempDir()
	oracle(t, dir, archive, "cpio", "-i", "-d", "-m", "--quiet")
	for p, w := range wants {
		checkOnDisk(t, filepath.Join(dir, p), p, w)
	}
	var st [3]unix.Stat_t
	for i, p := range hardLinked {
		if err := unix.Lstat(filepath.Join(dir, p), &st[i]); err != nil {
			t.Fatal(err)
		}
	}
	if st[0].Ino != st[1].Ino || st[1].Ino != st[2].Ino || st[0].Nlink != 3 {
		t.Errorf("hard links unpacked as inodes %d %d %d, nlink %d", st[0].Ino, st[1].Ino, st[2].Ino, st[0].Nlink)
	}
}

// checkListing checks owners and device numbers in `cpio -tvn` output.
func checkListing(t *testing.T, list string, wants map[string]want) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := strings.Fields(line)
		name := f[len(f)-1]
		if f[0][0] == 'l' {
			name = f[len(f)-3]
		}
		p := strings.TrimPrefix(name, ".")
		p = strings.TrimPrefix(p, "/")
		w, ok := wants[p]
		if !ok {
			t.Errorf("cpio lists unexpected %q", line)
			continue
		}
		seen[p] = true
		if f[2] != strconv.Itoa(w.uid) || f[3] != strconv.Itoa(w.gid) {
			t.Errorf("cpio lists %q, want owner %d:%d", line, w.uid, w.gid)
		}
		if w.typ == 0o020000 || w.typ == 0o060000 {
			if f[4] != strconv.Itoa(int(w.major))+"," || f[5] != strconv.Itoa(int(w.minor)) {
				t.Errorf("cpio lists %q, want device %d,%d", line, w.major, w.minor)
			}
		}
	}
	if len(seen) != len(wants) {
		t.Errorf("cpio listed %d members, want %d", len(seen), len(wants))
	}
}

func checkOnDisk(t *testing.T, full, p string, w want) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if st.Mode != w.typ|w.perm {
		t.Errorf("%s: unpacked mode %o, want %o", p, st.Mode, w.typ|w.perm)
	}
	if int(st.Uid) != w.uid || int(st.Gid) != w.gid {
		t.Errorf("%s: unpacked owner %d:%d, want %d:%d", p, st.Uid, st.Gid, w.uid, w.gid)
	}
	if w.typ != 0o040000 && w.typ != 0o120000 && st.Mtim.Sec != w.mtime {
		t.Errorf("%s: unpacked mtime %d, want %d", p, st.Mtim.Sec, w.mtime)
	}
	switch w.typ {
	case 0o100000:
		data, err := os.ReadFile(full)
		if err != nil || !bytes.Equal(data, w.data) {
			t.Errorf("%s: unpacked %d bytes (%v), want %d", p, len(data), err, len(w.data))
		}
	case 0o120000:
		if got, _ := os.Readlink(full); got != w.link {
			t.Errorf("%s: unpacked symlink to %q, want %q", p, got, w.link)
		}
	case 0o020000, 0o060000:
		if unix.Major(st.Rdev) != w.major || unix.Minor(st.Rdev) != w.minor {
			t.Errorf("%s: unpacked device %d:%d, want %d:%d", p, unix.Major(st.Rdev), unix.Minor(st.Rdev), w.major, w.minor)
		}
	}
}
