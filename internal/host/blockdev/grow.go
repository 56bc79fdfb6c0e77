package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ReadWriterAt is a disk GrowGPT rewrites.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// GPT header field offsets (UEFI spec, table 5-5).
const (
	hdrCRC        = 16
	hdrMyLBA      = 24
	hdrAltLBA     = 32
	hdrLastUsable = 48
	hdrEntriesLBA = 72
	hdrEntriesCRC = 88
	entryLastLBA  = 40
)

// ErrNotLast means the partition to grow is not the last one on the disk.
var ErrNotLast = errors.New("not the last partition")

// GrowGPT grows partition number part (1-based) of the GPT disk rw, which
// is size bytes long, to the end of the disk, when the disk is larger than
// its table says: the backup table moves to the new end, and the
// partition ends at the new last usable sector, rounded down so that its
// end falls on a multiple of align bytes, as partitioning tools align. It
// returns the partition's new last LBA; grown is false, and nothing is
// written, when the backup table is already at the disk's end or the
// partition could not reach a later aligned end.
//
// The new backup table is written and synced first, then the primary,
// then the protective MBR's size, and only then is the old backup
// cleared. A power cut before the primary is written leaves the old
// primary, which still names the old backup, intact; a cut while it is
// written (its header and entries are two sectors) can leave a primary
// whose CRCs fail, and then firmware, gdisk and Linux with the gpt
// parameter find the new backup at the disk's end, which already
// describes the grown table. The partition must be the disk's last, and
// both CRCs of the primary must hold; anything else is refused untouched.
func GrowGPT(rw ReadWriterAt, size int64, sectorSize int, part int, align int64) (newLast uint64, grown bool, err error) {
	parts, err := ReadGPT(rw, sectorSize)
	if err != nil {
		return 0, false, err
	}
	ss := int64(sectorSize)
	hdr := make([]byte, ss)
	if _, err := rw.ReadAt(hdr, ss); err != nil {
		return 0, false, fmt.Errorf("reading gpt header: %w", err)
	}
	le := binary.LittleEndian
	hdrSize := le.Uint32(hdr[12:])
	oldAlt := le.Uint64(hdr[hdrAltLBA:])
	count, entrySize := le.Uint32(hdr[80:]), le.Uint32(hdr[84:])
	entriesLen := int64(count) * int64(entrySize)
	entrySectors := uint64((entriesLen + ss - 1) / ss)
	lastLBA := uint64(size/ss) - 1
	switch {
	case oldAlt > lastLBA:
		return 0, false, fmt.Errorf("the backup gpt (lba %d) lies beyond the disk's end (lba %d)", oldAlt, lastLBA)
	case oldAlt == lastLBA:
		return 0, false, nil
	}
	target, err := lastPartition(parts, part)
	if err != nil {
		return 0, false, err
	}
	lastUsable := lastLBA - 1 - entrySectors
	end := uint64((int64(lastUsable+1)*ss)/align*align/ss) - 1
	if end <= target.LastLBA {
		return target.LastLBA, false, nil
	}

	entries := make([]byte, entriesLen)
	if _, err := rw.ReadAt(entries, int64(le.Uint64(hdr[hdrEntriesLBA:]))*ss); err != nil {
		return 0, false, fmt.Errorf("reading gpt entries: %w", err)
	}
	le.PutUint64(entries[(part-1)*int(entrySize)+entryLastLBA:], end)
	entriesCRC := crc32.ChecksumIEEE(entries)

	primary := bytes.Clone(hdr[:hdrSize])
	le.PutUint64(primary[hdrAltLBA:], lastLBA)
	le.PutUint64(primary[hdrLastUsable:], lastUsable)
	le.PutUint32(primary[hdrEntriesCRC:], entriesCRC)
	backup := bytes.Clone(primary)
	le.PutUint64(backup[hdrMyLBA:], lastLBA)
	le.PutUint64(backup[hdrAltLBA:], 1)
	backupEntries := lastLBA - entrySectors
	le.PutUint64(backup[hdrEntriesLBA:], backupEntries)
	sealHeader(primary)
	sealHeader(backup)

	// Each table goes in one write, entries and header together where
	// they are adjacent (always, on disks bulkhead writes), so that a
	// device whose physical block holds both sectors (a 4 KiB block holds
	// LBA 0-7) writes the primary header and the sector holding the grown
	// entry at once.
	primaryLBA := le.Uint64(hdr[hdrEntriesLBA:])
	steps := []struct {
		what  string
		parts []write
	}{
		{"the backup gpt", []write{{int64(backupEntries) * ss, entries}, {int64(lastLBA) * ss, pad(backup, ss)}}},
		{"the gpt", []write{{ss, pad(primary, ss)}, {int64(primaryLBA) * ss, entries}}},
		{"the protective mbr", protectiveMBR(rw, lastLBA)},
		{"the old backup gpt", clearOldBackup(oldAlt, backupEntries, ss)},
	}
	for _, st := range steps {
		if err := writeSync(rw, coalesce(st.parts)); err != nil {
			return 0, false, fmt.Errorf("writing %s: %w", st.what, err)
		}
	}
	return end, true, nil
}

// lastPartition returns partition number n if no other partition ends
// after it.
func lastPartition(parts []Partition, n int) (Partition, error) {
	var target *Partition
	var maxEnd uint64
	for i := range parts {
		if parts[i].Number == n {
			target = &parts[i]
		}
		maxEnd = max(maxEnd, parts[i].LastLBA)
	}
	switch {
	case target == nil:
		return Partition{}, fmt.Errorf("no partition %d in the gpt", n)
	case target.LastLBA != maxEnd:
		return Partition{}, fmt.Errorf("partition %d: %w", n, ErrNotLast)
	}
	return *target, nil
}

// clearOldBackup returns the write that zeroes the old backup header at
// LBA oldAlt, which now lies inside the grown partition (past its file
// system) or in free space, so that no tool mistakes it for a table;
// nothing when the disk grew so little that the new backup entry array,
// from LBA newEntries, already covers it.
func clearOldBackup(oldAlt, newEntries uint64, ss int64) []write {
	if oldAlt >= newEntries {
		return nil
	}
	return []write{{int64(oldAlt) * ss, make([]byte, ss)}}
}

// write is a run of bytes to write at an offset.
type write struct {
	off int64
	b   []byte
}

// coalesce joins writes that follow each other on the disk.
func coalesce(ws []write) []write {
	var out []write
	for _, w := range ws {
		if n := len(out); n > 0 && out[n-1].off+int64(len(out[n-1].b)) == w.off {
			out[n-1].b = append(bytes.Clone(out[n-1].b), w.b...)
			continue
		}
		out = append(out, w)
	}
	return out
}

// writeSync writes ws and, when rw can, syncs them to the disk.
func writeSync(rw ReadWriterAt, ws []write) error {
	for _, w := range ws {
		if _, err := rw.WriteAt(w.b, w.off); err != nil {
			return err
		}
	}
	if s, ok := rw.(interface{ Sync() error }); ok && len(ws) > 0 {
		return s.Sync()
	}
	return nil
}

// protectiveMBR returns the write that makes a protective MBR cover the
// disk up to lastLBA (UEFI 2.10, 5.2.3: its size is the disk's, less
// LBA 0, capped at 0xffffffff), as libfdisk and gdisk do; nothing when
// sector 0 is not a plain protective MBR (one 0xee entry from LBA 1, the
// other three empty), such as a hybrid MBR, which is left alone.
func protectiveMBR(r io.ReaderAt, lastLBA uint64) []write {
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil || mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil
	}
	const table = 446
	e := mbr[table : table+16]
	if e[4] != 0xee || binary.LittleEndian.Uint32(e[8:]) != 1 || !allZero(mbr[table+16:510]) {
		return nil
	}
	size := make([]byte, 4)
	binary.LittleEndian.PutUint32(size, uint32(min(lastLBA, 0xffffffff)))
	if bytes.Equal(size, e[12:16]) {
		return nil
	}
	return []write{{table + 12, size}}
}

// sealHeader sets a GPT header's CRC.
func sealHeader(h []byte) {
	binary.LittleEndian.PutUint32(h[hdrCRC:], 0)
	binary.LittleEndian.PutUint32(h[hdrCRC:], crc32.ChecksumIEEE(h))
}

func pad(b []byte, n int64) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}
