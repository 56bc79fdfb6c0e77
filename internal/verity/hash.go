package verity

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// chunkSize is how much data one worker reads and hashes at a time.
const chunkSize = 2 << 20

// eachChunk splits size bytes of data into chunks of chunkSize and calls fn
// with each chunk's index and bytes, from GOMAXPROCS workers that each own
// one buffer, so memory stays bounded. It stops at the first error or when
// ctx is done.
func eachChunk(ctx context.Context, data io.ReaderAt, size int64, fn func(i int64, buf []byte)) error {
	chunks := (size + chunkSize - 1) / chunkSize
	workers := int64(runtime.GOMAXPROCS(0))
	workers = max(1, min(workers, chunks))
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		failed  atomic.Bool
	)
	fail := func(err error) {
		errOnce.Do(func() { first = err; failed.Store(true) })
	}
	for range workers {
		wg.Go(func() {
			buf := make([]byte, chunkSize)
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= chunks {
					return
				}
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
				off := i * chunkSize
				b := buf[:min(chunkSize, size-off)]
				if err := readFull(data, b, off); err != nil {
					fail(fmt.Errorf("reading data at %d: %w", off, err))
					return
				}
				fn(i, b)
			}
		})
	}
	wg.Wait()
	return first
}

// hashBlocks returns the salted digests of the first blocks data blocks,
// packed one after the other.
func hashBlocks(ctx context.Context, data io.ReaderAt, blocks int64, salt []byte) ([]byte, error) {
	out := make([]byte, blocks*digestSize)
	const digestsPerChunk = chunkSize / BlockSize * digestSize
	err := eachChunk(ctx, data, blocks*BlockSize, func(i int64, buf []byte) {
		o := i * digestsPerChunk
		hashSlice(buf, salt, out[o:o+int64(len(buf)/BlockSize*digestSize)])
	})
	return out, err
}

// ContentSalt derives a 32-byte salt from size bytes of data, so the same
// content always gets the same salt and tree, and other content another.
// It sums the data's chunks in parallel with CRC-32C and hashes the sums
// with a domain prefix. The salt needs no cryptographic strength of its
// own (it is public, and dm-verity's SHA-256 is what proves the data),
// only to be fixed by the content and to vary with it, so a checksum at
// memory speed does, where SHA-256 cost a second full pass over the
// image.
func ContentSalt(ctx context.Context, data io.ReaderAt, size int64) ([]byte, error) {
	if size < 0 {
		return nil, fmt.Errorf("deriving verity salt: negative size %d", size)
	}
	sums := make([]byte, (size+chunkSize-1)/chunkSize*4)
	err := eachChunk(ctx, data, size, func(i int64, buf []byte) {
		binary.LittleEndian.PutUint32(sums[i*4:], crc32.Checksum(buf, castagnoli))
	})
	if err != nil {
		return nil, fmt.Errorf("deriving verity salt: %w", err)
	}
	return SaltFrom([]byte(fmt.Sprintf("content-crc32c:%d:", size)), sums), nil
}

// castagnoli is CRC-32C's table (the CPU computes it, SSE 4.2).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SaltFrom derives a 32-byte salt from caller-chosen identifying bytes (for
// example the digests a writer already computed), with bulkhead's domain
// prefix.
func SaltFrom(parts ...[]byte) []byte {
	h := sha256.New()
	h.Write([]byte("bulkhead verity salt\x00"))
	var n [8]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}
