// Package blockdev finds and prepares the block devices stage 0 needs:
// partitions named by their GPT unique partition GUID (PARTUUID, which the
// kernel's uevents do not carry, so the GPT is read here), and read-only
// loop devices on image files.
package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// Partition is one used entry of a GPT.
type Partition struct {
	Number   int    // 1-based entry index, the kernel's partition number
	Type     string // type GUID, lowercase canonical form
	UUID     string // unique partition GUID (PARTUUID), lowercase canonical form
	FirstLBA uint64
	LastLBA  uint64
	Name     string
}

// gptSignature starts the GPT header.
var gptSignature = []byte("EFI PART")

// ReadGPT reads the primary GPT of a disk with the given logical sector
// size, checking the header and entry-array CRCs, and returns its used
// entries in table order.
func ReadGPT(r io.ReaderAt, sectorSize int) ([]Partition, error) {
	hdr := make([]byte, sectorSize)
	if _, err := r.ReadAt(hdr, int64(sectorSize)); err != nil {
		return nil, fmt.Errorf("reading gpt header: %w", err)
	}
	if !bytes.Equal(hdr[:8], gptSignature) {
		return nil, ErrNoGPT
	}
	le := binary.LittleEndian
	size := le.Uint32(hdr[12:])
	if size < 92 || int(size) > sectorSize {
		return nil, fmt.Errorf("reading gpt header: bad header size %d", size)
	}
	check := bytes.Clone(hdr[:size])
	binary.LittleEndian.PutUint32(check[16:], 0)
	if crc32.ChecksumIEEE(check) != le.Uint32(hdr[16:]) {
		return nil, errors.New("reading gpt header: bad header crc")
	}
	entriesLBA := le.Uint64(hdr[72:])
	count := le.Uint32(hdr[80:])
	entrySize := le.Uint32(hdr[84:])
	if entrySize < 128 || entrySize%8 != 0 || count > 1024 {
		return nil, fmt.Errorf("reading gpt header: bad entry array %d×%d", count, entrySize)
	}
	entries := make([]byte, int(count)*int(entrySize))
	if _, err := r.ReadAt(entries, int64(entriesLBA)*int64(sectorSize)); err != nil {
		return nil, fmt.Errorf("reading gpt entries: %w", err)
	}
	if crc32.ChecksumIEEE(entries) != le.Uint32(hdr[88:]) {
		return nil, errors.New("reading gpt entries: bad crc")
	}
	var parts []Partition
	for i := range int(count) {
		e := entries[i*int(entrySize) : (i+1)*int(entrySize)]
		if allZero(e[:16]) {
			continue
		}
		parts = append(parts, Partition{
			Number:   i + 1,
			Type:     GUIDString(e[0:16]),
			UUID:     GUIDString(e[16:32]),
			FirstLBA: le.Uint64(e[32:]),
			LastLBA:  le.Uint64(e[40:]),
			Name:     utf16String(e[56:128]),
		})
	}
	return parts, nil
}

// ErrNoGPT means the disk has no GPT signature.
var ErrNoGPT = errors.New("no gpt")

// GUIDString formats a GUID stored in the mixed-endian GPT layout as
// lowercase xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func GUIDString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16String(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// PartUUIDFromCmdline finds key=PARTUUID=<guid> (as in root=PARTUUID=…) in
// a kernel command line and returns the GUID in lowercase. The last
// occurrence of key wins, as in the kernel; ok is false when key is absent
// or does not name a PARTUUID.
func PartUUIDFromCmdline(cmdline, key string) (string, bool) {
	uuid, ok := "", false
	for _, f := range strings.Fields(cmdline) {
		v, found := strings.CutPrefix(f, key+"=")
		if !found {
			continue
		}
		u, isPart := cutPrefixFold(v, "PARTUUID=")
		uuid, ok = strings.ToLower(u), isPart && u != ""
	}
	if !ok {
		return "", false
	}
	return uuid, true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
