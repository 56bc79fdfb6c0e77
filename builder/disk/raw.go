package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
)

// Sizes.
const (
	MiB               = 1 << 20
	SectorSize        = 512
	MinESPSize        = 64 * MiB
	DefaultDataSize   = 32 * MiB
	MinRootSize       = 64 * MiB
	sizeGranule       = 64 * MiB
	espHeadroom       = 16 * MiB
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
	// Partition sizes, rounded up to MiB. 0 sizes a partition from its
	// content, with room for an update to add a version beside the running
	// one: the ESP twice its files (boot loader and entries) plus 16 MiB,
	// at least MinESPSize; a root slot twice the largest root image, at
	// least MinRootSize; both rounded up to 64 MiB. Data is DefaultDataSize:
	// the host grows it to the end of its disk, so the image holds (and
	// hashes) no empty /var; a host written to a disk the size of the image
	// keeps a small /var unless the spec's data_size asks for more.
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
	// Digest is the image file's sha256 ("sha256:<hex>"), computed while
	// writing it. ReadLayout leaves it empty.
	Digest string
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
	esp, err := rawESP(in, l, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("writing raw image: %w", err)
	}
	defer esp.remove()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := output.Create(path)
	if err != nil {
		return nil, fmt.Errorf("writing raw image: %w", err)
	}
	defer out.Abort()
	if l.Digest, err = writeDisk(ctx, out.File(), l, esp, in); err != nil {
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
	files, err := espContent(in)
	if err != nil {
		return nil, err
	}
	espSize := roundUp(orDefault(in.ESPSize, max(MinESPSize, roundUp(2*files+espHeadroom, sizeGranule))), MiB)
	if espSize < minFATSize {
		return nil, fmt.Errorf("esp size %d is below the minimum of %d", espSize, minFATSize)
	}
	rootSize := roundUp(orDefault(in.RootSize, max(MinRootSize, roundUp(2*largest, sizeGranule))), MiB)
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

// espContent is the size of the ESP's files: the boot loader and each
// entry's kernel and initrd.
func espContent(in RawInput) (int64, error) {
	srcs := []Source{in.Bootloader}
	for _, e := range in.Entries {
		srcs = append(srcs, e.Kernel, e.Initrd)
	}
	var total int64
	for _, s := range srcs {
		if s.IsZero() {
			continue
		}
		n, err := s.size()
		if err != nil {
			return 0, fmt.Errorf("esp content: %w", err)
		}
		total += n
	}
	return total, nil
}

func orDefault(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

func roundUp(v, to int64) int64 { return (v + to - 1) / to * to }

// rawESP builds the ESP file system in a sparse scratch file in dir: its
// pages are the page cache's, not the process's (an anonymous mapping
// held the kernel and initrd in the build's resident memory).
func rawESP(in RawInput, l *Layout, dir string) (*scratchFile, error) {
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
	f, err := os.CreateTemp(dir, ".esp-*.img")
	if err != nil {
		return nil, fmt.Errorf("building esp: %w", err)
	}
	sf := &scratchFile{f: f, size: esp.Size}
	if err := buildFATFile(f, files, esp.Size, "ESP", volumeID(in.Seed, "esp volume id")); err != nil {
		sf.remove()
		return nil, fmt.Errorf("building esp: %w", err)
	}
	return sf, nil
}

// writeDisk fills the sized temporary file f front to back: partition
// table, ESP, roots, backup partition table. It returns the file's digest,
// hashed on the way (the holes from memory).
func writeDisk(ctx context.Context, f *os.File, l *Layout, esp *scratchFile, in RawInput) (string, error) {
	if err := f.Truncate(l.Size); err != nil {
		return "", err
	}
	g, err := gptBytes(l)
	if err != nil {
		return "", err
	}
	defer g.release()
	w := newHashedFile(f)
	digest, err := writeParts(ctx, w, l, g, esp, in)
	if err != nil {
		w.abort()
		return "", err
	}
	return digest, nil
}

// writeParts writes the partition tables, the ESP and the roots through w
// and returns the digest.
func writeParts(ctx context.Context, w *hashedFile, l *Layout, g *gptTables, esp *scratchFile, in RawInput) (string, error) {
	if err := g.head.eachDirty(w.writeAt); err != nil {
		return "", err
	}
	p, _ := l.Partition(partitionNameESP)
	err := esp.eachData(func(off int64, b []byte) error { return w.writeAt(p.Offset+off, b) })
	if err != nil {
		return "", fmt.Errorf("writing esp: %w", err)
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
		if err := writeSparse(ctx, w, p.Offset, p.Size, r.src); err != nil {
			return "", fmt.Errorf("writing %s: %w", r.name, err)
		}
	}
	if err := g.tail.eachDirty(func(off int64, b []byte) error { return w.writeAt(g.tailOff+off, b) }); err != nil {
		return "", err
	}
	return w.finish(l.Size)
}

// gptTables is the partition table of a layout as it lies on the disk:
// the protective MBR and primary GPT in the first MiB (head), the backup
// GPT in the last (tail, from tailOff).
type gptTables struct {
	head, tail *memDisk
	tailOff    int64
}

func gptBytes(l *Layout) (*gptTables, error) {
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
	g := &gptTables{tailOff: l.Size - partitionAlign}
	var err error
	if g.head, err = newMemDisk(partitionAlign); err == nil {
		g.tail, err = newMemDisk(partitionAlign)
	}
	if err == nil {
		err = t.Write(g, l.Size)
	}
	if err != nil {
		g.release()
		return nil, fmt.Errorf("writing partition table: %w", err)
	}
	return g, nil
}

func (g *gptTables) release() {
	g.head.release()
	g.tail.release()
}

// WriteAt puts a write of the partition table into head or tail.
func (g *gptTables) WriteAt(p []byte, off int64) (int, error) {
	if off >= g.tailOff {
		return g.tail.WriteAt(p, off-g.tailOff)
	}
	return g.head.WriteAt(p, off)
}

// The rest of backend.WritableFile, which gpt.Table.Write takes; it only
// writes.
func (g *gptTables) Read([]byte) (int, error) { return 0, errors.New("partition table: write only") }
func (g *gptTables) ReadAt([]byte, int64) (int, error) {
	return 0, errors.New("partition table: write only")
}
func (g *gptTables) Seek(int64, int) (int64, error) {
	return 0, errors.New("partition table: write only")
}
func (g *gptTables) Close() error               { return nil }
func (g *gptTables) Stat() (fs.FileInfo, error) { return memInfo(g.tailOff + partitionAlign), nil }
