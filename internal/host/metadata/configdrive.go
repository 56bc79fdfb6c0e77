package metadata

import (
	"bytes"
	"io"
	"strings"
)

// Config drive labels: OpenStack's and NoCloud's.
var driveLabels = []string{"config-2", "cidata"}

// ConfigDrive reads files from an OpenStack (config-2) or NoCloud (cidata)
// config drive, vfat or iso9660: the drive is mounted read-only (nosuid,
// nodev, noexec) for one read and unmounted after. Keys are paths from the
// drive's root: openstack/latest/meta_data.json, user-data, meta-data.
type ConfigDrive struct {
	// SysBlock lists the block devices; default /sys/class/block.
	SysBlock string
	// DevDir holds their nodes; default /dev.
	DevDir string
	// MountDir holds the drive's mount point for a read (one per read,
	// removed after); default /run/bulkhead/configdrive.
	MountDir string
}

// Label reads the label of a vfat or iso9660 file system, and its type
// ("vfat" or "iso9660"); "" when it is neither.
func Label(r io.ReaderAt) (label, fstype string) {
	pvd := make([]byte, 72)
	if _, err := r.ReadAt(pvd, 32768); err == nil && pvd[0] == 1 && string(pvd[1:6]) == "CD001" {
		return strings.TrimRight(string(pvd[40:72]), " \x00"), "iso9660"
	}
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil || bs[510] != 0x55 || bs[511] != 0xaa {
		return "", ""
	}
	switch {
	case string(bs[82:87]) == "FAT32" && bs[66] == 0x29:
		return strings.TrimRight(string(bs[71:82]), " \x00"), "vfat"
	case bytes.HasPrefix(bs[54:62], []byte("FAT")) && bs[38] == 0x29:
		return strings.TrimRight(string(bs[43:54]), " \x00"), "vfat"
	}
	return "", ""
}

// isDriveLabel says a label names a config drive (vfat labels are upper
// case).
func isDriveLabel(l string) bool {
	for _, d := range driveLabels {
		if strings.EqualFold(l, d) {
			return true
		}
	}
	return false
}
