package disk

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// ReadEntries returns the sorted file names in /loader/entries on the ESP
// of the raw image at path, such as "bulkhead-1.2.0+2-1.conf".
func ReadEntries(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading boot entries: %w", err)
	}
	defer f.Close()
	d := fileDisk{f}
	t, err := gpt.Read(d, SectorSize, SectorSize)
	if err != nil {
		return nil, fmt.Errorf("reading boot entries: partition table of %s: %w", path, err)
	}
	var esp *gpt.Partition
	for _, p := range t.Partitions {
		if strings.EqualFold(string(p.Type), TypeESP) {
			esp = p
			break
		}
	}
	if esp == nil {
		return nil, fmt.Errorf("reading boot entries: %s has no esp", path)
	}
	start := int64(esp.Start) * SectorSize
	size := int64(esp.End-esp.Start+1) * SectorSize
	fsys, err := fat32.Read(d, size, start, SectorSize)
	if err != nil {
		return nil, fmt.Errorf("reading boot entries: esp of %s: %w", path, err)
	}
	list, err := fsys.ReadDir("loader/entries")
	if err != nil {
		return nil, fmt.Errorf("reading boot entries: %w", err)
	}
	var names []string
	for _, e := range list {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
