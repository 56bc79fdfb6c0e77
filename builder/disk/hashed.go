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
//
// Hashing runs on a goroutine of its own, one write behind: while it
// hashes a write (and the hole before it), the caller writes the next.
// When writeAt returns, the write before is hashed, so a caller may
// refill the buffer it passed the time before last (writeSparse
// alternates two). finish or abort ends the goroutine.
type hashedFile struct {
	f       *os.File
	pos     int64 // everything before pos is queued for hashing
	jobs    chan hashJob
	hashed  chan struct{} // one token per job hashed, in order
	pending int           // jobs queued and not yet taken from hashed
	sum     chan []byte   // the digest, once jobs is closed
	done    bool          // jobs is closed and the digest taken
}

// hashJob is a hole of zeros bytes, then b.
type hashJob struct {
	zeros int64
	b     []byte
}

func newHashedFile(f *os.File) *hashedFile {
	w := &hashedFile{f: f, jobs: make(chan hashJob, 2), hashed: make(chan struct{}, 4), sum: make(chan []byte, 1)}
	go w.hash(sha256.New())
	return w
}

func (w *hashedFile) hash(h hash.Hash) {
	for j := range w.jobs {
		for n := j.zeros; n > 0; {
			k := min(n, int64(len(zeroChunk)))
			h.Write(zeroChunk[:k])
			n -= k
		}
		h.Write(j.b)
		w.hashed <- struct{}{}
	}
	w.sum <- h.Sum(nil)
}

// queue hands the hole up to off and b to the hasher and returns once
// every job but this one is hashed.
func (w *hashedFile) queue(off int64, b []byte) {
	w.jobs <- hashJob{zeros: off - w.pos, b: b}
	w.pos = off + int64(len(b))
	for w.pending++; w.pending > 1; w.pending-- {
		<-w.hashed
	}
}

// writeAt writes b's non-zero blocks at off and hashes the hole before off
// and all of b.
func (w *hashedFile) writeAt(off int64, b []byte) error {
	if off < w.pos {
		return fmt.Errorf("write at %d behind the hashed position %d", off, w.pos)
	}
	w.queue(off, b)
	return writeNonZero(w.f, off, b)
}

// finish hashes the hole up to size, the file's length (the caller has
// truncated the file to it), and returns the digest as "sha256:<hex>".
// Every byte is written by then, so the file is flushed to disk while the
// hasher catches up (the caller's commit syncs again, with nothing left
// to write).
func (w *hashedFile) finish(size int64) (string, error) {
	if size < w.pos {
		return "", fmt.Errorf("file size %d is below the written %d bytes", size, w.pos) // the caller aborts
	}
	synced := make(chan error, 1)
	go func() { synced <- w.f.Sync() }()
	w.queue(size, nil)
	close(w.jobs)
	sum := <-w.sum
	w.done = true
	if err := <-synced; err != nil {
		return "", fmt.Errorf("syncing: %w", err)
	}
	return "sha256:" + hex.EncodeToString(sum), nil
}

// abort ends the hasher of a file that will not be finished (or whose
// finish failed).
func (w *hashedFile) abort() {
	if !w.done {
		close(w.jobs)
		<-w.sum
		w.done = true
	}
}
