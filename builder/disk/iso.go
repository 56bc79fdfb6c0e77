package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/bulkhead-dev/bulkhead/builder/output"
)

// ISOInput is what WriteISO puts on the image.
type ISOInput struct {
	// Bootloader is systemd-boot (systemd-bootx64.efi).
	Bootloader Source
	// Entry is written without a boot counter, its options as they are
	// (the initrd carries the root). Its Slot and Tries are ignored.
	Entry Entry
	// VolumeID is the ISO 9660 volume identifier; default DefaultVolumeID.
	VolumeID string
}

// DefaultVolumeID is the ISO volume identifier when ISOInput sets none.
const DefaultVolumeID = "BULKHEAD"

const (
	isoBlock     = 2048
	isoBootImage = "/EFIBOOT.IMG"
	isoCatalog   = "/BOOT.CAT"
)

var volumeIDRE = regexp.MustCompile(`^[A-Z0-9_]{1,32}$`)

// WriteISO writes the iso-efi image to path, atomically: an ISO 9660 image
// whose El Torito EFI boot image is a FAT file system holding systemd-boot
// and the entry.
func WriteISO(ctx context.Context, path string, in ISOInput) error {
	if err := writeISO(ctx, path, in); err != nil {
		return fmt.Errorf("writing iso image: %w", err)
	}
	return nil
}

func writeISO(ctx context.Context, path string, in ISOInput) error {
	if in.VolumeID == "" {
		in.VolumeID = DefaultVolumeID
	}
	if !volumeIDRE.MatchString(in.VolumeID) {
		return fmt.Errorf("volume id %q: want 1 to 32 of A-Z 0-9 _", in.VolumeID)
	}
	if in.Bootloader.IsZero() {
		return errors.New("no boot loader")
	}
	e := in.Entry
	e.Tries, e.Slot = 0, ""
	if err := e.validate(); err != nil {
		return fmt.Errorf("entry %s: %w", e.Version, err)
	}
	files, err := espTree(in.Bootloader, []Entry{e}, func(e Entry) string { return e.Options })
	if err != nil {
		return err
	}
	// The boot image is built where the ISO writer takes it from: a file
	// in a scratch directory next to the output (not $TMPDIR: a failed
	// build leaves nothing elsewhere), never whole in memory.
	ws, err := os.MkdirTemp(filepath.Dir(path), ".bulkhead-iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ws)
	err = writeBootImage(filepath.Join(ws, isoBootImage), files, volumeID([]byte(in.VolumeID), "iso esp volume id"))
	if err != nil {
		return fmt.Errorf("building efi boot image: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	out, err := output.Create(path)
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := writeISO9660(out.File(), in.VolumeID, ws); err != nil {
		return err
	}
	return out.Commit()
}

// writeBootImage makes the FAT boot image holding files at path, a sparse
// file written through a bufferedFile.
func writeBootImage(path string, files []espFile, volumeID uint32) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := buildFATFile(f, files, isoFATSize(files), "BULKHEAD", volumeID); err != nil {
		return err
	}
	return f.Close()
}

// isoFATSize sizes the boot image: the files, room for the FATs and
// directories, and at least minFATSize.
func isoFATSize(files []espFile) int64 {
	var n int64
	for _, f := range files {
		n += roundUp(f.size, 4096)
	}
	return max(minFATSize, roundUp(n+n/32+4*MiB, MiB))
}

// writeISO9660 writes the ISO file system into f: the files of the
// workspace ws, the boot image among them as its El Torito EFI boot image.
func writeISO9660(f *os.File, volID, ws string) error {
	fsys, err := iso9660.Create(fileDisk{f}, 0, 0, isoBlock, ws)
	if err != nil {
		return fmt.Errorf("creating iso9660: %w", err)
	}
	err = fsys.Finalize(iso9660.FinalizeOptions{
		VolumeIdentifier: volID,
		ElTorito: &iso9660.ElTorito{
			BootCatalog: isoCatalog,
			Entries: []*iso9660.ElToritoEntry{{
				Platform:  iso9660.EFI,
				Emulation: iso9660.NoEmulation,
				BootFile:  isoBootImage,
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("finalizing iso9660: %w", err)
	}
	if err := normalizeISO(f); err != nil {
		return fmt.Errorf("fixing iso9660 timestamps: %w", err)
	}
	return nil
}

// Fixed ISO 9660 times: 1980-01-01 00:00:00 UTC.
var (
	isoVolumeTime = []byte("1980010100000000\x00")
	isoUnsetTime  = []byte("0000000000000000\x00")
	isoRecordTime = []byte{80, 1, 1, 0, 0, 0, 0}
)

// normalizeISO overwrites the times go-diskfs takes from the clock and the
// workspace: the volume descriptors' dates and every directory record's.
func normalizeISO(f *os.File) error {
	for sector := int64(16); sector < 64; sector++ {
		vd := make([]byte, isoBlock)
		if _, err := f.ReadAt(vd, sector*isoBlock); err != nil {
			return err
		}
		if string(vd[1:6]) != "CD001" {
			return fmt.Errorf("sector %d is not a volume descriptor", sector)
		}
		switch vd[0] {
		case 255: // set terminator
			return nil
		case 1, 2: // primary, supplementary
			copy(vd[813:], isoVolumeTime) // creation
			copy(vd[830:], isoVolumeTime) // modification
			copy(vd[847:], isoUnsetTime)  // expiration
			copy(vd[864:], isoUnsetTime)  // effective
			padFields(vd)
			root := vd[156 : 156+34]
			copy(root[18:25], isoRecordTime)
			if _, err := f.WriteAt(vd, sector*isoBlock); err != nil {
				return err
			}
			if err := fixISODir(f, root, map[uint32]bool{}); err != nil {
				return err
			}
		}
	}
	return errors.New("no volume descriptor set terminator")
}

// isoTextFields are the volume descriptor's text fields, which ISO 9660 pads
// with spaces; go-diskfs pads them with NULs.
var isoTextFields = [][2]int{{8, 40}, {40, 72}, {190, 318}, {318, 446}, {446, 574}, {574, 702}, {702, 739}, {739, 776}, {776, 813}}

func padFields(vd []byte) {
	for _, f := range isoTextFields {
		for i := f[0]; i < f[1]; i++ {
			if vd[i] == 0 {
				vd[i] = ' '
			}
		}
	}
}

// fixISODir stamps every record of the directory that rec describes, and
// of its subdirectories.
func fixISODir(f *os.File, rec []byte, seen map[uint32]bool) error {
	lba := binary.LittleEndian.Uint32(rec[2:6])
	size := binary.LittleEndian.Uint32(rec[10:14])
	if seen[lba] || size > 64*MiB {
		return nil
	}
	seen[lba] = true
	dir := make([]byte, size)
	if _, err := f.ReadAt(dir, int64(lba)*isoBlock); err != nil {
		return err
	}
	var subdirs [][]byte
	for off := 0; off < len(dir); {
		n := int(dir[off])
		if n == 0 { // records do not cross sectors: go to the next one
			off = (off/isoBlock + 1) * isoBlock
			continue
		}
		if n < 34 || off+n > len(dir) {
			return fmt.Errorf("bad directory record at sector %d", lba)
		}
		r := dir[off : off+n]
		copy(r[18:25], isoRecordTime)
		nameLen := int(r[32])
		self := nameLen == 1 && r[33] <= 1
		if r[25]&2 != 0 && !self {
			subdirs = append(subdirs, r)
		}
		off += n
	}
	if _, err := f.WriteAt(dir, int64(lba)*isoBlock); err != nil {
		return err
	}
	for _, r := range subdirs {
		if err := fixISODir(f, r, seen); err != nil {
			return err
		}
	}
	return nil
}
