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
// written, when the disk has not grown by at least align.
//
// The backup table is written first, then the primary: a power cut
// between the two leaves the old primary, which still names the old
// backup, and the old backup, which is only cleared at the end. The
// partition must be the disk's last, and both CRCs of the primary must
// hold; anything else is refused untouched.
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

	writes := []struct {
		what string
		off  int64
		b    []byte
	}{
		{"backup gpt entries", int64(backupEntries) * ss, entries},
		{"backup gpt header", int64(lastLBA) * ss, pad(backup, ss)},
		{"gpt entries", int64(le.Uint64(hdr[hdrEntriesLBA:])) * ss, entries},
		{"gpt header", ss, pad(primary, ss)},
		// The old backup header now lies inside the grown partition, past
		// its file system: clear it so no tool mistakes it for a table.
		{"old backup gpt header", int64(oldAlt) * ss, make([]byte, ss)},
	}
	for _, w := range writes {
		if _, err := rw.WriteAt(w.b, w.off); err != nil {
			return 0, false, fmt.Errorf("writing %s: %w", w.what, err)
		}
		if s, ok := rw.(interface{ Sync() error }); ok && w.what == "backup gpt header" {
			if err := s.Sync(); err != nil {
				return 0, false, fmt.Errorf("syncing the backup gpt: %w", err)
			}
		}
	}
	if s, ok := rw.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return 0, false, fmt.Errorf("syncing the gpt: %w", err)
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
