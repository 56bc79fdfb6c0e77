package stage0

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestInInitramfs(t *testing.T) {
	initramfs := `1 1 0:2 / / rw - rootfs rootfs rw,size=498220k,nr_inodes=124555
15 1 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw
`
	switched := `22 1 0:20 / / ro,relatime - tmpfs tmpfs ro,mode=755
23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw
`
	overmounted := initramfs + "30 1 0:25 / / rw - tmpfs tmpfs rw\n"
	for _, c := range []struct {
		in   string
		want bool
	}{{initramfs, true}, {switched, false}, {overmounted, false}} {
		got, err := InInitramfs(strings.NewReader(c.in))
		if err != nil || got != c.want {
			t.Errorf("InInitramfs(%q) = %v, %v", c.in, got, err)
		}
	}
	if _, err := InInitramfs(strings.NewReader("")); err == nil {
		t.Error("empty mountinfo: want error")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if in, err := InInitramfs(f); err != nil || in {
		t.Errorf("this machine's root: %v, %v", in, err)
	}
}

// TestCopyPreservesEverything copies a tree holding every kind of entry the
// initramfs can hold, with a mount below it and the destination inside it.
func TestCopyPreservesEverything(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root for mknod and chown (tests run as root here)")
	}
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(src, "usr/bin/tool"), []byte("binary"), 0o755))
	must(unix.Chown(filepath.Join(src, "usr/bin/tool"), 1234, 5678))
	must(unix.Chmod(filepath.Join(src, "usr/bin/tool"), 0o4755))
	must(os.Link(filepath.Join(src, "usr/bin/tool"), filepath.Join(src, "usr/bin/alias")))
	must(os.Symlink("usr/bin/tool", filepath.Join(src, "init")))
	must(os.Mkdir(filepath.Join(src, "dev"), 0o755))
	must(unix.Mknod(filepath.Join(src, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Chmod(filepath.Join(src, "dev/null"), 0o666))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(os.Mkdir(filepath.Join(src, "secret"), 0o700))
	must(os.Mkdir(filepath.Join(src, "proc"), 0o555))
	must(unix.Mount("tmpfs", filepath.Join(src, "proc"), "tmpfs", 0, ""))
	defer unix.Unmount(filepath.Join(src, "proc"), unix.MNT_DETACH)
	must(os.WriteFile(filepath.Join(src, "proc/hidden"), nil, 0o644))
	dst := filepath.Join(src, "newroot")
	must(os.Mkdir(dst, 0o755))
	must(unix.Mount("tmpfs", dst, "tmpfs", 0, "mode=0755"))
	defer unix.Unmount(dst, unix.MNT_DETACH)

	if _, err := Copy(src, dst); err != nil {
		t.Fatal(err)
	}
	stat := func(p string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, p), &st))
		return st
	}
	tool := stat("usr/bin/tool")
	if tool.Mode != unix.S_IFREG|0o4755 || tool.Uid != 1234 || tool.Gid != 5678 || tool.Nlink != 2 {
		t.Errorf("tool: mode %o uid %d gid %d nlink %d", tool.Mode, tool.Uid, tool.Gid, tool.Nlink)
	}
	if alias := stat("usr/bin/alias"); alias.Ino != tool.Ino {
		t.Error("hard link lost")
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "usr/bin/tool")); string(data) != "binary" {
		t.Errorf("content %q", data)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "init")); l != "usr/bin/tool" {
		t.Errorf("symlink %q", l)
	}
	if null := stat("dev/null"); null.Mode != unix.S_IFCHR|0o666 || null.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %d", null.Mode, null.Rdev)
	}
	if fifo := stat("fifo"); fifo.Mode != unix.S_IFIFO|0o640 {
		t.Errorf("fifo mode %o", fifo.Mode)
	}
	if s := stat("secret"); s.Mode != unix.S_IFDIR|0o700 {
		t.Errorf("secret mode %o", s.Mode)
	}
	var srcBin unix.Stat_t
	must(unix.Lstat(filepath.Join(src, "usr/bin"), &srcBin))
	if s := stat("usr/bin"); s.Mtim != srcBin.Mtim {
		t.Error("directory mtime not kept")
	}
	if _, err := os.Lstat(filepath.Join(dst, "proc")); err != nil {
		t.Error("mount point not created")
	}
	if _, err := os.Lstat(filepath.Join(dst, "proc/hidden")); err == nil {
		t.Error("copied across a mount")
	}
	if _, err := os.Lstat(filepath.Join(dst, "newroot")); err == nil {
		t.Error("copied the destination into itself")
	}
}
