package rootfs

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tf is one entry of a test tar.
type tf struct {
	hdr  tar.Header
	data string
}

func reg(name, data string, mode int64) tf {
	return tf{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)}, data}
}

func dir(name string, mode int64) tf {
	return tf{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode, ModTime: time.Unix(1700000000, 0)}}
}

func symlink(name, target string) tf {
	return tf{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) tf {
	return tf{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}}
}

// tarBytes writes entries as a tar archive.
func tarBytes(t testing.TB, entries ...tf) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("writing header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatalf("writing %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeLayer stores data as a layer file in dir, named by its digest.
func writeLayer(t testing.TB, dir string, data []byte) resolve.Layer {
	t.Helper()
	sum := sha256.Sum256(data)
	h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum)}
	p := filepath.Join(dir, h.Hex+".tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return resolve.Layer{Digest: h, DiffID: h, Path: p, Size: int64(len(data))}
}

func layer(t testing.TB, entries ...tf) resolve.Layer {
	t.Helper()
	return writeLayer(t, t.TempDir(), tarBytes(t, entries...))
}

func readAll(t testing.TB, e *Entry) string {
	t.Helper()
	rc, err := e.Open()
	if err != nil {
		t.Fatalf("opening %s: %v", e.Path, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", e.Path, err)
	}
	return string(b)
}

func paths(tr *Tree) []string {
	var out []string
	_ = tr.Walk(func(e *Entry) error { out = append(out, e.Path); return nil })
	return out
}

func TestApplyLayerWhiteouts(t *testing.T) {
	l1 := layer(t,
		dir("etc/", 0o755),
		reg("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644),
		reg("etc/shadow", "secret", 0o600),
		dir("var/", 0o755),
		dir("var/lib/", 0o755),
		reg("var/lib/a", "a", 0o644),
		dir("var/lib/sub/", 0o755),
		reg("var/lib/sub/b", "b", 0o644),
		dir("opt/", 0o711),
		reg("opt/x", "x", 0o644),
	)
	l2 := layer(t,
		reg("etc/.wh.shadow", "", 0o644),
		// the new file comes before the opaque marker: it must survive it
		reg("var/lib/new", "new", 0o644),
		reg("var/lib/.wh..wh..opq", "", 0o644),
		reg(".wh.opt", "", 0o644),
		dir("opt/", 0o755),
		reg("opt/y", "y", 0o644),
	)
	tr := New()
	for _, l := range []resolve.Layer{l1, l2} {
		if err := ApplyLayer(tr, "", l); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"", "etc", "etc/passwd", "opt", "opt/y", "var", "var/lib", "var/lib/new"}
	if got := paths(tr); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paths = %v, want %v", got, want)
	}
	if m := tr.Get("var/lib").Mode; m != 0o755 {
		t.Errorf("opaque dir mode %o", m)
	}
	if m := tr.Get("opt").Mode; m != 0o755 {
		t.Errorf("opt mode %o, want the new layer's 0755", m)
	}
	if got := readAll(t, tr.Get("var/lib/new")); got != "new" {
		t.Errorf("var/lib/new = %q", got)
	}
}

func TestApplyLayerMetadata(t *testing.T) {
	suid := reg("usr/bin/su", "#!su", 0o4755)
	suid.hdr.Uid, suid.hdr.Gid = 0, 0
	sgid := reg("usr/bin/wall", "wall", 0o2755)
	sgid.hdr.Gid = 5
	sticky := dir("tmp/", 0o1777)
	owned := reg("home/u/f", "f", 0o640)
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1001
	owned.hdr.Uname, owned.hdr.Gname = "u", "g"
	xa := reg("usr/bin/ping", "ping", 0o755)
	xa.hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00", "SCHILY.xattr.user.x": "y"}
	xa.hdr.Format = tar.FormatPAX
	null := tf{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}}
	sda := tf{hdr: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Gid: 6, Devmajor: 8, Devminor: 0}}
	fifo := tf{hdr: tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}}
	future := reg("late", "late", 0o644)
	future.hdr.ModTime = time.Unix(2000000000, 0)
	l := layer(t, suid, sgid, sticky, owned, xa, null, sda, fifo, future,
		hardlink("usr/bin/sudo", "usr/bin/su"),
		hardlink("usr/bin/sudo2", "/usr/bin/sudo"), // absolute, and a link to a link
		symlink("bin", "usr/bin"),
		symlink("escape", "../../../../etc/shadow"),
	)
	tr := New()
	if err := ApplyLayer(tr, "img", l, WithEpoch(1800000000), WithOrigin("alpine@sha256:1")); err != nil {
		t.Fatal(err)
	}
	check := func(p string, kind Kind, mode uint32, uid, gid int) *Entry {
		t.Helper()
		e := tr.Get(p)
		if e == nil {
			t.Fatalf("%s missing", p)
		}
		if e.Kind != kind || e.Mode != mode || e.UID != uid || e.GID != gid {
			t.Errorf("%s: kind %d mode %o owner %d:%d, want kind %d mode %o owner %d:%d", p, e.Kind, e.Mode, e.UID, e.GID, kind, mode, uid, gid)
		}
		return e
	}
	check("img/usr/bin/su", KindFile, 0o4755, 0, 0)
	check("img/usr/bin/wall", KindFile, 0o2755, 0, 5)
	check("img/tmp", KindDir, 0o1777, 0, 0)
	check("img/home/u/f", KindFile, 0o640, 1000, 1001)
	if e := check("img/dev/null", KindCharDev, 0o666, 0, 0); e.Major != 1 || e.Minor != 3 {
		t.Errorf("dev/null %d:%d", e.Major, e.Minor)
	}
	if e := check("img/dev/sda", KindBlockDev, 0o660, 0, 6); e.Major != 8 || e.Minor != 0 {
		t.Errorf("dev/sda %d:%d", e.Major, e.Minor)
	}
	check("img/run/fifo", KindFIFO, 0o600, 0, 0)
	ping := check("img/usr/bin/ping", KindFile, 0o755, 0, 0)
	if ping.Xattrs["security.capability"] != "\x01\x00\x00\x02\x00\x20\x00\x00" || ping.Xattrs["user.x"] != "y" || len(ping.Xattrs) != 2 {
		t.Errorf("xattrs = %q", ping.Xattrs)
	}
	for _, p := range []string{"img/usr/bin/sudo", "img/usr/bin/sudo2"} {
		e := check(p, KindHardlink, 0o644, 0, 0)
		if e.Link != "img/usr/bin/su" {
			t.Errorf("%s links to %q", p, e.Link)
		}
		if got := readAll(t, e); got != "#!su" {
			t.Errorf("%s reads %q", p, got)
		}
	}
	if e := check("img/escape", KindSymlink, 0o777, 0, 0); e.Link != "../../../../etc/shadow" {
		t.Errorf("symlink recorded as %q", e.Link)
	}
	if e := tr.Get("img/bin"); e.Link != "usr/bin" {
		t.Errorf("bin -> %q", e.Link)
	}
	if e := tr.Get("img/late"); e.ModTime != 1800000000 {
		t.Errorf("late mtime %d, want clamped", e.ModTime)
	}
	if e := tr.Get("img/usr/bin/su"); e.ModTime != 1700000000 || e.Origin != "alpine@sha256:1" {
		t.Errorf("su mtime %d origin %q", e.ModTime, e.Origin)
	}
}

func TestApplyLayerContentByteExact(t *testing.T) {
	// sizes around the 512-byte block boundary, a large one, and binary data
	var entries []tf
	want := map[string]string{}
	for i, n := range []int{0, 1, 511, 512, 513, 4096, 1 << 20} {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(j*7 + i)
		}
		name := fmt.Sprintf("f%d", i)
		entries = append(entries, reg(name, string(b), 0o644))
		want[name] = string(b)
	}
	long := reg(strings.Repeat("d/", 80)+"long-name", "long", 0o644) // needs a PAX/GNU long name header
	entries = append(entries, long)
	want[strings.Repeat("d/", 80)+"long-name"] = "long"
	l := layer(t, entries...)
	tr := New()
	if err := ApplyLayer(tr, "", l); err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		e := tr.Get(name)
		if e == nil {
			t.Fatalf("%s missing", name)
		}
		if e.Content.Data != nil || e.Content.Blob != l.Path {
			t.Errorf("%s: content not addressed in the layer: %+v", name, e.Content)
		}
		if got := readAll(t, e); got != w {
			t.Errorf("%s: read %d bytes, differ from the %d written", name, len(got), len(w))
		}
	}
}

func TestApplyLayerRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tf
		want    string
	}{
		{"dotdot", []tf{reg("a/../../etc/passwd", "x", 0o644)}, "escapes"},
		{"leading dotdot", []tf{reg("../x", "x", 0o644)}, "escapes"},
		{"hardlink escape", []tf{reg("a", "a", 0o644), hardlink("b", "../../etc/shadow")}, "escapes"},
		{"hardlink missing", []tf{hardlink("b", "nothing")}, "does not exist"},
		{"hardlink to dir", []tf{dir("d/", 0o755), hardlink("b", "d")}, "directory"},
		{"hardlink to itself", []tf{reg("a", "a", 0o644), hardlink("a", "a")}, "itself"},
		{"name too long", []tf{reg(strings.Repeat("a/", 2049)+"f", "x", 0o644)}, "PATH_MAX"},
		{"root not a dir", []tf{reg(".", "x", 0o644)}, "root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := layer(t, tc.entries...)
			err := ApplyLayer(New(), "p", l)
			if err == nil {
				t.Fatal("applied")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), l.Digest.String()) {
				t.Errorf("error %q does not say %q and name the layer", err, tc.want)
			}
		})
	}
}

func TestApplyLayerRejectsSparse(t *testing.T) {
	// Sparse files as GNU tar writes them (old GNU and PAX 1.0 forms): their
	// data is not one contiguous region of the layer.
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "pax"} {
		out := filepath.Join(dir, format+".tar")
		cmd := exec.Command("tar", "--sparse", "--format="+format, "-cf", out, "-C", dir, "f")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar: %v: %s", err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		l := writeLayer(t, t.TempDir(), data)
		err = ApplyLayer(New(), "", l)
		if !errors.Is(err, errSparse) {
			t.Fatalf("%s: err = %v, want sparse rejected", format, err)
		}
		if !strings.Contains(err.Error(), "sparse") || !strings.Contains(err.Error(), l.Digest.String()) {
			t.Errorf("%s: error %q", format, err)
		}
	}
}

func TestApplyLayerTruncated(t *testing.T) {
	data := tarBytes(t, reg("a", strings.Repeat("x", 4000), 0o644))
	l := writeLayer(t, t.TempDir(), data[:1500])
	if err := ApplyLayer(New(), "", l); err == nil {
		t.Fatal("truncated layer applied")
	}
}

// TestApplyLayerGNUTar reads archives GNU tar writes, in each of its
// formats, and checks every file reads back byte for byte.
func TestApplyLayerGNUTar(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{
		"a":                              "short",
		"sub/block":                      strings.Repeat("0123456789abcdef", 32), // exactly 512 bytes
		"sub/odd":                        strings.Repeat("x", 1000),
		"sub/" + strings.Repeat("n", 90): "long-ish name",
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "a"), 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "sub/odd"), filepath.Join(src, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/odd", filepath.Join(src, "soft")); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "posix", "ustar", "oldgnu"} {
		out := filepath.Join(t.TempDir(), "l.tar")
		cmd := exec.Command("tar", "--format="+format, "--owner=0", "--group=0", "--numeric-owner", "-cf", out, "-C", src, ".")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar %s: %v: %s", format, err, b)
		}
		tr := New()
		if err := ApplyLayer(tr, "", resolve.Layer{Path: out}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for name, data := range files {
			e := tr.Get(name)
			if e == nil {
				t.Fatalf("%s: %s missing", format, name)
			}
			if got := readAll(t, e); got != data {
				t.Errorf("%s: %s reads %q", format, name, got)
			}
		}
		if e := tr.Get("a"); e.Mode != 0o4755 {
			t.Errorf("%s: a mode %o", format, e.Mode)
		}
		// GNU tar stores the second name it meets as the link
		hard, odd := tr.Get("hard"), tr.Get("sub/odd")
		if hard.Kind != KindHardlink && odd.Kind != KindHardlink {
			t.Errorf("%s: no hard link between hard and sub/odd", format)
		}
		if readAll(t, hard) != files["sub/odd"] {
			t.Errorf("%s: hard link content differs", format)
		}
		if e := tr.Get("soft"); e.Kind != KindSymlink || e.Link != "sub/odd" {
			t.Errorf("%s: soft = %+v", format, e)
		}
	}
}
