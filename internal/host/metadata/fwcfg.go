package metadata

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FwCfgDir is where the kernel's qemu_fw_cfg module shows fw_cfg entries.
const FwCfgDir = "/sys/firmware/qemu_fw_cfg"

// FwCfg reads qemu fw_cfg entries (qemu -fw_cfg name=opt/NAME,...) through
// the kernel's sysfs: FwCfgDir/by_name/KEY/raw.
type FwCfg struct {
	// Dir is the sysfs directory; default FwCfgDir.
	Dir string
}

// Fetch reads the entry named key.
func (f FwCfg) Fetch(_ context.Context, key string) ([]byte, error) {
	dir := f.Dir
	if dir == "" {
		dir = FwCfgDir
	}
	if strings.Contains(key, "..") {
		return nil, fmt.Errorf("fw_cfg name %q: no .. allowed", key)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("no fw_cfg in this machine (%s: %w)", dir, err)
	}
	file, err := os.Open(filepath.Join(dir, "by_name", filepath.FromSlash(key), "raw"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return readLimited(file)
}
