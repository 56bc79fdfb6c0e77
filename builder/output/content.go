package output

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// blobs keeps each content blob (an uncompressed layer) open while one
// archive is written, so files are not opened once per entry. A tree draws
// on a handful of layers, so few descriptors are held.
type blobs struct {
	files map[string]*blobFile
}

type blobFile struct {
	f    *os.File
	size int64
}

func newBlobs() *blobs { return &blobs{files: map[string]*blobFile{}} }

func (b *blobs) open(name string) (*blobFile, error) {
	if bf := b.files[name]; bf != nil {
		return bf, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening content: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening content: %w", err)
	}
	bf := &blobFile{f: f, size: fi.Size()}
	b.files[name] = bf
	return bf, nil
}

// Close closes every blob opened.
func (b *blobs) Close() error {
	var errs []error
	for name, bf := range b.files {
		errs = append(errs, bf.f.Close())
		delete(b.files, name)
	}
	return errors.Join(errs...)
}

// content is a regular file's bytes as an io.ReaderAt that finds its blob
// on the first read, so an archive writer never holds a whole file in
// memory.
type content struct {
	ctx   context.Context
	e     *rootfs.Entry
	blobs *blobs
	r     io.ReaderAt
}

func newContent(ctx context.Context, b *blobs, e *rootfs.Entry) (*content, error) {
	if e.Size < 0 {
		return nil, fmt.Errorf("negative size %d", e.Size)
	}
	c := &content{ctx: ctx, e: e, blobs: b}
	if e.Content.Blob == "" {
		if int64(len(e.Content.Data)) != e.Size {
			return nil, fmt.Errorf("size %d but %d bytes of data", e.Size, len(e.Content.Data))
		}
		c.r = bytes.NewReader(e.Content.Data)
	}
	return c, nil
}

// ReadAt reads from the file's contents.
func (c *content) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.r == nil {
		if err := c.open(); err != nil {
			return 0, err
		}
	}
	return c.r.ReadAt(p, off)
}

func (c *content) open() error {
	bf, err := c.blobs.open(c.e.Content.Blob)
	if err != nil {
		return err
	}
	off := c.e.Content.Offset
	if off < 0 || off+c.e.Size > bf.size {
		return fmt.Errorf("content %d+%d past the end of %s (%d bytes)", off, c.e.Size, c.e.Content.Blob, bf.size)
	}
	c.r = io.NewSectionReader(bf.f, off, c.e.Size)
	return nil
}

// Reader returns a reader of the whole contents.
func (c *content) Reader() io.Reader { return io.NewSectionReader(c, 0, c.e.Size) }
