package verity

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// digestSize is the size of a sha256 digest.
const digestSize = sha256.Size

// perBlock is the number of digests one hash block holds.
const perBlock = BlockSize / digestSize

// superblockSize is the size of veritysetup's on-disk superblock; it is
// padded to a whole hash block.
const superblockSize = 512

// maxSalt is the largest salt the superblock can hold.
const maxSalt = 256

// levels returns the number of blocks in each tree level for a device of
// dataBlocks blocks, level 0 (the digests of the data blocks) first. A
// device of one block has no tree: its root hash is the block's digest.
func levels(dataBlocks int64) []int64 {
	var out []int64
	for n := dataBlocks; n > 1; {
		n = (n + perBlock - 1) / perBlock
		out = append(out, n)
	}
	return out
}

// HashSize is the number of bytes the superblock and the tree take for
// dataSize bytes of data (rounded up to whole blocks).
func HashSize(dataSize int64) int64 {
	blocks := int64(1) // superblock
	for _, n := range levels((dataSize + BlockSize - 1) / BlockSize) {
		blocks += n
	}
	return blocks * BlockSize
}

// Format hashes dataSize bytes of data and writes veritysetup's superblock at
// hashOffset in hash, followed by the tree, top level first. dataSize and
// hashOffset must be multiples of BlockSize. data and hash may be the same
// file as long as the hash area does not overlap the data. The superblock's
// UUID derives from the salt, so equal inputs give equal bytes.
func Format(ctx context.Context, data io.ReaderAt, dataSize int64, hash io.WriterAt, hashOffset int64, salt []byte) (Params, error) {
	switch {
	case dataSize <= 0 || dataSize%BlockSize != 0:
		return Params{}, fmt.Errorf("formatting verity tree: data size %d is not a positive multiple of %d", dataSize, BlockSize)
	case hashOffset < 0 || hashOffset%BlockSize != 0:
		return Params{}, fmt.Errorf("formatting verity tree: hash offset %d is not a multiple of %d", hashOffset, BlockSize)
	case len(salt) > maxSalt:
		return Params{}, fmt.Errorf("formatting verity tree: salt of %d bytes exceeds %d", len(salt), maxSalt)
	}
	blocks := dataSize / BlockSize
	var root []byte
	if rw, ok := hash.(readWriterAt); ok && blocks > perBlock {
		r, err := formatThrough(ctx, data, blocks, rw, hashOffset, salt)
		if err != nil {
			return Params{}, err
		}
		root = r
	} else {
		digests, err := hashBlocks(ctx, data, blocks, salt)
		if err != nil {
			return Params{}, fmt.Errorf("formatting verity tree: %w", err)
		}
		tree, r := buildTree(digests, blocks, salt)
		off := hashOffset + BlockSize
		for i := len(tree) - 1; i >= 0; i-- {
			if _, err := hash.WriteAt(tree[i], off); err != nil {
				return Params{}, fmt.Errorf("writing verity tree: %w", err)
			}
			off += int64(len(tree[i]))
		}
		root = r
	}
	if _, err := hash.WriteAt(superblock(uint64(blocks), salt), hashOffset); err != nil {
		return Params{}, fmt.Errorf("writing verity superblock: %w", err)
	}
	return Params{
		DataBlocks: uint64(blocks),
		HashStart:  uint64(hashOffset/BlockSize) + 1,
		Salt:       append([]byte(nil), salt...),
		RootHash:   root,
	}, nil
}

// readWriterAt is a hash device Format can read back: the tree levels go
// through it, not memory.
type readWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// formatThrough writes the tree of blocks data blocks into hash below the
// superblock at hashOffset, top level first, as Format does, holding no
// level in memory: each level's digests are written as they are made, and
// the next level hashes them read back. It returns the root hash.
func formatThrough(ctx context.Context, data io.ReaderAt, blocks int64, hash readWriterAt, hashOffset int64, salt []byte) ([]byte, error) {
	sizes := levels(blocks)
	offs := make([]int64, len(sizes))
	off := hashOffset + BlockSize
	for i := len(sizes) - 1; i >= 0; i-- {
		offs[i] = off
		off += sizes[i] * BlockSize
	}
	// Level 0: the data blocks' digests, written chunk by chunk.
	var (
		mu       sync.Mutex
		writeErr error
	)
	const digestsPerChunk = chunkSize / BlockSize * digestSize
	err := eachChunk(ctx, data, blocks*BlockSize, func(i int64, buf []byte) {
		out := make([]byte, len(buf)/BlockSize*digestSize)
		hashSlice(buf, salt, out)
		if _, err := hash.WriteAt(out, offs[0]+i*digestsPerChunk); err != nil {
			mu.Lock()
			writeErr = cmp.Or(writeErr, err)
			mu.Unlock()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("formatting verity tree: %w", err)
	}
	if writeErr != nil {
		return nil, fmt.Errorf("writing verity tree: %w", writeErr)
	}
	count := blocks // digests in the level being padded
	buf := make([]byte, chunkSize)
	for i := range sizes {
		// Zero the level's last block past its digests: the device may
		// hold old bytes there.
		end := count * digestSize
		if pad := sizes[i]*BlockSize - end; pad > 0 {
			if _, err := hash.WriteAt(make([]byte, pad), offs[i]+end); err != nil {
				return nil, fmt.Errorf("writing verity tree: %w", err)
			}
		}
		if i+1 == len(sizes) {
			break
		}
		// Level i+1: the digests of level i's blocks, read back.
		for at := int64(0); at < sizes[i]*BlockSize; at += chunkSize {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			b := buf[:min(chunkSize, sizes[i]*BlockSize-at)]
			if err := readFull(hash, b, offs[i]+at); err != nil {
				return nil, fmt.Errorf("reading verity tree back: %w", err)
			}
			out := make([]byte, len(b)/BlockSize*digestSize)
			hashSlice(b, salt, out)
			if _, err := hash.WriteAt(out, offs[i+1]+at/BlockSize*digestSize); err != nil {
				return nil, fmt.Errorf("writing verity tree: %w", err)
			}
		}
		count = sizes[i]
	}
	top := buf[:BlockSize]
	if err := readFull(hash, top, offs[len(offs)-1]); err != nil {
		return nil, fmt.Errorf("reading verity tree back: %w", err)
	}
	root := make([]byte, digestSize)
	hashSlice(top, salt, root)
	return root, nil
}

// buildTree packs the data block digests into level 0 and hashes each level
// into the next until one block remains. It returns the levels, level 0
// first, and the root hash.
func buildTree(digests []byte, blocks int64, salt []byte) ([][]byte, []byte) {
	sizes := levels(blocks)
	if len(sizes) == 0 {
		return nil, append([]byte(nil), digests[:digestSize]...)
	}
	tree := make([][]byte, len(sizes))
	below := digests
	for i, n := range sizes {
		// 32-byte digests fill 4 KiB blocks exactly: only the level's
		// last block has zero padding.
		level := make([]byte, n*BlockSize)
		copy(level, below)
		tree[i] = level
		if i+1 < len(sizes) {
			next := make([]byte, n*digestSize)
			hashSlice(level, salt, next)
			below = next
		}
	}
	root := make([]byte, digestSize)
	hashSlice(tree[len(tree)-1], salt, root)
	return tree, root
}

// hashSlice writes the salted digest of each block of buf into out.
func hashSlice(buf, salt, out []byte) {
	h := sha256.New()
	for i := 0; i*BlockSize < len(buf); i++ {
		h.Reset()
		h.Write(salt)
		h.Write(buf[i*BlockSize : (i+1)*BlockSize])
		h.Sum(out[i*digestSize : i*digestSize])
	}
}

// superblock returns veritysetup's superblock (format version 1, hash type
// 1), padded to a hash block.
func superblock(dataBlocks uint64, salt []byte) []byte {
	b := make([]byte, BlockSize)
	copy(b[0:8], "verity\x00\x00")
	le := binary.LittleEndian
	le.PutUint32(b[8:], 1)  // version
	le.PutUint32(b[12:], 1) // hash type: salt first
	copy(b[16:32], uuidFromSalt(salt))
	copy(b[32:64], Algorithm)
	le.PutUint32(b[64:], BlockSize)
	le.PutUint32(b[68:], BlockSize)
	le.PutUint64(b[72:], dataBlocks)
	le.PutUint16(b[80:], uint16(len(salt)))
	copy(b[88:88+maxSalt], salt)
	return b
}

// uuidFromSalt derives the superblock's UUID (version 8, RFC 9562) from the
// salt, so the same content gives the same superblock.
func uuidFromSalt(salt []byte) []byte {
	sum := sha256.Sum256(append([]byte("bulkhead verity uuid\x00"), salt...))
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	return u
}

// UUID is the superblock UUID Format writes for salt, in the textual form
// veritysetup accepts (--uuid).
func UUID(salt []byte) string {
	u := uuidFromSalt(salt)
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// readFull reads len(buf) bytes at off, treating io.EOF after a full read as
// success.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}
