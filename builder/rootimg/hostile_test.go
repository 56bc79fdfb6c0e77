package rootimg

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

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
