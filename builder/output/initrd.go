package output

import (
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// Compression is how WriteInitrd compresses the cpio archive.
type Compression int

// Compressions.
const (
	Zstd Compression = iota // the default
	Gzip
	None
)

func (c Compression) String() string {
	switch c {
	case Zstd:
		return "zstd"
	case Gzip:
		return "gzip"
	case None:
		return "none"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// ParseCompression reads a compression name: "zstd", "gzip" or "none".
func ParseCompression(s string) (Compression, error) {
	for _, c := range []Compression{Zstd, Gzip, None} {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown compression %q (want zstd, gzip or none)", s)
}

// DefaultZstdLevel is zstd's "fastest" level: on the 2-core build machine it
// compresses several hundred MB/s, where the default level manages about
// half that for a few percent smaller output.
const DefaultZstdLevel = 1

// zstdConcurrency is fixed so the encoder never depends on GOMAXPROCS. With
// two, the encoder pipelines match finding and entropy coding of successive
// blocks; the bytes are those of the sequential encoder (see the tests).
const zstdConcurrency = 2

// Option configures WriteInitrd.
type Option func(*options) error

type options struct {
	compression Compression
	zstdLevel   int
	ucode       io.Reader
}

func newOptions(opts []Option) (*options, error) {
	o := &options{compression: Zstd, zstdLevel: DefaultZstdLevel}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithCompression sets the initrd's compression (default Zstd).
func WithCompression(c Compression) Option {
	return func(o *options) error {
		if c < Zstd || c > None {
			return fmt.Errorf("unknown compression %d", int(c))
		}
		o.compression = c
		return nil
	}
}

// WithZstdLevel sets the zstd level on zstd's own scale (1 fastest, 3
// default, up to 22); the encoder maps it to the nearest level it has.
func WithZstdLevel(level int) Option {
	return func(o *options) error {
		if level < 1 || level > 22 {
			return fmt.Errorf("zstd level %d out of range 1-22", level)
		}
		o.zstdLevel = level
		return nil
	}
}

// WithUcode puts an early-microcode cpio archive (such as intel-ucode.cpio)
// in front of the initrd, uncompressed, as the kernel's early loader
// requires. Its bytes are copied unchanged.
func WithUcode(r io.Reader) Option {
	return func(o *options) error {
		o.ucode = r
		return nil
	}
}

// WriteInitrd writes t to w as a newc cpio initramfs, compressed as the
// options say (zstd by default), streaming one entry at a time.
func WriteInitrd(ctx context.Context, w io.Writer, t *rootfs.Tree, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return fmt.Errorf("writing initrd: %w", err)
	}
	if o.ucode != nil {
		if _, err := io.Copy(w, o.ucode); err != nil {
			return fmt.Errorf("writing microcode: %w", err)
		}
	}
	cw, err := compressor(w, o)
	if err != nil {
		return fmt.Errorf("writing initrd: %w", err)
	}
	if err := writeCPIOTo(ctx, cw, t); err != nil {
		_ = cw.Close()
		return fmt.Errorf("writing initrd: %w", err)
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("writing initrd: finishing %s: %w", o.compression, err)
	}
	return nil
}

// compressor returns a writer that compresses into w; closing it finishes
// the stream but leaves w open.
func compressor(w io.Writer, o *options) (io.WriteCloser, error) {
	switch o.compression {
	case Zstd:
		return newZstd(w, o.zstdLevel, zstdConcurrency)
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.BestSpeed)
	}
	return nopCloser{w}, nil
}

// newZstd returns a zstd encoder whose frame the kernel's initramfs
// decompressor accepts: one frame with a window of at most 8 MiB and a
// checksum.
func newZstd(w io.Writer, level, concurrency int) (*zstd.Encoder, error) {
	return zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(concurrency),
		zstd.WithWindowSize(min(maxZstdWindow, windowFor(level))),
		zstd.WithEncoderCRC(true),
	)
}

// maxZstdWindow keeps the window within what the kernel's streaming
// decompressor is known to handle with little memory.
const maxZstdWindow = 8 << 20

// windowFor is the encoder's own default window for a level.
func windowFor(level int) int {
	if zstd.EncoderLevelFromZstd(level) == zstd.SpeedFastest {
		return 4 << 20
	}
	return 8 << 20
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
