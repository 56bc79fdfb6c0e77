package scan

import (
	"bytes"
	"context"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// FuzzReadInitrd feeds initrds (newc cpio, gzip, zstd, concatenated) to
// the artifact reader: it must never panic, never decompress past its
// limit, and put only clean paths in the tree.
func FuzzReadInitrd(f *testing.F) {
	t := rootfs.New()
	t.Put(&rootfs.Entry{Path: "etc/passwd", Kind: rootfs.KindFile, Mode: 0o644, Size: 5, Content: rootfs.Content{Data: []byte("root\n")}})
	t.Put(&rootfs.Entry{Path: "bin/sh", Kind: rootfs.KindSymlink, Link: "busybox"})
	t.Put(&rootfs.Entry{Path: "dev/null", Kind: rootfs.KindCharDev, Mode: 0o666, Major: 1, Minor: 3})
	for _, c := range []output.Compression{output.None, output.Gzip, output.Zstd} {
		var buf bytes.Buffer
		if err := output.WriteInitrd(context.Background(), &buf, t, output.WithCompression(c)); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	o := &readOptions{maxSize: 4 << 20, maxRatio: DefaultMaxRatio}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := readInitrd(data, o)
		if err != nil {
			return
		}
		_ = tr.Walk(func(e *rootfs.Entry) error {
			if c, ok := rootfs.Clean(e.Path); !ok || c != e.Path {
				t.Fatalf("entry path %q is not clean", e.Path)
			}
			if int64(len(e.Content.Data)) > o.maxSize {
				t.Fatalf("%s: %d bytes, past the limit", e.Path, len(e.Content.Data))
			}
			return nil
		})
	})
}
