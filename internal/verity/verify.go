package verity

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// ErrMismatch reports a device whose data, superblock or tree does not
// match the parameters: the kernel would refuse to read it.
var ErrMismatch = errors.New("verity mismatch")

// Verify checks a device laid out as bulkhead writes it (data, then the
// superblock at block HashStart-1, then the tree) against p: the
// superblock must describe p, the tree recomputed from the data must equal
// the stored one, and its root must be p.RootHash. It reads every data
// block, the way the kernel would on a full read, without needing
// device-mapper or privileges.
func Verify(ctx context.Context, dev io.ReaderAt, p Params) error {
	if p.DataBlocks == 0 || p.HashStart == 0 || len(p.RootHash) != digestSize {
		return fmt.Errorf("verifying verity device: empty parameters")
	}
	sbOff := int64(p.HashStart-1) * BlockSize
	if sbOff < int64(p.DataBlocks)*BlockSize {
		return fmt.Errorf("verifying verity device: hash area at block %d overlaps the data", p.HashStart-1)
	}
	sb := make([]byte, BlockSize)
	if err := readFull(dev, sb, sbOff); err != nil {
		return fmt.Errorf("verifying verity device: reading superblock: %w", err)
	}
	if !bytes.Equal(sb, superblock(p.DataBlocks, p.Salt)) {
		return fmt.Errorf("verifying verity device: %w: superblock", ErrMismatch)
	}
	blocks := int64(p.DataBlocks)
	digests, err := hashBlocks(ctx, dev, blocks, p.Salt)
	if err != nil {
		return fmt.Errorf("verifying verity device: %w", err)
	}
	tree, root := buildTree(digests, blocks, p.Salt)
	if subtle.ConstantTimeCompare(root, p.RootHash) != 1 {
		return fmt.Errorf("verifying verity device: %w: root hash %x, want %x", ErrMismatch, root, p.RootHash)
	}
	return compareTree(dev, tree, sbOff+BlockSize)
}

// compareTree checks that the stored tree at off (top level first) holds
// the levels of tree.
func compareTree(dev io.ReaderAt, tree [][]byte, off int64) error {
	for i := len(tree) - 1; i >= 0; i-- {
		stored := make([]byte, len(tree[i]))
		if err := readFull(dev, stored, off); err != nil {
			return fmt.Errorf("verifying verity device: reading tree level %d: %w", i, err)
		}
		if !bytes.Equal(stored, tree[i]) {
			return fmt.Errorf("verifying verity device: %w: tree level %d", ErrMismatch, i)
		}
		off += int64(len(stored))
	}
	return nil
}

// Holds reports whether dev, laid out as bulkhead writes it, claims the
// root hash of p: its superblock describes p and the top of its tree
// hashes to p.RootHash. It reads two blocks, so it is how stage 0 tells
// which of the A/B root slots a command line's root hash names; it checks
// no data block (dm-verity then checks every block it reads).
func Holds(dev io.ReaderAt, p Params) (bool, error) {
	if p.DataBlocks == 0 || p.HashStart == 0 || len(p.RootHash) != digestSize {
		return false, fmt.Errorf("matching verity device: empty parameters")
	}
	block := make([]byte, BlockSize)
	if err := readFull(dev, block, int64(p.HashStart-1)*BlockSize); err != nil {
		return false, fmt.Errorf("matching verity device: reading superblock: %w", err)
	}
	if !bytes.Equal(block, superblock(p.DataBlocks, p.Salt)) {
		return false, nil
	}
	// A device of one block has no tree: its root hash is that block's
	// digest. Otherwise the tree's top level, one block, comes first.
	off := int64(p.HashStart) * BlockSize
	if len(levels(int64(p.DataBlocks))) == 0 {
		off = 0
	}
	if err := readFull(dev, block, off); err != nil {
		return false, fmt.Errorf("matching verity device: reading the tree's top: %w", err)
	}
	root := make([]byte, digestSize)
	hashSlice(block, p.Salt, root)
	return subtle.ConstantTimeCompare(root, p.RootHash) == 1, nil
}
