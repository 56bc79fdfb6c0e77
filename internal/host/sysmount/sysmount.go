// Package sysmount mounts the file systems every bulkhead host has (/proc,
// /sys, /dev, cgroup2, the tmpfs directories) and makes the root read-only.
package sysmount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one file system to mount.
type Mount struct {
	Source, Target, Type string
	Flags                uintptr
	Data                 string
	// Optional mounts are skipped when the kernel lacks the file system.
	Optional bool
}

const (
	nosuid = unix.MS_NOSUID
	nodev  = unix.MS_NODEV
	noexec = unix.MS_NOEXEC
)

// System are the host's mounts, in order. /var is a tmpfs until the data
// partition exists.
var System = []Mount{
	{Source: "proc", Target: "/proc", Type: "proc", Flags: nosuid | nodev | noexec},
	{Source: "sysfs", Target: "/sys", Type: "sysfs", Flags: nosuid | nodev | noexec},
	{Source: "devtmpfs", Target: "/dev", Type: "devtmpfs", Flags: nosuid | noexec, Data: "mode=0755"},
	{Source: "devpts", Target: "/dev/pts", Type: "devpts", Flags: nosuid | noexec, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
	{Source: "shm", Target: "/dev/shm", Type: "tmpfs", Flags: nosuid | nodev | noexec, Data: "mode=1777"},
	{Source: "mqueue", Target: "/dev/mqueue", Type: "mqueue", Flags: nosuid | nodev | noexec, Optional: true},
	{Source: "cgroup2", Target: "/sys/fs/cgroup", Type: "cgroup2", Flags: nosuid | nodev | noexec, Data: "nsdelegate"},
	{Source: "securityfs", Target: "/sys/kernel/security", Type: "securityfs", Flags: nosuid | nodev | noexec, Optional: true},
	{Source: "bpf", Target: "/sys/fs/bpf", Type: "bpf", Flags: nosuid | nodev | noexec, Data: "mode=0700", Optional: true},
	{Source: "tmpfs", Target: "/run", Type: "tmpfs", Flags: nosuid | nodev, Data: "mode=0755"},
	{Source: "tmpfs", Target: "/tmp", Type: "tmpfs", Flags: nosuid | nodev, Data: "mode=1777"},
	{Source: "tmpfs", Target: "/var", Type: "tmpfs", Flags: nosuid | nodev, Data: "mode=0755"},
}

// MountAll mounts each of ms that is not mounted already. It returns the
// optional mounts it skipped, and stops at the first required mount that
// fails.
func MountAll(ms []Mount) (skipped []string, err error) {
	for _, m := range ms {
		if IsMountPoint(m.Target) {
			continue
		}
		if m.Optional && !Supported(m.Type) {
			skipped = append(skipped, m.Target)
			continue
		}
		if err := os.MkdirAll(m.Target, 0o755); err != nil && !errors.Is(err, unix.EROFS) {
			return skipped, fmt.Errorf("creating mount point %s: %w", m.Target, err)
		}
		if err := unix.Mount(m.Source, m.Target, m.Type, m.Flags, m.Data); err != nil {
			if m.Optional {
				skipped = append(skipped, m.Target)
				continue
			}
			return skipped, fmt.Errorf("mounting %s on %s: %w", m.Type, m.Target, err)
		}
	}
	return skipped, nil
}

// IsMountPoint reports whether path is the root of a mount (its device
// differs from its parent's, or it is "/").
func IsMountPoint(path string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(path, &st) != nil || unix.Lstat(path+"/..", &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino
}

// Supported reports whether the kernel knows the file system type (per
// /proc/filesystems).
func Supported(fstype string) bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fstype {
			return true
		}
	}
	return false
}

// EnableControllers turns on, for the children of the cgroup v2 directory
// dir, every controller dir offers, and returns the ones enabled.
func EnableControllers(dir string) ([]string, error) {
	data, err := os.ReadFile(dir + "/cgroup.controllers")
	if err != nil {
		return nil, fmt.Errorf("reading cgroup controllers: %w", err)
	}
	ctrls := strings.Fields(string(data))
	var enabled []string
	var errs []error
	for _, c := range ctrls {
		if err := os.WriteFile(dir+"/cgroup.subtree_control", []byte("+"+c), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("enabling cgroup controller %s: %w", c, err))
			continue
		}
		enabled = append(enabled, c)
	}
	return enabled, errors.Join(errs...)
}

// RootReadOnly remounts / read-only.
func RootReadOnly() error {
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("remounting / read-only: %w", err)
	}
	return nil
}

// probeName is the file ProbeReadOnly tries to create.
const probeName = ".bulkhead-write-probe"

// ProbeReadOnly checks that dir refuses writes: creating a file there must
// fail with EROFS. A probe file that could be created is removed again.
func ProbeReadOnly(dir string) error {
	p := filepath.Join(dir, probeName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close()
		os.Remove(p)
		return fmt.Errorf("%s is writable", dir)
	case errors.Is(err, unix.EROFS):
		return nil
	default:
		return fmt.Errorf("probing %s: %w (want a read-only file system)", dir, err)
	}
}
