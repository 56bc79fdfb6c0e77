package disk

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// ReadEntries returns the sorted file names in /loader/entries on the ESP
// of the raw image at path, such as "bulkhead-1.2.0+2-1.conf".
func ReadEntries(path string) ([]string, error) {
	var names []string
	err := withESP(path, func(fsys *fat32.FileSystem) error {
		list, err := fsys.ReadDir("loader/entries")
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
	t, err := gpt.Read(fileDisk{f}, SectorSize, SectorSize)
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
	d := fileDisk{f}
	t, err := gpt.Read(d, SectorSize, SectorSize)
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
	fsys, err := fat32.Read(d, size, start, SectorSize)
	if err != nil {
		return fmt.Errorf("esp of %s: %w", path, err)
	}
	return fn(fsys)
}
