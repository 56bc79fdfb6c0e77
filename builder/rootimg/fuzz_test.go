package rootimg

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// FuzzRead feeds EROFS images to Read: it must never panic or hang, and
// a tree it returns holds only clean paths whose in-memory contents lie
// inside the image.
func FuzzRead(f *testing.F) {
	tr := rootfs.New()
	tr.Put(&rootfs.Entry{Path: "etc/hostname", Kind: rootfs.KindFile, Mode: 0o644, Size: 5, Content: rootfs.Content{Data: []byte("host\n")}})
	tr.Put(&rootfs.Entry{Path: "bin/sh", Kind: rootfs.KindSymlink, Link: "busybox"})
	tr.Put(&rootfs.Entry{Path: "dev/null", Kind: rootfs.KindCharDev, Mode: 0o666, Major: 1, Minor: 3})
	p := filepath.Join(f.TempDir(), "root.img")
	out, err := os.Create(p)
	if err != nil {
		f.Fatal(err)
	}
	img, err := Write(f.Context(), tr, out)
	out.Close()
	if err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(data[:img.FSSize]))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		got, err := Read(Source{Data: data}, "fuzz")
		if err != nil {
			return
		}
		_ = got.Walk(func(e *rootfs.Entry) error {
			if c, ok := rootfs.Clean(e.Path); !ok || c != e.Path {
				t.Fatalf("entry path %q is not clean", e.Path)
			}
			if int64(len(e.Content.Data)) > int64(len(data)) {
				t.Fatalf("%s: %d bytes from a %d-byte image", e.Path, len(e.Content.Data), len(data))
			}
			return nil
		})
	})
}
