package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Checks of on-disk structures read from images bulkhead did not
// necessarily write (scan reads artifacts from anywhere). go-diskfs trusts
// what it reads: it follows a FAT cluster chain that loops back on itself
// forever and sizes buffers from header fields, so every structure is
// checked here, within bounds of the file, before go-diskfs sees it.

// ErrMalformed reports an on-disk structure that is out of bounds or loops.
var ErrMalformed = errors.New("malformed image")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Limits on what a sane image holds; far beyond what bulkhead writes.
const (
	maxGPTEntries   = 1024
	maxGPTEntrySize = 4096
	maxFATBytes     = 64 << 20 // one FAT: 16M clusters
	maxISODirBytes  = 1 << 20
)

// checkGPT checks the primary GPT header of a disk of size bytes and its
// partitions: the entry array and every partition lie inside the disk.
func checkGPT(r io.ReaderAt, size int64) error {
	h := make([]byte, 92)
	if _, err := r.ReadAt(h, SectorSize); err != nil {
		return malformed("gpt header: %v", err)
	}
	if string(h[:8]) != "EFI PART" {
		return malformed("no gpt header")
	}
	entriesLBA := binary.LittleEndian.Uint64(h[72:])
	count := binary.LittleEndian.Uint32(h[80:])
	esize := binary.LittleEndian.Uint32(h[84:])
	sectors := uint64(size / SectorSize)
	switch {
	case count == 0 || count > maxGPTEntries:
		return malformed("gpt: %d partition entries (at most %d)", count, maxGPTEntries)
	case esize < 128 || esize > maxGPTEntrySize || esize%8 != 0:
		return malformed("gpt: partition entry size %d", esize)
	case entriesLBA < 2 || entriesLBA >= sectors || (sectors-entriesLBA)*SectorSize < uint64(count)*uint64(esize):
		return malformed("gpt: partition entries at LBA %d past the end of the disk", entriesLBA)
	}
	entries := make([]byte, int(count)*int(esize))
	if _, err := r.ReadAt(entries, int64(entriesLBA)*SectorSize); err != nil {
		return malformed("gpt entries: %v", err)
	}
	for i := 0; i < int(count); i++ {
		e := entries[i*int(esize):]
		first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if first == 0 && last == 0 {
			continue
		}
		if first > last || last >= sectors {
			return malformed("gpt: partition %d (%s) spans LBA %d-%d, outside the %d-sector disk", i+1, gptName(e[56:128]), first, last, sectors)
		}
	}
	return nil
}

// bootSector is what a FAT32 boot sector says about the file system.
type bootSector struct {
	bytesPerSector, sectorsPerCluster int64
	fatStart, fatBytes                int64 // first FAT, relative to the file system
	clusters                          uint32
	rootCluster                       uint32
}

// readBootSector reads and checks the boot sector of the FAT32 file
// system of size bytes at start.
func readBootSector(r io.ReaderAt, start, size int64) (*bootSector, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, start); err != nil {
		return nil, malformed("fat boot sector: %v", err)
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(b[o:])) }
	g := &bootSector{bytesPerSector: le16(11), sectorsPerCluster: int64(b[13])}
	reserved, nFATs, fatSectors := le16(14), int64(b[16]), le32(36)
	total := le16(19)
	if total == 0 {
		total = le32(32)
	}
	switch {
	case g.bytesPerSector < 512 || g.bytesPerSector > 4096 || g.bytesPerSector&(g.bytesPerSector-1) != 0:
		return nil, malformed("fat: %d bytes per sector", g.bytesPerSector)
	case g.sectorsPerCluster == 0 || g.sectorsPerCluster&(g.sectorsPerCluster-1) != 0:
		return nil, malformed("fat: %d sectors per cluster", g.sectorsPerCluster)
	case reserved == 0 || nFATs == 0 || fatSectors == 0:
		return nil, malformed("fat: not a fat32 file system")
	case total*g.bytesPerSector > size:
		return nil, malformed("fat: %d sectors do not fit in %d bytes", total, size)
	}
	g.fatStart, g.fatBytes = reserved*g.bytesPerSector, fatSectors*g.bytesPerSector
	data := total - reserved - nFATs*fatSectors
	if data <= 0 || g.fatBytes > maxFATBytes {
		return nil, malformed("fat: %d-byte fat for %d sectors", g.fatBytes, total)
	}
	g.clusters = uint32(min(data/g.sectorsPerCluster, g.fatBytes/4-2))
	g.rootCluster = uint32(le32(44))
	if g.rootCluster < 2 || g.rootCluster >= g.clusters+2 {
		return nil, malformed("fat: root directory at cluster %d of %d", g.rootCluster, g.clusters)
	}
	return g, nil
}

// checkFAT checks the FAT32 file system of size bytes at start: its
// geometry fits, and no cluster chain leaves the file system or loops. It
// reads the first FAT once and walks each cluster once.
func checkFAT(r io.ReaderAt, start, size int64) error {
	g, err := readBootSector(r, start, size)
	if err != nil {
		return err
	}
	fat := make([]byte, g.fatBytes)
	if _, err := r.ReadAt(fat, start+g.fatStart); err != nil {
		return malformed("fat: %v", err)
	}
	return checkChains(fat, g.clusters)
}

// checkChains checks the cluster chains of a FAT32 table holding clusters
// data clusters (numbered from 2): every link stays in range and no chain
// comes back to a cluster it passed.
func checkChains(fat []byte, clusters uint32) error {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, clusters+2)
	next := func(c uint32) uint32 { return binary.LittleEndian.Uint32(fat[4*c:]) & 0x0fffffff }
	for c := uint32(2); c < clusters+2; c++ {
		var path []uint32
		for n := c; ; n = next(n) {
			if n < 2 || n >= 0x0ffffff7 { // free, reserved, bad or end of chain
				break
			}
			if n >= clusters+2 {
				return malformed("fat: cluster chain from %d points to cluster %d, past the last (%d)", c, n, clusters+1)
			}
			if state[n] == onPath {
				return malformed("fat: cluster chain from %d loops at cluster %d", c, n)
			}
			if state[n] == done {
				break
			}
			state[n] = onPath
			path = append(path, n)
		}
		for _, n := range path {
			state[n] = done
		}
	}
	return nil
}

// findISOFile finds the file name (such as "EFIBOOT.IMG") in the root
// directory of the ISO 9660 image of size bytes, and returns where its
// data lies; the record's extent must lie inside the image.
func findISOFile(r io.ReaderAt, size int64, name string) (off, length int64, err error) {
	pvd := make([]byte, isoBlock)
	if _, err := r.ReadAt(pvd, 16*isoBlock); err != nil || pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return 0, 0, malformed("iso9660: no primary volume descriptor")
	}
	rootOff, rootLen, err := isoExtent(pvd[156:190], size)
	if err != nil {
		return 0, 0, fmt.Errorf("root directory: %w", err)
	}
	if rootLen > maxISODirBytes {
		return 0, 0, malformed("iso9660: %d-byte root directory", rootLen)
	}
	dir := make([]byte, rootLen)
	if _, err := r.ReadAt(dir, rootOff); err != nil {
		return 0, 0, malformed("iso9660 root directory: %v", err)
	}
	return findISORecord(dir, size, name)
}

// findISORecord looks through directory records for name.
func findISORecord(dir []byte, size int64, name string) (off, length int64, err error) {
	for pos := 0; pos < len(dir); {
		n := int(dir[pos])
		if n == 0 { // records do not cross a sector: skip to the next
			pos = (pos/isoBlock + 1) * isoBlock
			continue
		}
		if n < 34 || pos+n > len(dir) || 33+int(dir[pos+32]) > n {
			return 0, 0, malformed("iso9660: directory record at %d overruns the directory", pos)
		}
		rec := dir[pos : pos+n]
		id := string(rec[33 : 33+int(rec[32])])
		if before, _, _ := strings.Cut(id, ";"); strings.EqualFold(before, name) && rec[25]&2 == 0 {
			return isoExtent(rec, size)
		}
		pos += n
	}
	return 0, 0, fmt.Errorf("%s: %w", name, errNotFoundInISO)
}

var errNotFoundInISO = errors.New("not in the iso's root directory")

// isoExtent reads a directory record's extent and checks it lies inside an
// image of size bytes.
func isoExtent(rec []byte, size int64) (off, length int64, err error) {
	if len(rec) < 34 {
		return 0, 0, malformed("iso9660: short directory record")
	}
	lba := int64(binary.LittleEndian.Uint32(rec[2:]))
	length = int64(binary.LittleEndian.Uint32(rec[10:]))
	if !bytes.Equal(rec[2:6], reverse(rec[6:10])) || !bytes.Equal(rec[10:14], reverse(rec[14:18])) {
		return 0, 0, malformed("iso9660: directory record's both-endian fields disagree")
	}
	off = lba * isoBlock
	if off > size || length > size-off {
		return 0, 0, malformed("iso9660: extent of %d bytes at block %d past the end of the %d-byte image", length, lba, size)
	}
	return off, length, nil
}

// gptName decodes a partition name (UTF-16LE, NUL-padded), for errors.
func gptName(b []byte) string {
	var s strings.Builder
	for i := 0; i+1 < len(b); i += 2 {
		c := rune(binary.LittleEndian.Uint16(b[i:]))
		if c == 0 {
			break
		}
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		s.WriteRune(c)
	}
	return strconv.Quote(s.String())
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}
