package rootimg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/erofs/go-erofs"
)

// EROFS on-disk facts used to patch directory entries (see the kernel's
// fs/erofs/erofs_fs.h).
const (
	sbOffset       = 1024
	direntSize     = 12
	layoutPlain    = 0
	layoutInline   = 2
	inodeCompact   = 32
	inodeExtended  = 64
	xattrHeader    = 12
	xattrEntrySize = 4
)

// linkHard makes hard links real: the EROFS writer has no hard links, so
// each one was written as an empty stand-in; here its directory entry is
// pointed at the target's inode (whose link count already includes it).
// The stand-in inode stays, unreferenced.
func linkHard(f File, links []hardlink) error {
	if len(links) == 0 {
		return nil
	}
	img, err := erofs.Open(f)
	if err != nil {
		return fmt.Errorf("reading back erofs: %w", err)
	}
	var sb [64]byte
	if err := readAt(f, sb[:], sbOffset); err != nil {
		return fmt.Errorf("reading erofs superblock: %w", err)
	}
	geo := geometry{blockSize: int64(1) << sb[12], metaAddr: int64(binary.LittleEndian.Uint32(sb[40:]))}
	for _, l := range links {
		target, err := nid(img, l.target)
		if err != nil {
			return err
		}
		parent, err := nid(img, dirOf(l.path))
		if err != nil {
			return err
		}
		off, err := geo.findDirent(f, parent, path.Base(l.path))
		if err != nil {
			return fmt.Errorf("hard link /%s: %w", l.path, err)
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], target)
		if _, err := f.WriteAt(b[:], off); err != nil {
			return fmt.Errorf("hard link /%s: %w", l.path, err)
		}
	}
	return nil
}

// nid is the inode number (EROFS node id) of tree path p in img.
func nid(img fs.FS, p string) (uint64, error) {
	if p == "" {
		p = "."
	}
	fi, err := fs.Stat(img, p)
	if err != nil {
		return 0, fmt.Errorf("reading back erofs: %w", err)
	}
	st, ok := fi.Sys().(*erofs.Stat)
	if !ok {
		return 0, fmt.Errorf("reading back erofs: no inode number for /%s", p)
	}
	return uint64(st.Ino), nil
}

type geometry struct {
	blockSize, metaAddr int64
}

// findDirent returns the byte offset of the directory entry called name in
// directory inode dir.
func (g geometry) findDirent(r io.ReaderAt, dir uint64, name string) (int64, error) {
	ipos := g.metaAddr*g.blockSize + int64(dir)*inodeCompact
	var in [inodeExtended]byte
	if err := readAt(r, in[:inodeCompact], ipos); err != nil {
		return 0, fmt.Errorf("reading directory inode: %w", err)
	}
	le := binary.LittleEndian
	format := le.Uint16(in[0:])
	if format&1 != 0 {
		if err := readAt(r, in[:], ipos); err != nil {
			return 0, fmt.Errorf("reading directory inode: %w", err)
		}
	}
	isize, size := int64(inodeCompact), int64(le.Uint32(in[8:]))
	if format&1 != 0 {
		isize, size = inodeExtended, int64(le.Uint64(in[8:]))
	}
	var xsize int64
	if n := int64(le.Uint16(in[2:])); n > 0 {
		xsize = xattrHeader + (n-1)*xattrEntrySize
	}
	data := int64(le.Uint32(in[16:])) * g.blockSize
	var chunks [][2]int64 // {offset, length} of each directory block
	switch layout := format >> 1 & 7; layout {
	case layoutPlain:
		for o := int64(0); o < size; o += g.blockSize {
			chunks = append(chunks, [2]int64{data + o, min(g.blockSize, size-o)})
		}
	case layoutInline:
		full := size / g.blockSize * g.blockSize
		for o := int64(0); o < full; o += g.blockSize {
			chunks = append(chunks, [2]int64{data + o, g.blockSize})
		}
		if size > full {
			chunks = append(chunks, [2]int64{ipos + isize + xsize, size - full})
		}
	default:
		return 0, fmt.Errorf("unexpected directory layout %d", layout)
	}
	for _, c := range chunks {
		buf := make([]byte, c[1])
		if err := readAt(r, buf, c[0]); err != nil {
			return 0, fmt.Errorf("reading directory: %w", err)
		}
		if i, ok := direntIndex(buf, name); ok {
			return c[0] + int64(i)*direntSize, nil
		}
	}
	return 0, errors.New("directory entry not found")
}

// direntIndex finds name among the directory entries of one block.
func direntIndex(buf []byte, name string) (int, bool) {
	if len(buf) < direntSize {
		return 0, false
	}
	le := binary.LittleEndian
	count := int(le.Uint16(buf[8:])) / direntSize
	if count*direntSize > len(buf) {
		return 0, false
	}
	for i := range count {
		start := int(le.Uint16(buf[i*direntSize+8:]))
		end := len(buf)
		if i+1 < count {
			end = int(le.Uint16(buf[(i+1)*direntSize+8:]))
		}
		if start > end || end > len(buf) {
			return 0, false
		}
		n := buf[start:end]
		if i+1 == count {
			if z := bytes.IndexByte(n, 0); z >= 0 {
				n = n[:z]
			}
		}
		if string(n) == name {
			return i, true
		}
	}
	return 0, false
}

func readAt(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}
