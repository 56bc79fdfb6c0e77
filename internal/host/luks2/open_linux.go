package luks2

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/bulkhead-dev/bulkhead/internal/host/dm"
)

// Open maps h's data segment on dev as device-mapper device name with
// dm-crypt and the volume key, and returns its node, /dev/dm-N (made if
// devtmpfs has not made it). The modules in Modules must be loaded.
func Open(ctx context.Context, dev, name string, key []byte, h *Header) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	size, err := deviceSize(dev)
	if err != nil {
		return "", fmt.Errorf("opening LUKS2 volume %s: %w", dev, err)
	}
	t, err := CryptTarget(h, key, dev, uint64(size)/512)
	if err != nil {
		return "", fmt.Errorf("opening LUKS2 volume %s: %w", dev, err)
	}
	ctl, err := dm.Open()
	if err != nil {
		return "", err
	}
	defer ctl.Close()
	d, err := ctl.Create(name, 0, t)
	if err != nil {
		return "", fmt.Errorf("opening LUKS2 volume %s: %w", dev, err)
	}
	if err := d.EnsureNode(); err != nil {
		_ = ctl.Remove(name)
		return "", err
	}
	return d.Path(), nil
}

// Close removes the device-mapper device name that Open made.
func Close(name string) error {
	ctl, err := dm.Open()
	if err != nil {
		return err
	}
	defer ctl.Close()
	return ctl.Remove(name)
}

// deviceSize is the size of a block device (or file) in bytes.
func deviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, io.SeekEnd)
}
