package scan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

// newcArchive writes records with u-root's writer and a trailer.
func newcArchive(t *testing.T, recs ...cpio.Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadNewcRecords reads every kind of record, a hard-linked pair and
// two concatenated archives (the later one wins), as the kernel does.
func TestReadNewcRecords(t *testing.T) {
	first := newcArchive(t,
		cpio.Directory("etc", 0o755),
		cpio.StaticFile("etc/motd", "old\n", 0o644),
		cpio.Symlink("bin/sh", "busybox"),
		cpio.CharDev("dev/null", 0o666, 1, 3),
		cpio.Record{Info: cpio.Info{Name: "a", Ino: 9, NLink: 2, Mode: cpio.S_IFREG | 0o755}, ReaderAt: strings.NewReader("")},
		cpio.Record{Info: cpio.Info{Name: "b", Ino: 9, NLink: 2, Mode: cpio.S_IFREG | 0o755, FileSize: 4}, ReaderAt: strings.NewReader("data")},
	)
	second := newcArchive(t, cpio.StaticFile("etc/motd", "new\n", 0o600))
	tr, err := readInitrd(append(first, second...), &readOptions{maxSize: 1 << 20, maxRatio: DefaultMaxRatio})
	if err != nil {
		t.Fatal(err)
	}
	if e := tr.Get("etc/motd"); e == nil || string(e.Content.Data) != "new\n" || e.Mode != 0o600 {
		t.Errorf("etc/motd = %+v", e)
	}
	if e := tr.Get("bin/sh"); e == nil || e.Link != "busybox" {
		t.Errorf("bin/sh = %+v", e)
	}
	if e := tr.Get("dev/null"); e == nil || e.Major != 1 || e.Minor != 3 {
		t.Errorf("dev/null = %+v", e)
	}
	if e := tr.Get("a"); e == nil || e.Link != "b" || string(e.Content.Data) != "data" {
		t.Errorf("hard link a = %+v", e)
	}
}

// TestReadNewcRefuses: a record the tree cannot hold is an error, never
// skipped, and so is an archive cut short or a name past the bound.
func TestReadNewcRefuses(t *testing.T) {
	o := &readOptions{maxSize: 1 << 20, maxRatio: DefaultMaxRatio}
	whiteout := cpio.Record{Info: cpio.Info{Name: "w", Mode: cpio.S_IFWHT}, ReaderAt: strings.NewReader("")}
	escape := newcArchive(t, cpio.StaticFile("zz", "y", 0o644))
	escape = bytes.Replace(escape, []byte("zz\x00"), []byte("..\x00"), 1) // u-root's writer cleans names
	ok := newcArchive(t, cpio.StaticFile("etc/motd", "hello\n", 0o644))
	long := bytes.Clone(ok)
	copy(long[94:102], "00100000")
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"unknown type":   {newcArchive(t, whiteout), "unknown file type"},
		"leaves root":    {escape, "leaves the root"},
		"no trailer":     {ok[:len(ok)-124], "without a trailer"},
		"data cut short": {ok[:120], ""},
		"long name":      {long, "more than 4096"},
	} {
		_, err := readInitrd(c.data, o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
}
