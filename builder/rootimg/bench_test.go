package rootimg

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// BenchmarkWrite writes a ~100 MB tree of about 1600 files in 40
// directories whose contents sit in one blob, like an unpacked layer.
func BenchmarkWrite(b *testing.B) {
	const total = 100 << 20
	blob := filepath.Join(b.TempDir(), "layer")
	if err := os.WriteFile(blob, randomBytes(total, 3), 0o644); err != nil {
		b.Fatal(err)
	}
	tr := rootfs.New()
	r := rand.New(rand.NewPCG(5, 6))
	var off int64
	for i := 0; off < total; i++ {
		size := min(int64(r.IntN(128<<10)), total-off)
		tr.Put(&rootfs.Entry{Path: fmt.Sprintf("usr/lib/d%02d/f%04d", i%40, i), Kind: rootfs.KindFile,
			Mode: 0o644, Size: size, Content: rootfs.Content{Blob: blob, Offset: off}})
		off += size
	}
	out, err := os.Create(filepath.Join(b.TempDir(), "root.img"))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	b.SetBytes(total)
	for b.Loop() {
		if _, err := Write(b.Context(), tr, out); err != nil {
			b.Fatal(err)
		}
	}
}
