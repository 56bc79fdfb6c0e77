package output

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

func writeTar(t *testing.T) (*rootfs.Tree, map[string]want, []byte) {
	t.Helper()
	tr, wants := testTree(t)
	tr.Put(&rootfs.Entry{Path: "run/sock", Kind: rootfs.KindSocket, Mode: 0o755, ModTime: testMTime})
	wants["run"] = want{typ: 0o040000, perm: 0o755, mtime: testMTime}
	var buf bytes.Buffer
	if err := WriteTar(context.Background(), &buf, tr); err != nil {
		t.Fatal(err)
	}
	return tr, wants, buf.Bytes()
}

var tarTypes = map[byte]uint32{
	tar.TypeReg: 0o100000, tar.TypeLink: 0o100000, tar.TypeDir: 0o040000, tar.TypeSymlink: 0o120000,
	tar.TypeChar: 0o020000, tar.TypeBlock: 0o060000, tar.TypeFifo: 0o010000,
}

func TestTarReadBack(t *testing.T) {
	tr, wants, raw := writeTar(t)
	r := tar.NewReader(bytes.NewReader(raw))
	var names []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		names = append(names, p)
		w, ok := wants[p]
		if !ok {
			t.Errorf("unexpected member %q", h.Name)
			continue
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		checkTarHeader(t, h, p, w, data)
	}
	walk := slices.DeleteFunc(walkOrder(tr), func(p string) bool { return p == "run/sock" })
	if !slices.Equal(names, walk) {
		t.Errorf("members\n got %q\nwant %q", names, walk)
	}
}

func checkTarHeader(t *testing.T, h *tar.Header, p string, w want, data []byte) {
	t.Helper()
	if tarTypes[h.Typeflag] != w.typ || h.Mode != int64(w.perm) {
		t.Errorf("%s: type %q mode %o, want %o", p, h.Typeflag, h.Mode, w.typ|w.perm)
	}
	if h.Uid != w.uid || h.Gid != w.gid || h.Uname != "" || h.Gname != "" {
		t.Errorf("%s: owner %d(%q):%d(%q), want %d:%d without names", p, h.Uid, h.Uname, h.Gid, h.Gname, w.uid, w.gid)
	}
	if h.ModTime.Unix() != w.mtime || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
		t.Errorf("%s: times %v %v %v, want mtime %d only", p, h.ModTime, h.AccessTime, h.ChangeTime, w.mtime)
	}
	if h.Devmajor != int64(w.major) || h.Devminor != int64(w.minor) {
		t.Errorf("%s: device %d:%d, want %d:%d", p, h.Devmajor, h.Devminor, w.major, w.minor)
	}
	switch {
	case p == "usr/bin/link":
		if !bytes.Equal(data, w.data) {
			t.Errorf("%s: first of the hard links has %d bytes, want %d", p, len(data), len(w.data))
		}
	case slices.Contains(hardLinked, p):
		if h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/link" {
			t.Errorf("%s: type %q to %q, want a hard link to usr/bin/link", p, h.Typeflag, h.Linkname)
		}
	case w.link != "" && h.Linkname != w.link:
		t.Errorf("%s: symlink to %q, want %q", p, h.Linkname, w.link)
	case w.typ == 0o100000 && !bytes.Equal(data, w.data):
		t.Errorf("%s: %d bytes, want %d", p, len(data), len(w.data))
	}
	if p == "usr/bin/ping" {
		if h.PAXRecords["SCHILY.xattr.security.capability"] != "\x01\x00\x00\x02\x00\x20\x00\x00" || h.PAXRecords["SCHILY.xattr.user.note"] != "x" {
			t.Errorf("%s: PAX records %q", p, h.PAXRecords)
		}
	}
}

func TestTarDeterministic(t *testing.T) {
	_, _, a := writeTar(t)
	_, _, b := writeTar(t)
	if !bytes.Equal(a, b) {
		t.Fatal("two writes differ")
	}
}

// TestTarGNUTar lists with GNU tar and unpacks the archive with it.
func TestTarGNUTar(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("unpacking device nodes and owners needs root (CI runs as root)")
	}
	_, wants, raw := writeTar(t)
	list := string(oracle(t, t.TempDir(), raw, "tar", "-t", "-v", "--numeric-owner", "-f", "-"))
	for _, want := range []string{
		"-rwsr-xr-x 0/0 " + strconv.Itoa(len(wants["usr/bin/link"].data)) + " 2023-11-14 22:13 usr/bin/link\n",
		"hrwsr-xr-x 0/0 0 2023-11-14 22:13 usr/bin/prog link to usr/bin/link\n",
		"crw-rw-rw- 0/0 1,3 2023-11-14 22:13 dev/null\n",
		"brw-rw---- 0/0 7,300 2023-11-14 22:13 dev/loop300\n",
		"lrwxrwxrwx 0/0 0 2023-11-14 22:13 bin -> usr/bin\n",
		"drwxrwsr-x 0/8 0 2023-11-14 22:13 var/mail/\n",
		"-rw-r----- 0/42 5 2009-02-13 23:31 etc/shadow\n",
	} {
		if !strings.Contains(squeeze(list), want) {
			t.Errorf("tar -tv lacks %q:\n%s", want, list)
		}
	}
	dir := t.TempDir()
	oracle(t, dir, raw, "tar", "-x", "-p", "--numeric-owner", "-f", "-")
	for p, w := range wants {
		checkOnDisk(t, filepath.Join(dir, p), p, w)
	}
}

// squeeze collapses runs of spaces, as tar aligns its columns.
func squeeze(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}
