package kernelcheck

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Source says what kind of input a kernel config was read from.
type Source string

// Sources ReadConfig recognises.
const (
	SourceConfig   Source = "config"    // a .config text file
	SourceConfigGz Source = "config.gz" // a gzipped .config (/proc/config.gz)
	SourceBzImage  Source = "bzImage"   // a compressed kernel with CONFIG_IKCONFIG
	SourceVmlinux  Source = "vmlinux"   // an uncompressed kernel with CONFIG_IKCONFIG
)

// ErrNoIKConfig means a kernel image holds no config: it was built
// without CONFIG_IKCONFIG.
var ErrNoIKConfig = errors.New("kernel has no embedded config (built without CONFIG_IKCONFIG)")

// maxKernel bounds how much a decompressed kernel may take in memory.
const maxKernel = 512 << 20

// ReadConfig returns the kernel config text held in data, which is a
// .config file, a gzipped one, a bzImage or a vmlinux.
func ReadConfig(data []byte) ([]byte, Source, error) {
	switch {
	case isBzImage(data):
		vmlinux, err := bzImagePayload(data)
		if err != nil {
			return nil, SourceBzImage, fmt.Errorf("reading bzImage: %w", err)
		}
		cfg, err := ikconfig(vmlinux)
		return cfg, SourceBzImage, err
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		cfg, err := ikconfig(data)
		return cfg, SourceVmlinux, err
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		cfg, err := gunzip(data)
		if err != nil || !looksLikeKconfig(cfg) {
			return nil, SourceConfigGz, fmt.Errorf("reading config.gz: not a gzipped kernel config")
		}
		return cfg, SourceConfigGz, nil
	case looksLikeKconfig(data):
		return data, SourceConfig, nil
	}
	return nil, "", fmt.Errorf("not a kernel config, bzImage or vmlinux")
}

// isBzImage checks the x86 boot protocol header ("HdrS" at 0x202).
func isBzImage(data []byte) bool {
	return len(data) >= 0x250 && string(data[0x202:0x206]) == "HdrS"
}

// bzImagePayload decompresses a bzImage's payload, the compressed vmlinux
// (boot protocol 2.08 and later: payload_offset and payload_length).
func bzImagePayload(data []byte) ([]byte, error) {
	if v := binary.LittleEndian.Uint16(data[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %d.%02d is older than 2.08", v>>8, v&0xff)
	}
	setupSects := int(data[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects + 1) * 512
	off := int(binary.LittleEndian.Uint32(data[0x248:]))
	n := int(binary.LittleEndian.Uint32(data[0x24c:]))
	if start+off+n > len(data) || n == 0 {
		return nil, fmt.Errorf("payload at %d+%d, %d bytes, lies outside the file", start, off, n)
	}
	return decompress(data[start+off : start+off+n])
}

// decompress undoes the kernel's payload compression, told apart by its
// magic number. The kernel appends the uncompressed size to some formats;
// a decoder that stops with an error after producing output is accepted
// and the caller looks for what it needs in that output.
func decompress(p []byte) ([]byte, error) {
	var r io.Reader
	var err error
	switch {
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(p)); err == nil {
			zr.Multistream(false)
			r = zr
		}
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		var zr *zstd.Decoder
		if zr, err = zstd.NewReader(bytes.NewReader(p), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxKernel)); err == nil {
			defer zr.Close()
			r = zr
		}
	case bytes.HasPrefix(p, []byte{0x02, 0x21, 0x4c, 0x18}):
		r = lz4.NewReader(bytes.NewReader(p))
	case bytes.HasPrefix(p, []byte("BZh")):
		r = bzip2.NewReader(bytes.NewReader(p))
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, fmt.Errorf("xz-compressed kernels are not supported (check the kernel's .config instead)")
	default:
		return nil, fmt.Errorf("unknown payload compression (magic % x)", p[:min(len(p), 6)])
	}
	if err != nil {
		return nil, fmt.Errorf("decompressing payload: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxKernel))
	if len(out) == 0 && err != nil {
		return nil, fmt.Errorf("decompressing payload: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("decompressing payload: empty")
	}
	return out, nil
}

// ikconfig finds the gzipped config CONFIG_IKCONFIG embeds between the
// markers IKCFG_ST and IKCFG_ED.
func ikconfig(vmlinux []byte) ([]byte, error) {
	const st, ed = "IKCFG_ST", "IKCFG_ED"
	for rest := vmlinux; ; {
		i := bytes.Index(rest, []byte(st))
		if i < 0 {
			return nil, ErrNoIKConfig
		}
		rest = rest[i+len(st):]
		j := bytes.Index(rest, []byte(ed))
		if j < 0 {
			return nil, ErrNoIKConfig
		}
		// The marker string itself also appears in the kernel's code that
		// looks for it; only a gzip stream counts.
		if !bytes.HasPrefix(rest, []byte{0x1f, 0x8b}) {
			continue
		}
		cfg, err := gunzip(rest[:j])
		if err != nil {
			return nil, fmt.Errorf("reading embedded config: %w", err)
		}
		return cfg, nil
	}
}

func gunzip(p []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return io.ReadAll(io.LimitReader(zr, maxKernel))
}
