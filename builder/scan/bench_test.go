package scan

import (
	"archive/tar"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// benchTree is a ~100 MB host: Go and C binaries, shared libraries,
// incompressible data and many small text files. The layer is written as
// it is generated, so the benchmark's memory is the scan's.
func benchTree(b *testing.B) (*rootfs.Tree, int64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	goBin := readFile(b, testGoBinary(b))
	dash := readFile(b, "/bin/dash")
	libz := readFile(b, "/lib/x86_64-linux-gnu/libz.so.1")
	p := filepath.Join(b.TempDir(), "layer.tar")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	tw := tar.NewWriter(f)
	var size int64
	add := func(name string, mode int64, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			b.Fatal(err)
		}
		tw.Write(data)
		size += int64(len(data))
	}
	for i := range 12 {
		add(fmt.Sprintf("usr/bin/go%d", i), 0o755, goBin)
	}
	for i := range 10 {
		add(fmt.Sprintf("usr/bin/c%d", i), 0o755, dash)
		add(fmt.Sprintf("usr/lib/libz%d.so", i), 0o644, libz)
	}
	blob := make([]byte, 2<<20)
	for i := range 20 {
		for j := range blob {
			blob[j] = byte(rng.Uint32())
		}
		add(fmt.Sprintf("usr/share/blob/%d.bin", i), 0o644, blob)
	}
	line := "key_%d = some.value.that-is-not-secret # password is set elsewhere, token via env\n"
	for i := range 3000 {
		var sb strings.Builder
		for sb.Len() < 10<<10 {
			fmt.Fprintf(&sb, line, sb.Len())
		}
		add(fmt.Sprintf("etc/conf/%d/%d.conf", i/100, i), 0o644, []byte(sb.String()))
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	t := rootfs.New()
	if err := rootfs.ApplyLayer(t, "", resolve.Layer{Path: p}); err != nil {
		b.Fatal(err)
	}
	return t, size
}

// BenchmarkRun scans the ~100 MB host: make bench reports its time and
// peak memory.
func BenchmarkRun(b *testing.B) {
	t, size := benchTree(b)
	db := writeVulnDB(b, "1.0.0", "1.0")
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := Run(context.Background(), Input{Name: "bench", Tree: t, VulnDB: db})
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Packages) == 0 {
			b.Fatal("no packages found")
		}
	}
}
