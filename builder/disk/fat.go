package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// minFATSize is the smallest FAT32 file system made: FAT32 needs at least
// 65525 clusters, 32 MiB of 512-byte clusters, or firmware reads it as FAT16.
const minFATSize = 64 << 20

// Fixed FAT timestamps: 1980-01-01 00:00:00, the FAT epoch.
const (
	fatDate = 1<<5 | 1 // day 1, month 1, year 1980
	fatTime = 0
)

// buildFAT makes a FAT32 file system of size bytes holding files, in memory.
func buildFAT(files []espFile, size int64, label string, volumeID uint32) (*memDisk, error) {
	if size < minFATSize {
		return nil, fmt.Errorf("fat file system of %d bytes is below the minimum of %d", size, minFATSize)
	}
	disk, err := newMemDisk(size)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			disk.release()
		}
	}()
	fsys, err := fat32.Create(disk, size, 0, 512, label, true)
	if err != nil {
		return nil, fmt.Errorf("creating fat32: %w", err)
	}
	made := map[string]bool{"/": true}
	for _, f := range files {
		if err := mkdirAll(fsys, path.Dir(f.path), made); err != nil {
			return nil, err
		}
		if err := writeFATFile(fsys, f); err != nil {
			return nil, err
		}
	}
	if err := normalizeFAT(disk.b, volumeID); err != nil {
		return nil, fmt.Errorf("fixing fat32 timestamps: %w", err)
	}
	ok = true
	return disk, nil
}

func mkdirAll(fsys *fat32.FileSystem, dir string, made map[string]bool) error {
	if made[dir] {
		return nil
	}
	if err := mkdirAll(fsys, path.Dir(dir), made); err != nil {
		return err
	}
	if err := fsys.Mkdir(dir); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	made[dir] = true
	return nil
}

// writeFATFile writes f in one Write: go-diskfs rewrites the whole FAT on
// each call.
func writeFATFile(fsys *fat32.FileSystem, f espFile) error {
	w, err := fsys.OpenFile(f.path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("creating %s: %w", f.path, err)
	}
	if len(f.data) > 0 {
		if _, err := w.Write(f.data); err != nil {
			w.Close()
			if strings.Contains(err.Error(), "allocate") {
				return fmt.Errorf("writing %s: file system full: %w", f.path, err)
			}
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	return nil
}

// fatGeometry is what normalizeFAT needs of a FAT32 boot sector.
type fatGeometry struct {
	bytesPerSector, clusterSize int64
	fatStart, dataStart         int64
	rootCluster                 uint32
}

func readGeometry(b []byte) (fatGeometry, error) {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xaa {
		return fatGeometry{}, errors.New("no boot sector signature")
	}
	bps := int64(binary.LittleEndian.Uint16(b[11:13]))
	spc := int64(b[13])
	reserved := int64(binary.LittleEndian.Uint16(b[14:16]))
	fats := int64(b[16])
	spf := int64(binary.LittleEndian.Uint32(b[36:40]))
	if bps == 0 || spc == 0 || fats == 0 || spf == 0 {
		return fatGeometry{}, errors.New("not a fat32 boot sector")
	}
	return fatGeometry{
		bytesPerSector: bps,
		clusterSize:    bps * spc,
		fatStart:       reserved * bps,
		dataStart:      (reserved + fats*spf) * bps,
		rootCluster:    binary.LittleEndian.Uint32(b[44:48]),
	}, nil
}

// normalizeFAT overwrites what go-diskfs takes from the clock: every
// directory entry's timestamps (go-diskfs stamps them with the time of the
// build) and the volume id, in the boot sector and its backup.
func normalizeFAT(b []byte, volumeID uint32) error {
	g, err := readGeometry(b)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[0x43:], volumeID)
	backup := int64(binary.LittleEndian.Uint16(b[50:52])) * g.bytesPerSector
	if backup > 0 && backup+512 <= int64(len(b)) {
		binary.LittleEndian.PutUint32(b[backup+0x43:], volumeID)
	}
	if err := g.fixDir(b, g.rootCluster, 0, map[uint32]bool{}); err != nil {
		return err
	}
	return g.fixFreeCount(b)
}

// fixFreeCount records the number of free clusters in the FSInfo sector and
// its backup, where go-diskfs leaves "unknown".
func (g fatGeometry) fixFreeCount(b []byte) error {
	total := int64(binary.LittleEndian.Uint32(b[32:36]))
	clusters := (total*g.bytesPerSector - g.dataStart) / g.clusterSize
	free := uint32(0)
	for c := int64(2); c < clusters+2; c++ {
		if binary.LittleEndian.Uint32(b[g.fatStart+c*4:])&0x0fffffff == 0 {
			free++
		}
	}
	info := int64(binary.LittleEndian.Uint16(b[48:50])) * g.bytesPerSector
	backup := int64(binary.LittleEndian.Uint16(b[50:52])) * g.bytesPerSector
	for _, at := range []int64{info, backup + info} {
		if at == 0 || at+512 > g.dataStart || binary.LittleEndian.Uint32(b[at:]) != 0x41615252 {
			continue
		}
		binary.LittleEndian.PutUint32(b[at+488:], free)
	}
	return nil
}

// chain returns the clusters of the chain starting at c.
func (g fatGeometry) chain(b []byte, c uint32) ([]uint32, error) {
	var cs []uint32
	for c >= 2 && c < 0x0ffffff8 {
		if len(cs) > 1<<22 {
			return nil, errors.New("cluster chain too long")
		}
		cs = append(cs, c)
		at := g.fatStart + int64(c)*4
		if at+4 > g.dataStart {
			return nil, fmt.Errorf("cluster %d outside the fat", c)
		}
		c = binary.LittleEndian.Uint32(b[at:]) & 0x0fffffff
	}
	return cs, nil
}

// fixDir sets the timestamps of every entry of the directory at cluster c
// and of its subdirectories, and points each ".." entry at the parent
// directory (0 for the root, which go-diskfs gets wrong).
func (g fatGeometry) fixDir(b []byte, c, parent uint32, seen map[uint32]bool) error {
	if seen[c] {
		return nil
	}
	seen[c] = true
	clusters, err := g.chain(b, c)
	if err != nil {
		return err
	}
	for _, cl := range clusters {
		start := g.dataStart + int64(cl-2)*g.clusterSize
		if start+g.clusterSize > int64(len(b)) {
			return fmt.Errorf("cluster %d outside the file system", cl)
		}
		for off := start; off < start+g.clusterSize; off += 32 {
			e := b[off : off+32]
			switch {
			case e[0] == 0:
				return nil
			case e[0] == 0xe5 || e[11]&0x3f == 0x0f: // deleted, long name part
				continue
			}
			stampEntry(e)
			if string(e[0:11]) == "..         " {
				binary.LittleEndian.PutUint16(e[20:], uint16(parent>>16))
				binary.LittleEndian.PutUint16(e[26:], uint16(parent))
			}
			if e[11]&0x10 != 0 && e[0] != '.' {
				sub := uint32(binary.LittleEndian.Uint16(e[20:22]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:28]))
				self := c
				if c == g.rootCluster {
					self = 0
				}
				if err := g.fixDir(b, sub, self, seen); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// stampEntry sets a short directory entry's creation, access and write times.
func stampEntry(e []byte) {
	e[13] = 0
	binary.LittleEndian.PutUint16(e[14:], fatTime)
	binary.LittleEndian.PutUint16(e[16:], fatDate)
	binary.LittleEndian.PutUint16(e[18:], fatDate)
	binary.LittleEndian.PutUint16(e[22:], fatTime)
	binary.LittleEndian.PutUint16(e[24:], fatDate)
}
