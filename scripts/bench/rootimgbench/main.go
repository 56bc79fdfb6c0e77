// Command rootimgbench writes a directory tree as a bulkhead root image
// (EROFS + dm-verity, builder/rootimg) and prints how long it took and how
// big the result is. scripts/bench/rootimg compares it with mksquashfs and
// mkfs.erofs.
//
// Usage: rootimgbench DIR OUT
package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/rootimg"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rootimgbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: rootimgbench DIR OUT")
	}
	t, err := load(args[0])
	if err != nil {
		return err
	}
	start := time.Now()
	f, err := os.Create(args[1])
	if err != nil {
		return err
	}
	img, err := rootimg.Write(ctx, t, f)
	if err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "entries=%d seconds=%.3f size=%d fs_size=%d verity=%s\n",
		t.Len(), time.Since(start).Seconds(), img.Size, img.FSSize, img.Verity)
	return nil
}

// load reads the directory tree at root into a rootfs.Tree: metadata now,
// file contents from their paths when the image is written.
func load(root string) (*rootfs.Tree, error) {
	t := rootfs.New()
	seen := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := &rootfs.Entry{Path: filepath.ToSlash(rel), Mode: uint32(fi.Mode().Perm()), UID: int(st.Uid),
			GID: int(st.Gid), ModTime: fi.ModTime().Unix(), Origin: "dir"}
		if fi.Mode()&fs.ModeSetuid != 0 {
			e.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			e.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			e.Mode |= 0o1000
		}
		key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
		switch {
		case fi.IsDir():
			e.Kind = rootfs.KindDir
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Kind = rootfs.KindSymlink
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular() && st.Nlink > 1 && seen[key] != "":
			e.Kind, e.Link = rootfs.KindHardlink, seen[key]
		case fi.Mode().IsRegular():
			e.Kind, e.Size, e.Content = rootfs.KindFile, fi.Size(), rootfs.Content{Blob: p}
			seen[key] = e.Path
		default:
			return nil // devices, fifos and sockets: not in a benchmark tree
		}
		t.Put(e)
		return nil
	})
	return t, err
}
