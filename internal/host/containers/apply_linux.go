package containers

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// propagation are the mount flags that change a mount's propagation type;
// mount(2) ignores them when combined with other operations, so Apply makes
// them a call of their own.
const propagation = unix.MS_SHARED | unix.MS_PRIVATE | unix.MS_SLAVE | unix.MS_UNBINDABLE

// Apply performs the steps in order and stops at the first failure.
func Apply(steps []Step) error {
	for _, s := range steps {
		if err := apply(s); err != nil {
			return err
		}
	}
	return nil
}

func apply(s Step) error {
	switch s.Op {
	case Mkdir, Cgroup:
		if err := os.MkdirAll(s.Path, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", s.Path, err)
		}
	case Mount:
		return mount(s)
	}
	return nil
}

func mount(s Step) error {
	prop := s.Flags & propagation
	rest := s.Flags &^ (propagation | unix.MS_REC)
	if s.Flags&unix.MS_BIND != 0 {
		rest |= s.Flags & unix.MS_REC
	}
	if rest != 0 || s.Type != "" || s.Data != "" || prop == 0 {
		if err := unix.Mount(s.Source, s.Path, s.Type, rest, s.Data); err != nil {
			return fmt.Errorf("mounting %s on %s: %w", s.Source, s.Path, err)
		}
		// A read-only bind needs a remount to take effect.
		if rest&(unix.MS_BIND|unix.MS_RDONLY) == unix.MS_BIND|unix.MS_RDONLY {
			if err := unix.Mount("", s.Path, "", rest|unix.MS_REMOUNT, ""); err != nil {
				return fmt.Errorf("remounting %s read-only: %w", s.Path, err)
			}
		}
	}
	if prop != 0 {
		if err := unix.Mount("", s.Path, "", prop|(s.Flags&unix.MS_REC), ""); err != nil {
			return fmt.Errorf("setting propagation of %s: %w", s.Path, err)
		}
	}
	return nil
}

// Cleanup undoes the mount on the container's root (best effort), as
// LinuxKit does when a container is done.
func Cleanup(b Bundle) {
	_ = unix.Unmount(b.Rootfs(), unix.MNT_DETACH)
}
