package rootimg

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// TestReadRoundTrip writes the test tree and reads it back, from the file
// (contents as references into it), from an image in memory (contents as
// slices of it) and through a bare io.ReaderAt (contents copied):
// every entry comes back with its kind, mode, owner, size, link, device
// numbers, time and content, plus the mount points Write added.
func TestReadRoundTrip(t *testing.T) {
	tr, contents := testTree(t)
	p, img := writeImage(t, tr)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, src := range map[string]Source{
		"file":   {R: f, Blob: p},
		"slice":  {Data: bytes.Clone(raw)},
		"memory": {R: bytes.NewReader(raw)},
	} {
		got, err := Read(src, "test")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tr.Walk(func(want *rootfs.Entry) error {
			e := got.Get(want.Path)
			if e == nil {
				t.Errorf("%s: %q missing", name, want.Path)
				return nil
			}
			if want.Kind == rootfs.KindHardlink {
				if e.Kind != want.Kind || e.Link != want.Link {
					t.Errorf("%s: hard link %q = %+v, want to %s", name, want.Path, *e, want.Link)
				}
				return nil
			}
			if e.Kind != want.Kind || e.Mode != want.Mode || e.UID != want.UID || e.GID != want.GID ||
				e.Link != want.Link || e.Major != want.Major || e.Minor != want.Minor || e.ModTime != want.ModTime {
				t.Errorf("%s: %q = %+v\nwant %+v", name, want.Path, *e, *want)
			}
			if c, ok := contents[want.Path]; ok {
				if b := readAll(t, e); !bytes.Equal(b, c) {
					t.Errorf("%s: %q content differs (%d bytes, want %d)", name, want.Path, len(b), len(c))
				}
			}
			return nil
		})
		if got.Len() != tr.Len()+len(img.Added) {
			t.Errorf("%s: %d entries, want %d (+%v)", name, got.Len(), tr.Len(), img.Added)
		}
		big := got.Get("usr/lib/big").Content
		if name == "file" && big.Blob != p {
			t.Errorf("%s: the big file is not a reference into the image: %+v", name, big.Blob)
		}
		if name == "slice" {
			// The contents are slices of the image: clearing it clears them.
			clear(src.Data)
			if big.Data == nil || !bytes.Equal(big.Data, make([]byte, len(big.Data))) {
				t.Errorf("%s: the big file's data is not a slice of the image", name)
			}
		}
	}
	if _, err := Read(Source{R: bytes.NewReader(make([]byte, 8192))}, "x"); err == nil {
		t.Error("Read of zeros succeeded")
	}
}

func readAll(t *testing.T, e *rootfs.Entry) []byte {
	t.Helper()
	rc, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
