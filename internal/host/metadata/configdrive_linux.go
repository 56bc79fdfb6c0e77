package metadata

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Fetch finds the config drive, mounts it read-only, reads key and
// unmounts it.
func (c ConfigDrive) Fetch(_ context.Context, key string) ([]byte, error) {
	dev, fstype, err := c.find()
	if err != nil {
		return nil, err
	}
	base := c.MountDir
	if base == "" {
		base = "/run/bulkhead/configdrive"
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	// A mount point of its own: fetches of several keys may run at once.
	dir, err := os.MkdirTemp(base, "mnt-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(dir)
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount(dev, dir, fstype, flags, ""); err != nil {
		return nil, fmt.Errorf("mounting config drive %s (%s): %w", dev, fstype, err)
	}
	defer func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f)
}

// find returns the first block device whose file system is labelled as a
// config drive.
func (c ConfigDrive) find() (dev, fstype string, err error) {
	sys, devDir := c.SysBlock, c.DevDir
	if sys == "" {
		sys = "/sys/class/block"
	}
	if devDir == "" {
		devDir = "/dev"
	}
	ents, err := os.ReadDir(sys)
	if err != nil {
		return "", "", fmt.Errorf("listing block devices: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "dm-") || strings.HasPrefix(name, "ram") {
			continue
		}
		p := filepath.Join(devDir, name)
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		label, t := Label(f)
		f.Close()
		if t != "" && isDriveLabel(label) {
			return p, t, nil
		}
	}
	return "", "", fmt.Errorf("no config drive (a vfat or iso9660 file system labelled config-2 or cidata)")
}
