package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
)

// zeroChunk is what the runs between writes are hashed from: zeros held
// in memory, never read back from the sparse file.
var zeroChunk [256 << 10]byte

// hashedFile writes a sparse output file front to back and hashes every
// byte of it on the way, so the file's digest is known when the last byte
// is written, without reading the file back. The bytes between two writes
// are the file's holes: they stay unallocated and are hashed as zeros from
// memory. Writes must come in increasing offset order and not overlap.
type hashedFile struct {
	f   *os.File
	h   hash.Hash
	pos int64 // everything before pos is hashed
}

func newHashedFile(f *os.File) *hashedFile { return &hashedFile{f: f, h: sha256.New()} }

// writeAt writes b's non-zero blocks at off and hashes the hole before off
// and all of b.
func (w *hashedFile) writeAt(off int64, b []byte) error {
	if off < w.pos {
		return fmt.Errorf("write at %d behind the hashed position %d", off, w.pos)
	}
	w.zeros(off - w.pos)
	w.h.Write(b)
	w.pos = off + int64(len(b))
	return writeNonZero(w.f, off, b)
}

// zeros hashes n zero bytes.
func (w *hashedFile) zeros(n int64) {
	for n > 0 {
		k := min(n, int64(len(zeroChunk)))
		w.h.Write(zeroChunk[:k])
		n -= k
	}
}

// finish hashes the hole up to size, the file's length (the caller has
// truncated the file to it), and returns the digest as "sha256:<hex>".
func (w *hashedFile) finish(size int64) (string, error) {
	if size < w.pos {
		return "", fmt.Errorf("file size %d is below the written %d bytes", size, w.pos)
	}
	w.zeros(size - w.pos)
	w.pos = size
	return "sha256:" + hex.EncodeToString(w.h.Sum(nil)), nil
}
