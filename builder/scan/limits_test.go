package scan

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-dev/bulkhead/internal/test/memtest"
)

// bomb is a compressed stream of 64 MiB of zeros times n: one frame (or
// gzip member), repeated.
func bomb(t *testing.T, kind string, n int) []byte {
	t.Helper()
	var frame bytes.Buffer
	zeros := make([]byte, 64<<20)
	switch kind {
	case "zstd":
		w, err := zstd.NewWriter(&frame, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(zeros)
		w.Close()
	case "gzip":
		w, _ := gzip.NewWriterLevel(&frame, gzip.BestSpeed)
		w.Write(zeros)
		w.Close()
	}
	return bytes.Repeat(frame.Bytes(), n)
}

func TestInitrdBombRefused(t *testing.T) {
	// The bomb: 4 GiB of zeros in zstd (about 150 KB); and 1 GiB
	// in gzip (1 MB: gzip cannot compress better than 1:1032).
	for _, tc := range []struct {
		kind string
		n    int
		want string
	}{{"zstd", 64, "decompresses to more than 16 MiB"}, {"gzip", 16, "decompresses to more than 24.9 MiB"}} {
		t.Run(tc.kind, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "host-initrd.img")
			data := bomb(t, tc.kind, tc.n)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var err error
			alloc := memtest.Allocated(func() { _, err = ReadBootArtifact(p) })
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v", err)
			}
			if alloc > 64*memtest.MiB {
				t.Errorf("allocated %d MiB", alloc/memtest.MiB)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			t.Logf("%d KiB compressed: allocated %.1f MiB in %v: %v", len(data)>>10, float64(alloc)/memtest.MiB, time.Since(start), err)
		})
	}
}

func TestInitrdSizeLimits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "host-initrd.img")
	var frame bytes.Buffer
	w, _ := zstd.NewWriter(&frame)
	w.Write(make([]byte, 2<<20))
	w.Close()
	if err := os.WriteFile(p, frame.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// 2 MiB of zeros: within the floor by default, over an explicit 1 MiB.
	if _, err := ReadBootArtifact(p, WithMaxDecompressed(1<<20)); !errors.Is(err, ErrTooLarge) ||
		!strings.Contains(err.Error(), "more than the limit of 1 MiB") {
		t.Errorf("over --max-decompressed: %v", err)
	}
	if _, err := ReadBootArtifact(p); err != nil {
		t.Errorf("2 MiB of zeros with the defaults: %v", err)
	}
	if _, err := ReadBootArtifact("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/zero: %v", err)
	}
}
