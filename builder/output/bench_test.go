package output

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// benchBlob writes about size bytes of real executables (the Go toolchain's
// own, in a fixed order) to a blob file, topped up with synthetic data.
func benchBlob(b *testing.B, size int64) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.blob")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var n int64
	for _, dir := range []string{filepath.Join(runtime.GOROOT(), "pkg", "tool", runtime.GOOS+"_"+runtime.GOARCH), filepath.Join(runtime.GOROOT(), "bin")} {
		names, _ := filepath.Glob(filepath.Join(dir, "*"))
		slices.Sort(names)
		for _, name := range names {
			if n >= size {
				break
			}
			src, err := os.Open(name)
			if err != nil {
				continue
			}
			m, err := io.CopyN(f, src, size-n)
			src.Close()
			if err != nil && err != io.EOF {
				b.Fatal(err)
			}
			n += m
		}
	}
	if n < size {
		if _, err := f.Write(compressibleBytes(int(size - n))); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// benchTree cuts the first total bytes of blob into files entries of
// uneven sizes under 20 directories.
func benchTree(blob string, entries int, total int64) *rootfs.Tree {
	t := rootfs.New()
	var off int64
	for i := range entries {
		size := total / int64(entries) * int64(1+i%7) / 4 // 0.25x to 1.75x the mean
		if i == entries-1 || off+size > total {
			size = total - off
		}
		t.Put(&rootfs.Entry{
			Path: fmt.Sprintf("usr/lib/d%02d/f%05d", i%20, i), Kind: rootfs.KindFile, Mode: 0o755,
			Size: size, ModTime: testMTime, Content: rootfs.Content{Blob: blob, Offset: off},
		})
		off += size
	}
	return t
}

// BenchmarkWriteInitrd writes 2000 files holding 10 MB and 100 MB of
// executables: B/op and allocs/op must stay the same for both sizes.
func BenchmarkWriteInitrd(b *testing.B) {
	const big = 100 << 20
	blob := benchBlob(b, big)
	for _, size := range []int64{10 << 20, big} {
		tr := benchTree(blob, 2000, size)
		for _, c := range []struct {
			name string
			opts []Option
		}{
			{"zstd-fastest", []Option{WithZstdLevel(1)}},
			{"zstd-default", []Option{WithZstdLevel(3)}},
			{"gzip", []Option{WithCompression(Gzip)}},
			{"none", []Option{WithCompression(None)}},
		} {
			b.Run(fmt.Sprintf("%s/%dMB", c.name, size>>20), func(b *testing.B) {
				b.SetBytes(size)
				b.ReportAllocs()
				var out countWriter
				cpu0 := cpuTime(b)
				for b.Loop() {
					out = 0
					if err := WriteInitrd(context.Background(), &out, tr, c.opts...); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(out)/float64(size), "ratio")
				// CPU time is what the machine's load does not distort.
				cpu := (cpuTime(b) - cpu0).Seconds() / float64(b.N)
				b.ReportMetric(cpu*1000, "cpu-ms/op")
				b.ReportMetric(float64(size)/1e6/cpu, "MB/cpu-s")
			})
		}
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
