package rootfs

import (
	"archive/tar"
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

func FuzzApplyLayer(f *testing.F) {
	xa := reg("x", "x", 0o644)
	xa.hdr.Format = tar.FormatPAX
	xa.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "b"}
	for _, seed := range [][]tf{
		{dir("etc/", 0o755), reg("etc/passwd", "root:x:0:0::/:/bin/sh\n", 0o644), symlink("bin", "usr/bin")},
		{reg("a/b", "b", 0o644), reg("a/.wh..wh..opq", "", 0), reg(".wh.c", "", 0), reg("a/.wh.b", "", 0)},
		{reg("f", "data", 0o4755), hardlink("g", "f"), hardlink("h", "/g")},
		{{hdr: tarHeaderChar("dev/null", 1, 3)}, xa, reg(".", "", 0o755)},
		{reg(strings.Repeat("long/", 40)+"f", "long", 0o600)},
	} {
		f.Add(tarBytes(f, seed...))
	}
	// a lower layer for whiteouts and hard links to act on
	lower := writeLayer(f, f.TempDir(), tarBytes(f, dir("etc/", 0o755), reg("etc/passwd", "p", 0o644), reg("f", "f", 0o644)))
	work := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// one file per worker, rewritten for each input: inputs run one at
		// a time in a worker
		l := resolve.Layer{Path: filepath.Join(work, "layer.tar")}
		if err := os.WriteFile(l.Path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		tr := New()
		if err := ApplyLayer(tr, "p/q", lower); err != nil {
			t.Fatal(err)
		}
		err := ApplyLayer(tr, "p/q", l)
		checkIndex(t, tr)
		_ = tr.Walk(func(e *Entry) error {
			if c, ok := Clean(e.Path); !ok || c != e.Path {
				t.Fatalf("entry path %q is not clean", e.Path)
			}
			if !under(e.Path, "p/q") && e.Path != "" && e.Path != "p" {
				t.Fatalf("entry %q escapes the prefix", e.Path)
			}
			if e.Kind == KindHardlink && !under(e.Link, "p/q") {
				t.Fatalf("hard link %q -> %q escapes the prefix", e.Path, e.Link)
			}
			if err == nil && e.Kind == KindFile && e.Content.Blob == l.Path &&
				(e.Content.Offset < 0 || e.Size < 0 || e.Content.Offset+e.Size > int64(len(data))) {
				t.Fatalf("%s: content %d+%d outside the %d-byte layer", e.Path, e.Content.Offset, e.Size, len(data))
			}
			return nil
		})
	})
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// BenchmarkApplyLayer reads a generated layer of about 100 MB: 25,600 files
// of 4 KiB in 100 directories. The tree holds metadata only, so allocations
// grow with the number of entries, not with the bytes.
func BenchmarkApplyLayer(b *testing.B) {
	p := filepath.Join(b.TempDir(), "layer.tar")
	out, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(out)
	tw := tar.NewWriter(w)
	block := make([]byte, 4096)
	for d := range 100 {
		name := fmt.Sprintf("usr/share/d%d/", d)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			b.Fatal(err)
		}
		for i := range 256 {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%sf%d", name, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(block))}); err != nil {
				b.Fatal(err)
			}
			if _, err := tw.Write(block); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, err := out.Stat()
	if err != nil {
		b.Fatal(err)
	}
	out.Close()
	l := resolve.Layer{Path: p, Size: st.Size()}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tr := New()
		if err := ApplyLayer(tr, "", l); err != nil {
			b.Fatal(err)
		}
		if tr.Len() != 1+2+100+25600 {
			b.Fatalf("%d entries", tr.Len())
		}
	}
}
