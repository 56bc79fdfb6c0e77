package secrets

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts the tmpfs values live on at dir: mode 0700, root's,
// nosuid, nodev, noexec, and noswap where the kernel has it (6.4 and
// later; a host has no swap either way). It reports whether noswap took.
func MountTmpfs(dir string) (noswap bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("mounting secrets tmpfs: %w", err)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("secrets", dir, "tmpfs", flags, "mode=0700,size=16m,noswap"); err == nil {
		return true, nil
	}
	if err := unix.Mount("secrets", dir, "tmpfs", flags, "mode=0700,size=16m"); err != nil {
		return false, fmt.Errorf("mounting secrets tmpfs on %s: %w", dir, err)
	}
	return false, nil
}
