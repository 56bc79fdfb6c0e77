// Package chunk cuts update payloads into content-defined chunks and
// describes where each chunk of a published update is stored: the chunk
// index, the contract between `bulkhead update push` (which writes it) and
// the host's pull (which reads it). It imports only the standard library,
// so the init links it.
//
// Cut points come from a gear rolling hash (FastCDC with normalized
// chunking): a cut depends only on the bytes just before it, so an
// insertion or a removal moves the cuts near it and nowhere else, and the
// chunks of unchanged files come out the same in two builds even when they
// moved. Sizes are bounded by Params (see Default for the values chosen and
// the measurement behind them).
package chunk

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Params are a chunker's minimum, average (target) and maximum sizes.
type Params struct {
	Min int `json:"min"`
	Avg int `json:"avg"`
	Max int `json:"max"`
}

// Default is the chunking update push uses: 16/64/256 KiB, casync's and
// desync's default. Measured on bundles of bulkhead hosts (README,
// "Registry updates"; builder/publish TestChunkSizeFigures): against
// 4/16/64 KiB it fetches about 10% more of a changed binary (2.03 against
// 1.83 MB for one service) but its index, which every host fetches even
// when nothing changed, is a quarter (118 against 456 KB for minimal);
// against 64/256/1024 KiB it fetches up to 1.6 times less.
var Default = Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}

// MaxChunk bounds any chunk a reader accepts, whatever an index says.
const MaxChunk = 4 << 20

// Check reports parameters no chunker should use.
func (p Params) Check() error {
	switch {
	case p.Min < 64 || p.Avg <= p.Min || p.Max <= p.Avg || p.Max > MaxChunk:
		return fmt.Errorf("chunk sizes %d/%d/%d: want 64 <= min < avg < max <= %d", p.Min, p.Avg, p.Max, MaxChunk)
	case bits.OnesCount(uint(p.Avg)) != 1:
		return fmt.Errorf("average chunk size %d is not a power of two", p.Avg)
	}
	return nil
}

// gear is the rolling hash's table: 256 pseudo-random words derived from a
// fixed string, so every build and every host cut the same way.
var gear = makeGear()

func makeGear() [256]uint64 {
	var g [256]uint64
	for i := range g {
		s := sha256.Sum256([]byte{'b', 'u', 'l', 'k', 'h', 'e', 'a', 'd', '-', 'g', 'e', 'a', 'r', byte(i)})
		g[i] = binary.LittleEndian.Uint64(s[:8])
	}
	return g
}

// masks are FastCDC's normalized-chunking masks: harder to match before
// the average size, easier after. The high bits of the gear hash depend
// on the last 64 bytes.
func (p Params) masks() (small, large uint64) {
	n := bits.TrailingZeros(uint(p.Avg))
	top := func(k int) uint64 { return ^uint64(0) << (64 - k) }
	return top(n + 2), top(max(n-2, 1))
}

// cut returns the length of the chunk that starts b (all of b when b is
// not longer than Min, at most Max).
func (p Params) cut(b []byte, small, large uint64) int {
	n := len(b)
	if n <= p.Min {
		return n
	}
	n = min(n, p.Max)
	normal := min(p.Avg, n)
	var h uint64
	i := p.Min
	for ; i < normal; i++ {
		h = h<<1 + gear[b[i]]
		if h&small == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		h = h<<1 + gear[b[i]]
		if h&large == 0 {
			return i + 1
		}
	}
	return n
}

// Split reads r to its end and calls fn with each chunk's offset and
// bytes, in order. The bytes are valid only during the call. Memory is
// two maximum chunks.
func Split(r io.Reader, p Params, fn func(off int64, b []byte) error) error {
	if err := p.Check(); err != nil {
		return err
	}
	small, large := p.masks()
	buf := make([]byte, 2*p.Max)
	var fill, start int
	var off int64
	eof := false
	for {
		if !eof && fill-start < p.Max {
			copy(buf, buf[start:fill])
			fill, start = fill-start, 0
			n, err := io.ReadFull(r, buf[fill:])
			fill += n
			switch {
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				eof = true
			case err != nil:
				return fmt.Errorf("reading content to chunk: %w", err)
			}
		}
		if start == fill {
			return nil
		}
		n := p.cut(buf[start:fill], small, large)
		if err := fn(off, buf[start:start+n]); err != nil {
			return err
		}
		start += n
		off += int64(n)
	}
}
