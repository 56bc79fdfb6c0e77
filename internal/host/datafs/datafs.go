// Package datafs prepares a host's persistent data partition: it formats
// it as ext4 on first boot (in Go, with go-diskfs's ext4 writer: the host
// has no mkfs) and grows the mounted file system online when the partition
// is larger than the file system (a disk image written small and enlarged
// on its way to a bigger disk).
package datafs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
)

// Label is the volume name of a file system Ensure creates.
const Label = "bulkhead-data"

// Superblock facts (ext4 "Disk layout" documentation).
const (
	superblockOffset = 1024
	superblockSize   = 1024
	magicOffset      = 56
	magic            = 0xEF53
	blocksLoOffset   = 4
	logBlockOffset   = 24
	incompatOffset   = 0x60
	blocksHiOffset   = 0x150
	incompat64Bit    = 0x80
)

// Format parameters: 4 KiB blocks and mke2fs's inode ratio. go-diskfs's
// reserved-GDT (resize_inode) feature is left off: it writes a resize inode
// e2fsck rejects, and the kernel's online resize does without it (it
// switches the file system to meta_bg when the group descriptors outgrow
// their blocks).
const (
	sectorsPerBlock = 8
	inodeRatio      = 16384
	lostFound       = "lost+found"
)

// MinSize is the smallest device Ensure formats.
const MinSize = 16 << 20

// Ensure creates an ext4 file system on dev unless it holds one already,
// and reports whether it created one.
func Ensure(ctx context.Context, dev string) (created bool, err error) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("opening data device: %w", err)
	}
	defer f.Close()
	sb, err := readSuperblock(f)
	if err != nil {
		return false, err
	}
	if sb.isExt4() {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := format(f); err != nil {
		return false, fmt.Errorf("creating file system on %s: %w", dev, err)
	}
	return true, nil
}

// format writes a new ext4 file system over the whole of f.
func format(f *os.File) error {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("finding device size: %w", err)
	}
	if size < MinSize {
		return fmt.Errorf("device too small (%d bytes, need %d)", size, MinSize)
	}
	params := &ext4.Params{
		VolumeName:      Label,
		SectorsPerBlock: sectorsPerBlock,
		InodeRatio:      inodeRatio,
		Features:        []ext4.FeatureOpt{ext4.WithFeatureReservedGDTBlocksForExpansion(false)},
	}
	fs, err := create(f, size, params)
	if err != nil {
		return err
	}
	if err := fs.Mkdir(lostFound); err != nil {
		return fmt.Errorf("creating %s: %w", lostFound, err)
	}
	if err := fs.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// create runs go-diskfs's ext4 writer, turning a panic in it into an
// error: the caller is PID 1, whose panic would panic the kernel.
func create(f *os.File, size int64, params *ext4.Params) (fs *ext4.FileSystem, err error) {
	defer func() {
		if r := recover(); r != nil {
			fs, err = nil, fmt.Errorf("ext4 writer failed: %v", r)
		}
	}()
	return ext4.Create(file.New(f, false), size, 0, 512, params)
}

// superblock is the raw primary superblock.
type superblock []byte

// readSuperblock reads the primary superblock; a device too small to hold
// one gives an empty superblock.
func readSuperblock(r io.ReaderAt) (superblock, error) {
	b := make([]byte, superblockSize)
	n, err := r.ReadAt(b, superblockOffset)
	if errors.Is(err, io.EOF) {
		return superblock(b[:n]), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading superblock: %w", err)
	}
	return superblock(b), nil
}

func (sb superblock) isExt4() bool {
	return len(sb) == superblockSize && binary.LittleEndian.Uint16(sb[magicOffset:]) == magic
}

// blockSize is the file system's block size in bytes.
func (sb superblock) blockSize() int64 {
	return 1024 << binary.LittleEndian.Uint32(sb[logBlockOffset:])
}

// blocks is the file system's block count.
func (sb superblock) blocks() uint64 {
	n := uint64(binary.LittleEndian.Uint32(sb[blocksLoOffset:]))
	if binary.LittleEndian.Uint32(sb[incompatOffset:])&incompat64Bit != 0 {
		n |= uint64(binary.LittleEndian.Uint32(sb[blocksHiOffset:])) << 32
	}
	return n
}

// Size returns the size in bytes of the ext4 file system on dev.
func Size(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, fmt.Errorf("opening data device: %w", err)
	}
	defer f.Close()
	sb, err := readSuperblock(f)
	if err != nil {
		return 0, err
	}
	if !sb.isExt4() {
		return 0, fmt.Errorf("reading file system size: %s holds no ext4 file system", dev)
	}
	return int64(sb.blocks()) * sb.blockSize(), nil
}

// IsExt4 reports whether r holds an ext4 file system.
func IsExt4(r io.ReaderAt) (bool, error) {
	sb, err := readSuperblock(r)
	if err != nil {
		return false, err
	}
	return sb.isExt4(), nil
}
