package stage0

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

type inode struct{ dev, ino uint64 }

// copier copies one file system tree, keeping hard links.
type copier struct {
	dev   uint64
	dst   string
	links map[inode]string
	n     int
}

// Copy copies the tree at src into the existing directory dst: modes,
// owners, times, extended attributes, symlinks, device nodes, FIFOs and
// hard links. It stays on src's file system (a mount point below src is
// created as an empty directory) and skips dst itself. It returns the number
// of entries copied.
func Copy(src, dst string) (int, error) {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return 0, fmt.Errorf("copying %s: %w", src, err)
	}
	c := &copier{dev: st.Dev, dst: dst, links: map[inode]string{}}
	var dstSt unix.Stat_t
	if err := unix.Lstat(dst, &dstSt); err != nil {
		return 0, fmt.Errorf("copying to %s: %w", dst, err)
	}
	skip := inode{dstSt.Dev, dstSt.Ino}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if (inode{st.Dev, st.Ino}) == skip {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if err := c.entry(p, target, &st); err != nil {
			return fmt.Errorf("copying %s: %w", p, err)
		}
		if d.IsDir() && st.Dev != c.dev {
			return filepath.SkipDir // another file system mounted here
		}
		return nil
	})
	if err != nil {
		return c.n, err
	}
	// Directory times last: creating entries changed them.
	return c.n, c.dirTimes(src)
}

func (c *copier) entry(src, dst string, st *unix.Stat_t) error {
	c.n++
	mode := st.Mode & unix.S_IFMT
	perm := st.Mode & 0o7777
	switch mode {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := inode{st.Dev, st.Ino}
			if first, ok := c.links[key]; ok {
				return os.Link(first, dst)
			}
			c.links[key] = dst
		}
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	default: // device, FIFO, socket
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if mode != unix.S_IFLNK {
		// After chown, which clears set-id bits.
		if err := unix.Chmod(dst, perm); err != nil {
			return err
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if mode == unix.S_IFDIR {
		return nil
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		return nil // no xattrs, or a file system without them
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return nil
	}
	for _, name := range splitNull(buf[:size]) {
		vsize, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(src, name, val); err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val[:vsize], 0); err != nil {
			return fmt.Errorf("setting xattr %s: %w", name, err)
		}
	}
	return nil
}

func splitNull(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}

// dirTimes copies directory times from src to the copy, deepest first.
func (c *copier) dirTimes(src string) error {
	var dirs []string
	_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		if _, err := os.Lstat(filepath.Join(c.dst, rel)); err != nil {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Dev != c.dev {
			return filepath.SkipDir
		}
		dirs = append(dirs, rel)
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(src, dirs[i]), &st); err != nil {
			continue
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(c.dst, dirs[i]), ts, 0); err != nil {
			return fmt.Errorf("setting times of %s: %w", dirs[i], err)
		}
	}
	return nil
}
