package output

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// Inputs is what a kernel+initrd boot needs: the kernel image (Kernel with
// KernelSize bytes, or the file at KernelPath), the kernel command line, and
// the root tree that becomes the initrd.
type Inputs struct {
	Kernel     io.ReaderAt
	KernelSize int64
	KernelPath string
	Cmdline    string
	Tree       *rootfs.Tree
	// Initrd, or the file at InitrdPath, when set, is an initrd already
	// written, copied as it is; Tree and the initrd options are then not
	// used.
	Initrd     []byte
	InitrdPath string
	// InitrdDigest is the sha256 of the file at InitrdPath, hashed when it
	// was written: given, that file is hard-linked into place, not copied.
	InitrdDigest string
	// KernelFile, when set, is the kernel already written to its file by
	// WriteKernel (say while the initrd was being made); Kernel and
	// KernelPath are then not used.
	KernelFile *AtomicFile
}

// KernelInitrd holds the paths WriteKernelInitrd wrote.
type KernelInitrd struct {
	Kernel  string // <base>-kernel
	Initrd  string // <base>-initrd.img
	Cmdline string // <base>-cmdline
	// Digests are the three files' sha256 ("sha256:<hex>") by path,
	// hashed while written.
	Digests map[string]string
}

// KernelInitrdPaths names LinuxKit's kernel+initrd files for base in dir.
func KernelInitrdPaths(dir, base string) KernelInitrd {
	p := filepath.Join(dir, base)
	return KernelInitrd{Kernel: p + "-kernel", Initrd: p + "-initrd.img", Cmdline: p + "-cmdline"}
}

// WriteKernelInitrd writes LinuxKit's kernel+initrd format into dir: the
// kernel, the initrd (opts as for WriteInitrd) and the command line. Either
// all three files appear or none does.
func WriteKernelInitrd(ctx context.Context, dir, base string, in Inputs, opts ...Option) (KernelInitrd, error) {
	paths := KernelInitrdPaths(dir, base)
	if in.Tree == nil && in.Initrd == nil && in.InitrdPath == "" {
		return paths, errors.New("writing kernel+initrd: no root tree")
	}
	var files []*AtomicFile
	defer func() { abortAll(files) }()
	linked := false
	for _, p := range []string{paths.Kernel, paths.Initrd, paths.Cmdline} {
		var f *AtomicFile
		var err error
		if p == paths.Kernel && in.KernelFile != nil {
			if in.KernelFile.Name() != p {
				return paths, fmt.Errorf("writing kernel+initrd: the kernel was written to %s, not %s", in.KernelFile.Name(), p)
			}
			f = in.KernelFile
		}
		if p == paths.Initrd && in.InitrdPath != "" && in.InitrdDigest != "" && in.Initrd == nil {
			f, err = Link(p, in.InitrdPath, in.InitrdDigest)
			linked = err == nil
		}
		if f == nil {
			f, err = Create(p)
		}
		if err != nil {
			return paths, fmt.Errorf("writing kernel+initrd: %w", err)
		}
		files = append(files, f)
	}
	if in.KernelFile == nil {
		if err := copyKernel(ctx, files[0], in); err != nil {
			return paths, fmt.Errorf("writing kernel: %w", err)
		}
	}
	switch {
	case linked: // in place already
	case in.Initrd != nil || in.InitrdPath != "":
		if err := copyInitrd(ctx, files[1], in); err != nil {
			return paths, fmt.Errorf("writing initrd: %w", err)
		}
	default:
		if err := WriteInitrd(ctx, files[1], in.Tree, opts...); err != nil {
			return paths, err
		}
	}
	if _, err := io.WriteString(files[2], in.Cmdline); err != nil {
		return paths, fmt.Errorf("writing cmdline: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return paths, fmt.Errorf("writing kernel+initrd: %w", err)
	}
	paths.Digests = map[string]string{}
	for _, f := range files {
		paths.Digests[f.Name()], _ = f.Digest()
	}
	if err := commitAll(files...); err != nil {
		return paths, fmt.Errorf("writing kernel+initrd: %w", err)
	}
	return paths, nil
}

// WriteKernel writes the kernel file of kernel+initrd into dir from in's
// kernel and flushes it to disk, ahead of the rest, for WriteKernelInitrd
// to take as in.KernelFile; the caller aborts it if that never comes.
func WriteKernel(ctx context.Context, dir, base string, in Inputs) (*AtomicFile, error) {
	f, err := Create(KernelInitrdPaths(dir, base).Kernel)
	if err != nil {
		return nil, fmt.Errorf("writing kernel: %w", err)
	}
	if err := copyKernel(ctx, f, in); err != nil {
		f.Abort()
		return nil, fmt.Errorf("writing kernel: %w", err)
	}
	if err := f.finish(); err != nil {
		f.Abort()
		return nil, fmt.Errorf("writing kernel: %w", err)
	}
	return f, nil
}

// copyInitrd copies the initrd already written, streaming it from its file.
func copyInitrd(ctx context.Context, w io.Writer, in Inputs) error {
	if in.InitrdPath == "" {
		_, err := w.Write(in.Initrd)
		return err
	}
	if in.Initrd != nil {
		return errors.New("both initrd bytes and an initrd path given")
	}
	f, err := os.Open(in.InitrdPath)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = io.Copy(w, io.NewSectionReader(ctxReaderAt{ctx, f}, 0, fi.Size()))
	return err
}

func copyKernel(ctx context.Context, w io.Writer, in Inputs) error {
	r, size := in.Kernel, in.KernelSize
	switch {
	case r != nil && in.KernelPath != "":
		return errors.New("both a kernel reader and a kernel path given")
	case r == nil && in.KernelPath == "":
		return errors.New("no kernel given")
	case r == nil:
		f, err := os.Open(in.KernelPath)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		r, size = f, fi.Size()
	}
	n, err := io.Copy(w, io.NewSectionReader(ctxReaderAt{ctx, r}, 0, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("kernel is %d bytes, want %d", n, size)
	}
	return nil
}

// ctxReaderAt stops reading once ctx is done.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}
