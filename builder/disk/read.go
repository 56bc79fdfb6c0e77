package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/bulkhead-dev/bulkhead/builder/uki"
	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
)

// ReadEntries returns the sorted file names in /loader/entries on the ESP
// of the raw image at path, such as "bulkhead-1.2.0+2-1.conf".
func ReadEntries(path string) ([]string, error) { return readDirNames(path, bootentry.EntriesDir) }

// ReadUKIs returns the sorted file names in /EFI/Linux on the ESP of the
// raw image at path, such as "bulkhead-1.2.0+2-1.efi".
func ReadUKIs(path string) ([]string, error) { return readDirNames(path, bootentry.LinuxDir) }

func readDirNames(path, dir string) ([]string, error) {
	var names []string
	err := withESP(path, func(fsys *fat32.FileSystem) error {
		list, err := fsys.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range list {
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading boot entries: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// ReadESPFile returns the content of the file name ("loader/entries/x.conf")
// on the ESP of the raw image at path.
func ReadESPFile(path, name string) ([]byte, error) {
	var b []byte
	err := withESP(path, func(fsys *fat32.FileSystem) error {
		f, err := fsys.OpenFile(name, os.O_RDONLY)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err = io.ReadAll(f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s from the esp: %w", name, err)
	}
	return b, nil
}

// ReadLayout returns the partition table of the raw image at path.
func ReadLayout(path string) (*Layout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading partition table: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading partition table: %w", err)
	}
	t, err := readGPT(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("reading partition table of %s: %w", path, err)
	}
	l := &Layout{DiskGUID: strings.ToLower(t.GUID), Size: st.Size()}
	for _, p := range t.Partitions {
		if p.Start == 0 && p.End == 0 {
			continue
		}
		l.Partitions = append(l.Partitions, Partition{
			Name: p.Name, Type: strings.ToLower(string(p.Type)), GUID: strings.ToLower(p.GUID),
			FirstLBA: p.Start, LastLBA: p.End,
			Offset: int64(p.Start) * SectorSize, Size: int64(p.End-p.Start+1) * SectorSize,
		})
	}
	return l, nil
}

// withESP opens the ESP of the raw image at path and calls fn with it.
func withESP(path string, fn func(*fat32.FileSystem) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	t, err := readGPT(f, st.Size())
	if err != nil {
		return fmt.Errorf("partition table of %s: %w", path, err)
	}
	var esp *gpt.Partition
	for _, p := range t.Partitions {
		if strings.EqualFold(string(p.Type), TypeESP) {
			esp = p
			break
		}
	}
	if esp == nil {
		return fmt.Errorf("%s has no esp", path)
	}
	start := int64(esp.Start) * SectorSize
	size := int64(esp.End-esp.Start+1) * SectorSize
	if err := withFAT(f, start, size, fn); err != nil {
		return fmt.Errorf("esp of %s: %w", path, err)
	}
	return nil
}

// readGPT reads the partition table of the disk in f (size bytes) once
// checkGPT has found it sound.
func readGPT(f *os.File, size int64) (t *gpt.Table, err error) {
	if err := checkGPT(f, size); err != nil {
		return nil, err
	}
	err = safely(func() error {
		t, err = gpt.Read(fileDisk{f}, SectorSize, SectorSize)
		return err
	})
	return t, err
}

// withFAT checks the FAT32 file system of size bytes at start in f (see
// checkFAT) and calls fn with it.
func withFAT(f *os.File, start, size int64, fn func(*fat32.FileSystem) error) error {
	if err := checkFAT(f, start, size); err != nil {
		return err
	}
	return safely(func() error {
		fsys, err := fat32.Read(fileDisk{f}, size, start, SectorSize)
		if err != nil {
			return err
		}
		return fn(fsys)
	})
}

// safely turns a panic of go-diskfs on a malformed image into an error.
func safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = malformed("%v", r)
		}
	}()
	return fn()
}

// ReadISOFile returns the content of the file name on the El Torito EFI
// boot image (the ESP) of the iso-efi image at path.
func ReadISOFile(path, name string) ([]byte, error) {
	var b []byte
	err := withISOESP(path, func(fsys *fat32.FileSystem) error {
		var err error
		b, err = readFATFile(fsys, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s from the iso's efi image: %w", name, err)
	}
	return b, nil
}

// BootEntry is what the first boot entry of an image boots.
type BootEntry struct {
	Name           string // the entry's file name
	Options        string // the kernel command line
	Kernel, Initrd []byte
}

// ReadBootEntry reads the first boot entry (entries sorted by file name)
// of a raw-efi or iso-efi image, with its kernel and initrd.
func ReadBootEntry(path string) (*BootEntry, error) {
	var be BootEntry
	read := func(fsys *fat32.FileSystem) error {
		names := fatNames(fsys, "loader/entries", ".conf")
		if len(names) == 0 {
			if ukis := fatNames(fsys, bootentry.LinuxDir, ".efi"); len(ukis) > 0 {
				return readUKIEntry(fsys, ukis[0], &be)
			}
			return errors.New("no boot entries")
		}
		sort.Strings(names)
		be.Name = names[0]
		conf, err := readFATFile(fsys, "loader/entries/"+be.Name)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(conf), "\n") {
			key, value, _ := strings.Cut(strings.TrimSpace(line), " ")
			value = strings.TrimSpace(value)
			switch key {
			case "options":
				be.Options = value
			case "linux":
				be.Kernel, err = readFATFile(fsys, strings.TrimPrefix(value, "/"))
			case "initrd":
				be.Initrd, err = readFATFile(fsys, strings.TrimPrefix(value, "/"))
			}
			if err != nil {
				return fmt.Errorf("entry %s: %w", be.Name, err)
			}
		}
		if be.Kernel == nil || be.Initrd == nil {
			return fmt.Errorf("entry %s names no linux or no initrd", be.Name)
		}
		return nil
	}
	err := withISOESP(path, read)
	if errors.Is(err, errNotISO) {
		err = withESP(path, read)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the boot entry of %s: %w", path, err)
	}
	return &be, nil
}

// ReadBootInitrd returns the initrd the first boot entry of a raw-efi or
// iso-efi image boots.
func ReadBootInitrd(path string) ([]byte, error) {
	be, err := ReadBootEntry(path)
	if err != nil {
		return nil, err
	}
	return be.Initrd, nil
}

// fatNames lists the files of dir whose names end in suffix, sorted; none
// when dir is missing.
func fatNames(fsys *fat32.FileSystem, dir, suffix string) []string {
	list, err := fsys.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range list {
		if !e.IsDir() && strings.HasSuffix(e.Name(), suffix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// readUKIEntry reads the unified kernel image name of EFI/Linux into be:
// its kernel, initrd and command line are PE sections.
func readUKIEntry(fsys *fat32.FileSystem, name string, be *BootEntry) error {
	img, err := readFATFile(fsys, bootentry.LinuxDir+"/"+name)
	if err != nil {
		return err
	}
	sections, err := uki.ReadSections(img)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", bootentry.LinuxDir, name, err)
	}
	be.Name, be.Kernel, be.Initrd = name, sections[".linux"], sections[".initrd"]
	be.Options = strings.TrimRight(string(sections[".cmdline"]), "\x00\n")
	if be.Kernel == nil || be.Initrd == nil {
		return fmt.Errorf("%s/%s has no .linux or no .initrd section", bootentry.LinuxDir, name)
	}
	return nil
}

func readFATFile(fsys *fat32.FileSystem, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// errNotISO says a file is no ISO 9660 image.
var errNotISO = errors.New("not an iso 9660 image")

// withISOESP finds the El Torito EFI boot image of the ISO at path (a
// bounds-checked EFIBOOT.IMG record of the root directory) and calls fn
// with its FAT file system, read in place.
func withISOESP(path string, fn func(*fat32.FileSystem) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	magic := make([]byte, 5)
	if _, err := f.ReadAt(magic, 16*isoBlock+1); err != nil || string(magic) != "CD001" {
		return errNotISO
	}
	off, size, err := findISOFile(f, st.Size(), strings.TrimPrefix(isoBootImage, "/"))
	if err != nil {
		return err
	}
	if err := withFAT(f, off, size, fn); err != nil {
		return fmt.Errorf("%s: %w", isoBootImage, err)
	}
	return nil
}
