package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/backend"
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
	if err := makeFAT(disk, files, size, label, volumeID); err != nil {
		disk.release()
		return nil, err
	}
	return disk, nil
}

// buildFATFile makes a FAT32 file system of size bytes holding files in
// f, a sparse file written through a bufferedFile.
func buildFATFile(f *os.File, files []espFile, size int64, label string, volumeID uint32) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	d := newBufferedFile(f)
	if err := makeFAT(d, files, size, label, volumeID); err != nil {
		return err
	}
	return d.Flush()
}

// fatDevice is where makeFAT builds a file system: a memDisk or a
// bufferedFile.
type fatDevice interface {
	backend.Storage
	io.WriterAt
}

// makeFAT makes a FAT32 file system of size bytes holding files on dev.
func makeFAT(dev fatDevice, files []espFile, size int64, label string, volumeID uint32) error {
	if size < minFATSize {
		return fmt.Errorf("fat file system of %d bytes is below the minimum of %d", size, minFATSize)
	}
	fsys, err := fat32.Create(dev, fatFSSize(size), 0, 512, label, true)
	if err != nil {
		return fmt.Errorf("creating fat32: %w", err)
	}
	made := map[string]bool{"/": true}
	var buf []byte
	for _, f := range files {
		if err := mkdirAll(fsys, path.Dir(f.path), made); err != nil {
			return err
		}
		if err := writeFATFile(fsys, f, &buf); err != nil {
			return err
		}
	}
	if err := normalizeFAT(dev, volumeID); err != nil {
		return fmt.Errorf("fixing fat32 timestamps: %w", err)
	}
	return nil
}

// fatFSSize is the size of the FAT32 file system made on a device of size
// bytes. go-diskfs (v1.9.4) sizes each FAT as ceil(4·(sectors−reserved) /
// (cluster bytes + 8)) sectors, which leaves out the FAT's two reserved
// entries: for some sizes (64 MiB is one) the file system has two clusters
// more than its FAT has entries, and fsck.fat refuses it. Giving it a few
// sectors less than the device (the rest stays unused) makes the FAT big
// enough; the sum is go-diskfs's own, checked against fsck.fat in the tests.
func fatFSSize(size int64) int64 {
	const reserved, sector = 32, 512
	total := size / sector
	for ; total > reserved; total-- {
		spc := fatClusterSectors(total * sector)
		n := total - reserved
		denom := sector*spc + 8
		fatSectors := (4*n + denom - 1) / denom
		if fatSectors*(sector/4) >= (n-2*fatSectors)/spc+2 {
			break
		}
	}
	return total * sector
}

// fatClusterSectors is the cluster size, in sectors, go-diskfs picks for a
// FAT32 file system of size bytes (mkfs.fat's table).
func fatClusterSectors(size int64) int64 {
	switch {
	case size <= 260<<20:
		return 1
	case size <= 8<<30:
		return 8
	case size <= 16<<30:
		return 16
	case size <= 32<<30:
		return 32
	}
	return 64
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

// fatChunk is the most of a file writeFATFile passes to one Write:
// go-diskfs rewrites the whole FAT on each call, so chunks are large, and
// bounded so that no file is held whole.
const fatChunk = 16 << 20

// writeFATFile writes f, bytes in one Write and a file in chunks of
// fatChunk read into *buf. The clusters are the same either way: each
// Write takes the first free ones, in order.
func writeFATFile(fsys *fat32.FileSystem, f espFile, buf *[]byte) error {
	w, err := fsys.OpenFile(f.path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("creating %s: %w", f.path, err)
	}
	if err := copyFATFile(w, f, buf); err != nil {
		w.Close()
		if strings.Contains(err.Error(), "allocate") {
			return fmt.Errorf("writing %s: file system full: %w", f.path, err)
		}
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	return nil
}

func copyFATFile(w io.Writer, f espFile, buf *[]byte) error {
	if f.size == 0 {
		return nil
	}
	if f.src.Path == "" {
		_, err := w.Write(f.src.Data)
		return err
	}
	r, done, err := f.src.open()
	if err != nil {
		return err
	}
	defer done()
	if int64(len(*buf)) < min(f.size, fatChunk) {
		*buf = make([]byte, min(f.size, fatChunk))
	}
	for left := f.size; left > 0; {
		b := (*buf)[:min(left, int64(len(*buf)))]
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("reading %s: %w (it changed while building)", f.src, err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		left -= int64(len(b))
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

// fatDisk is a file system being normalized: its reserved sectors and
// FATs in head, the rest read and written through dev.
type fatDisk struct {
	dev interface {
		io.ReaderAt
		io.WriterAt
	}
	size int64
	head []byte
	fatGeometry
}

// normalizeFAT overwrites what go-diskfs takes from the clock: every
// directory entry's timestamps (go-diskfs stamps them with the time of the
// build) and the volume id, in the boot sector and its backup. It holds
// the reserved sectors and the FATs in memory, not the file system.
func normalizeFAT(dev fatDevice, volumeID uint32) error {
	st, err := dev.Stat()
	if err != nil {
		return err
	}
	boot := make([]byte, 512)
	if _, err := dev.ReadAt(boot, 0); err != nil {
		return err
	}
	g, err := readGeometry(boot)
	if err != nil {
		return err
	}
	if g.dataStart > st.Size() || g.dataStart > 1<<30 {
		return errors.New("fats outside the file system")
	}
	d := &fatDisk{dev: dev, size: st.Size(), head: make([]byte, g.dataStart), fatGeometry: g}
	if _, err := dev.ReadAt(d.head, 0); err != nil {
		return err
	}
	b := d.head
	binary.LittleEndian.PutUint32(b[0x43:], volumeID)
	sectors := []int64{0}
	backup := int64(binary.LittleEndian.Uint16(b[50:52])) * g.bytesPerSector
	if backup > 0 && backup+512 <= g.fatStart {
		binary.LittleEndian.PutUint32(b[backup+0x43:], volumeID)
		sectors = append(sectors, backup)
	}
	if err := d.fixDir(g.rootCluster, 0, map[uint32]bool{}); err != nil {
		return err
	}
	info, err := d.fixFreeCount()
	if err != nil {
		return err
	}
	for _, at := range append(sectors, info...) {
		if _, err := dev.WriteAt(b[at:at+512], at); err != nil {
			return err
		}
	}
	return nil
}

// fixFreeCount records the number of free clusters in the FSInfo sector and
// its backup, where go-diskfs leaves "unknown", and returns their offsets.
func (d *fatDisk) fixFreeCount() ([]int64, error) {
	b := d.head
	total := int64(binary.LittleEndian.Uint32(b[32:36]))
	clusters := (total*d.bytesPerSector - d.dataStart) / d.clusterSize
	if d.fatStart+(clusters+2)*4 > int64(len(b)) {
		return nil, errors.New("fats shorter than the file system's clusters")
	}
	free := uint32(0)
	for c := int64(2); c < clusters+2; c++ {
		if binary.LittleEndian.Uint32(b[d.fatStart+c*4:])&0x0fffffff == 0 {
			free++
		}
	}
	info := int64(binary.LittleEndian.Uint16(b[48:50])) * d.bytesPerSector
	backup := int64(binary.LittleEndian.Uint16(b[50:52])) * d.bytesPerSector
	var written []int64
	for _, at := range []int64{info, backup + info} {
		if at == 0 || at+512 > d.fatStart || binary.LittleEndian.Uint32(b[at:]) != 0x41615252 {
			continue
		}
		binary.LittleEndian.PutUint32(b[at+488:], free)
		written = append(written, at)
	}
	return written, nil
}

// chain returns the clusters of the chain starting at c.
func (d *fatDisk) chain(c uint32) ([]uint32, error) {
	var cs []uint32
	for c >= 2 && c < 0x0ffffff8 {
		if len(cs) > 1<<22 {
			return nil, errors.New("cluster chain too long")
		}
		cs = append(cs, c)
		at := d.fatStart + int64(c)*4
		if at+4 > int64(len(d.head)) {
			return nil, fmt.Errorf("cluster %d outside the fat", c)
		}
		c = binary.LittleEndian.Uint32(d.head[at:]) & 0x0fffffff
	}
	return cs, nil
}

// fixDir sets the timestamps of every entry of the directory at cluster c
// and of its subdirectories, and points each ".." entry at the parent
// directory (0 for the root, which go-diskfs gets wrong).
func (d *fatDisk) fixDir(c, parent uint32, seen map[uint32]bool) error {
	if seen[c] {
		return nil
	}
	seen[c] = true
	clusters, err := d.chain(c)
	if err != nil {
		return err
	}
	b := make([]byte, d.clusterSize)
	var subdirs []uint32
	for _, cl := range clusters {
		start := d.dataStart + int64(cl-2)*d.clusterSize
		if start+d.clusterSize > d.size {
			return fmt.Errorf("cluster %d outside the file system", cl)
		}
		if _, err := d.dev.ReadAt(b, start); err != nil {
			return err
		}
		end := false
		for off := 0; off < len(b) && !end; off += 32 {
			e := b[off : off+32]
			switch {
			case e[0] == 0:
				end = true
				continue
			case e[0] == 0xe5 || e[11]&0x3f == 0x0f: // deleted, long name part
				continue
			}
			stampEntry(e)
			if string(e[0:11]) == "..         " {
				binary.LittleEndian.PutUint16(e[20:], uint16(parent>>16))
				binary.LittleEndian.PutUint16(e[26:], uint16(parent))
			}
			if e[11]&0x10 != 0 && e[0] != '.' {
				subdirs = append(subdirs, uint32(binary.LittleEndian.Uint16(e[20:22]))<<16|uint32(binary.LittleEndian.Uint16(e[26:28])))
			}
		}
		if _, err := d.dev.WriteAt(b, start); err != nil {
			return err
		}
		if end {
			break
		}
	}
	self := c
	if c == d.rootCluster {
		self = 0
	}
	for _, sub := range subdirs {
		if err := d.fixDir(sub, self, seen); err != nil {
			return err
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
