package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

// memDisk is an in-memory go-diskfs backend, for the partition tables
// (and FAT images in tests): built in memory, then written out skipping
// zero blocks. Its bytes are an anonymous mapping, not Go heap: pages
// never written take no memory. release unmaps them. (The ESP is built
// in a scratch file instead: its files would count in the build's
// resident memory here.)
type memDisk struct {
	b     []byte
	off   int64
	dirty []uint64 // bit i: block i (of sparseBlock bytes) was written
}

func newMemDisk(size int64) (*memDisk, error) {
	blocks := (size + sparseBlock - 1) / sparseBlock
	b, err := syscall.Mmap(-1, 0, int(roundUp(max(size, 1), sparseBlock)), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("mapping %d bytes for a file system: %w", size, err)
	}
	return &memDisk{b: b[:size], dirty: make([]uint64, (blocks+63)/64)}, nil
}

// release unmaps m's bytes; m must not be used after.
func (m *memDisk) release() {
	if m == nil || m.b == nil {
		return
	}
	syscall.Munmap(m.b[:cap(m.b)])
	m.b = nil
}

// eachDirty calls fn with each run of written blocks, in order.
func (m *memDisk) eachDirty(fn func(off int64, b []byte) error) error {
	blocks := (int64(len(m.b)) + sparseBlock - 1) / sparseBlock
	for i := int64(0); i < blocks; {
		if m.dirty[i/64]&(1<<(i%64)) == 0 {
			i++
			continue
		}
		j := i
		for j < blocks && m.dirty[j/64]&(1<<(j%64)) != 0 {
			j++
		}
		start, end := i*sparseBlock, min(j*sparseBlock, int64(len(m.b)))
		if err := fn(start, m.b[start:end]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

var _ backend.Storage = (*memDisk)(nil)

func (m *memDisk) Stat() (fs.FileInfo, error) { return memInfo(len(m.b)), nil }
func (m *memDisk) Close() error               { return nil }
func (m *memDisk) Path() string               { return "" }

func (m *memDisk) Sys() (*os.File, error) { return nil, errors.New("in-memory disk has no file") }

func (m *memDisk) Writable() (backend.WritableFile, error) { return m, nil }

func (m *memDisk) Read(p []byte) (int, error) {
	n, err := m.ReadAt(p, m.off)
	m.off += int64(n)
	return n, err
}

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("write of %d bytes at %d outside the %d-byte file system", len(p), off, len(m.b))
	}
	for i := off / sparseBlock; i*sparseBlock < off+int64(len(p)); i++ {
		m.dirty[i/64] |= 1 << (i % 64)
	}
	return copy(m.b[off:], p), nil
}

func (m *memDisk) Seek(offset int64, whence int) (int64, error) {
	off, err := seekTo(m.off, offset, whence, func() (int64, error) { return int64(len(m.b)), nil })
	if err == nil {
		m.off = off
	}
	return off, err
}

// seekTo is io.Seeker's arithmetic from the current offset cur, size
// giving the end.
func seekTo(cur, offset int64, whence int, size func() (int64, error)) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += cur
	case io.SeekEnd:
		n, err := size()
		if err != nil {
			return 0, err
		}
		offset += n
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek to negative offset %d", offset)
	}
	return offset, nil
}

// memInfo is the FileInfo of a memDisk of that size.
type memInfo int64

func (i memInfo) Name() string       { return "memdisk" }
func (i memInfo) Size() int64        { return int64(i) }
func (i memInfo) Mode() fs.FileMode  { return 0o600 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// fileDisk is a go-diskfs backend on an open output file. Close does not
// close the file and there is no Sync: go-diskfs syncs after each GPT write,
// the output's Commit syncs once.
type fileDisk struct{ f *os.File }

var _ backend.Storage = fileDisk{}

func (d fileDisk) Stat() (fs.FileInfo, error)                { return d.f.Stat() }
func (d fileDisk) Read(p []byte) (int, error)                { return d.f.Read(p) }
func (d fileDisk) ReadAt(p []byte, off int64) (int, error)   { return d.f.ReadAt(p, off) }
func (d fileDisk) WriteAt(p []byte, off int64) (int, error)  { return d.f.WriteAt(p, off) }
func (d fileDisk) Seek(off int64, whence int) (int64, error) { return d.f.Seek(off, whence) }
func (d fileDisk) Close() error                              { return nil }
func (d fileDisk) Sys() (*os.File, error)                    { return d.f, nil }
func (d fileDisk) Writable() (backend.WritableFile, error)   { return d, nil }
func (d fileDisk) Path() string                              { return d.f.Name() }

// bufferedFile is a go-diskfs backend on a file that gathers adjacent
// writes into one: go-diskfs writes a FAT file a cluster (512 bytes) at a
// time. Reads and Flush write the gathered bytes out first.
type bufferedFile struct {
	f   *os.File
	buf []byte // bytes for the file at at, not yet written
	at  int64
	off int64 // the Read and Seek position
}

// bufferedFileSize is the most bufferedFile gathers.
const bufferedFileSize = 1 << 20

var _ backend.Storage = (*bufferedFile)(nil)

func newBufferedFile(f *os.File) *bufferedFile {
	return &bufferedFile{f: f, buf: make([]byte, 0, bufferedFileSize)}
}

// Flush writes the gathered bytes.
func (d *bufferedFile) Flush() error {
	if len(d.buf) == 0 {
		return nil
	}
	_, err := d.f.WriteAt(d.buf, d.at)
	d.buf = d.buf[:0]
	return err
}

func (d *bufferedFile) WriteAt(p []byte, off int64) (int, error) {
	if len(d.buf) > 0 && off == d.at+int64(len(d.buf)) && len(d.buf)+len(p) <= cap(d.buf) {
		d.buf = append(d.buf, p...)
		return len(p), nil
	}
	if err := d.Flush(); err != nil {
		return 0, err
	}
	if len(p) >= cap(d.buf) {
		return d.f.WriteAt(p, off)
	}
	d.at, d.buf = off, append(d.buf, p...)
	return len(p), nil
}

func (d *bufferedFile) ReadAt(p []byte, off int64) (int, error) {
	if err := d.Flush(); err != nil {
		return 0, err
	}
	return d.f.ReadAt(p, off)
}

func (d *bufferedFile) Read(p []byte) (int, error) {
	n, err := d.ReadAt(p, d.off)
	d.off += int64(n)
	return n, err
}

func (d *bufferedFile) Seek(offset int64, whence int) (int64, error) {
	off, err := seekTo(d.off, offset, whence, func() (int64, error) {
		st, err := d.f.Stat()
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	})
	if err == nil {
		d.off = off
	}
	return off, err
}

func (d *bufferedFile) Stat() (fs.FileInfo, error)              { return d.f.Stat() }
func (d *bufferedFile) Close() error                            { return d.Flush() }
func (d *bufferedFile) Sys() (*os.File, error)                  { return d.f, nil }
func (d *bufferedFile) Writable() (backend.WritableFile, error) { return d, nil }
func (d *bufferedFile) Path() string                            { return d.f.Name() }
