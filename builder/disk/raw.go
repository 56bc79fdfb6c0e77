package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
)

// Sizes.
const (
	MiB               = 1 << 20
	SectorSize        = 512
	DefaultESPSize    = 256 * MiB
	DefaultDataSize   = 256 * MiB
	MinRootSize       = 256 * MiB
	rootSizeGranule   = 64 * MiB
	partitionAlign    = MiB
	partitionNameESP  = "esp"
	partitionNameA    = "root-a"
	partitionNameB    = "root-b"
	partitionNameData = "data"
)

// RawInput is what WriteRaw puts on the disk.
type RawInput struct {
	// Bootloader is systemd-boot (systemd-bootx64.efi).
	Bootloader Source
	// Entries are written in order; systemd-boot sorts them itself.
	Entries []Entry
	// RootA is written at the start of root-a, RootB (optional) of root-b.
	RootA, RootB Source
	// Partition sizes, rounded up to MiB. 0 means the default: ESP
	// DefaultESPSize, data DefaultDataSize, root the larger of MinRootSize
	// and twice the largest root image, rounded up to 64 MiB.
	ESPSize, RootSize, DataSize int64
	// Seed derives the disk and partition GUIDs and the ESP's volume id.
	// Give each host its own seed; the same seed gives the same GUIDs.
	Seed []byte
	// Enroll, when set, holds PK.auth, KEK.auth and db.auth: systemd-boot
	// enrolls them on a machine in Secure Boot setup mode (see withEnroll).
	Enroll map[string][]byte
}

// Partition is one GPT partition of a written image.
type Partition struct {
	Name              string
	Type, GUID        string // lower case
	FirstLBA, LastLBA uint64 // inclusive, in SectorSize sectors
	Offset, Size      int64  // in bytes
}

// Layout is the partition table of a written image.
type Layout struct {
	DiskGUID   string
	Size       int64 // of the image file
	Partitions []Partition
}

// Partition returns the partition called name.
func (l *Layout) Partition(name string) (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return Partition{}, false
}

// WriteRaw writes the raw-efi disk image to path, atomically, and returns
// its layout. The file is sparse: its size is the whole disk, but only
// non-zero blocks are written.
func WriteRaw(ctx context.Context, path string, in RawInput) (*Layout, error) {
	l, err := planRaw(in)
	if err != nil {
		return nil, fmt.Errorf("writing raw image: %w", err)
	}
	esp, err := rawESP(in, l)
	if err != nil {
		return nil, fmt.Errorf("writing raw image: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := output.Create(path)
	if err != nil {
		return nil, fmt.Errorf("writing raw image: %w", err)
	}
	defer out.Abort()
	if err := writeDisk(ctx, out.File(), l, esp, in); err != nil {
		return nil, fmt.Errorf("writing raw image %s: %w", path, err)
	}
	if err := out.Commit(); err != nil {
		return nil, fmt.Errorf("writing raw image: %w", err)
	}
	return l, nil
}

func (in RawInput) validate() error {
	if in.Bootloader.IsZero() {
		return errors.New("no boot loader")
	}
	if len(in.Entries) == 0 {
		return errors.New("no entries")
	}
	for _, e := range in.Entries {
		if err := e.validate(); err != nil {
			return fmt.Errorf("entry %s: %w", e.Version, err)
		}
		if e.Slot != "a" && e.Slot != "b" {
			return fmt.Errorf("entry %s: slot %q is not a or b", e.Version, e.Slot)
		}
	}
	if err := checkVersions(in.Entries); err != nil {
		return err
	}
	if in.ESPSize < 0 || in.RootSize < 0 || in.DataSize < 0 {
		return errors.New("negative partition size")
	}
	return nil
}

// planRaw checks the input and lays out the disk.
func planRaw(in RawInput) (*Layout, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	largest := int64(0)
	for _, s := range []Source{in.RootA, in.RootB} {
		if s.IsZero() {
			continue
		}
		n, err := s.size()
		if err != nil {
			return nil, fmt.Errorf("root image: %w", err)
		}
		largest = max(largest, n)
	}
	espSize := roundUp(orDefault(in.ESPSize, DefaultESPSize), MiB)
	if espSize < minFATSize {
		return nil, fmt.Errorf("esp size %d is below the minimum of %d", espSize, minFATSize)
	}
	rootSize := roundUp(orDefault(in.RootSize, max(MinRootSize, roundUp(2*largest, rootSizeGranule))), MiB)
	if largest > rootSize {
		return nil, fmt.Errorf("root image of %d bytes does not fit a %d-byte root partition", largest, rootSize)
	}
	dataSize := roundUp(orDefault(in.DataSize, DefaultDataSize), MiB)
	l := &Layout{DiskGUID: guid(in.Seed, "disk")}
	off := int64(partitionAlign)
	for _, p := range []struct {
		name, typ string
		size      int64
	}{
		{partitionNameESP, TypeESP, espSize},
		{partitionNameA, TypeRootX86, rootSize},
		{partitionNameB, TypeRootX86, rootSize},
		{partitionNameData, TypeVar, dataSize},
	} {
		l.Partitions = append(l.Partitions, Partition{
			Name: p.name, Type: p.typ, GUID: guid(in.Seed, "partition "+p.name),
			FirstLBA: uint64(off / SectorSize), LastLBA: uint64((off+p.size)/SectorSize - 1),
			Offset: off, Size: p.size,
		})
		off += p.size
	}
	// The backup GPT (33 sectors) lives in the last MiB.
	l.Size = off + partitionAlign
	return l, nil
}

func orDefault(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

func roundUp(v, to int64) int64 { return (v + to - 1) / to * to }

// rawESP builds the ESP file system in memory.
func rawESP(in RawInput, l *Layout) (*memDisk, error) {
	data, _ := l.Partition(partitionNameData)
	options := func(e Entry) string {
		if e.UKI != nil {
			// One image serves either slot: stage 0 boots the root slot
			// holding the command line's root hash.
			return e.Options
		}
		slot, _ := l.Partition("root-" + e.Slot)
		o, _ := bootentry.SlotOptions(e.Options, slot.GUID, data.GUID) // validated by planRaw
		return o
	}
	files, err := espTree(in.Bootloader, in.Entries, options)
	if err != nil {
		return nil, err
	}
	if files, err = withEnroll(files, in.Enroll); err != nil {
		return nil, err
	}
	esp, _ := l.Partition(partitionNameESP)
	b, err := buildFAT(files, esp.Size, "ESP", volumeID(in.Seed, "esp volume id"))
	if err != nil {
		return nil, fmt.Errorf("building esp: %w", err)
	}
	return b, nil
}

// writeDisk fills the sized temporary file f: partition table, ESP, roots.
func writeDisk(ctx context.Context, f *os.File, l *Layout, esp *memDisk, in RawInput) error {
	if err := f.Truncate(l.Size); err != nil {
		return err
	}
	if err := writeGPT(f, l); err != nil {
		return err
	}
	p, _ := l.Partition(partitionNameESP)
	err := esp.eachDirty(func(off int64, b []byte) error { return writeNonZero(f, p.Offset+off, b) })
	if err != nil {
		return fmt.Errorf("writing esp: %w", err)
	}
	roots := []struct {
		name string
		src  Source
	}{{partitionNameA, in.RootA}, {partitionNameB, in.RootB}}
	for _, r := range roots {
		if r.src.IsZero() {
			continue
		}
		p, _ := l.Partition(r.name)
		if err := writeSparse(ctx, f, p.Offset, p.Size, r.src); err != nil {
			return fmt.Errorf("writing %s: %w", r.name, err)
		}
	}
	return nil
}

func writeGPT(f *os.File, l *Layout) error {
	t := &gpt.Table{
		LogicalSectorSize:  SectorSize,
		PhysicalSectorSize: SectorSize,
		ProtectiveMBR:      true,
		GUID:               l.DiskGUID,
	}
	for i, p := range l.Partitions {
		t.Partitions = append(t.Partitions, &gpt.Partition{
			Index: i + 1,
			Start: p.FirstLBA,
			End:   p.LastLBA,
			Size:  uint64(p.Size),
			Type:  gpt.Type(strings.ToUpper(p.Type)),
			Name:  p.Name,
			GUID:  p.GUID,
		})
	}
	if err := t.Write(fileDisk{f}, l.Size); err != nil {
		return fmt.Errorf("writing partition table: %w", err)
	}
	return nil
}
