package rootimg

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	erofs "github.com/erofs/go-erofs"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// The layer: a hard link to a (dangling) symbolic link. tar kept
// it, the root image failed with "reading back erofs: stat s"; now the
// link is a second symbolic link and the image reads back.
func TestHardLinkToSymlink(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "missing", Mode: 0o777},
		{Name: "h", Typeflag: tar.TypeLink, Linkname: "s", Mode: 0o777},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	lp := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(lp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := rootfs.New()
	if err := rootfs.ApplyLayer(tr, "", resolve.Layer{Path: lp}); err != nil {
		t.Fatal(err)
	}
	p, _ := writeImage(t, tr)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(Source{Data: raw}, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s", "h"} {
		if e := got.Get(name); e == nil || e.Kind != rootfs.KindSymlink || e.Link != "missing" {
			t.Errorf("%s: %+v", name, e)
		}
	}
}

// An image whose directory a/b is, on disk, directory a again (a loop)
// is refused instead of walked forever.
func TestReadRefusesDirectoryLoop(t *testing.T) {
	tr := rootfs.New()
	tr.Put(&rootfs.Entry{Path: "a/b", Kind: rootfs.KindDir, Mode: 0o755})
	tr.Put(&rootfs.Entry{Path: "a/f", Kind: rootfs.KindFile, Mode: 0o644, Size: 1, Content: rootfs.Content{Data: []byte("x")}})
	p, _ := writeImage(t, tr)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := erofs.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	a, err := nid(img, "a")
	if err != nil {
		t.Fatal(err)
	}
	var sb [64]byte
	if err := readAt(f, sb[:], sbOffset); err != nil {
		t.Fatal(err)
	}
	geo := geometry{blockSize: int64(1) << sb[12], metaAddr: int64(binary.LittleEndian.Uint32(sb[40:]))}
	off, err := geo.findDirent(f, a, "b")
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], a)
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Read(Source{R: f, Blob: p}, "loop"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "a/b: directory loop") {
			t.Fatalf("error %v, want a directory loop", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read walked the loop")
	}
}
