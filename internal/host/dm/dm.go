// Package dm drives the kernel's device mapper through its ioctl interface
// (linux/dm-ioctl.h, version 4): create a device, load a table into it,
// resume it, reload it, remove it. It needs no libdevmapper and no dmsetup,
// so the init can set up dm-verity from the initramfs.
//
// The encoding of requests is plain Go (dm.go) and tested against the
// kernel header; the ioctls themselves are in dm_linux.go.
package dm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes and offsets of struct dm_ioctl and struct dm_target_spec.
const (
	headerSize     = 312 // sizeof(struct dm_ioctl)
	targetSpecSize = 40  // sizeof(struct dm_target_spec)
	nameLen        = 128 // DM_NAME_LEN
	uuidLen        = 129 // DM_UUID_LEN
	typeNameLen    = 16  // DM_MAX_TYPE_NAME

	offVersion     = 0
	offDataSize    = 12
	offDataStart   = 16
	offTargetCount = 20
	offOpenCount   = 24
	offFlags       = 28
	offEventNr     = 32
	offDev         = 40
	offName        = 48
	offUUID        = 176

	offSectorStart = 0
	offLength      = 8
	offStatus      = 16
	offNext        = 20
	offTargetType  = 24
)

// version is the interface version bulkhead speaks: 4.0.0 asks the kernel
// for nothing newer than the first version 4 interface.
var version = [3]uint32{4, 0, 0}

// Command numbers (enum in dm-ioctl.h).
const (
	cmdVersion     = 0
	cmdDevCreate   = 3
	cmdDevRemove   = 4
	cmdDevSuspend  = 6
	cmdDevStatus   = 7
	cmdTableLoad   = 9
	cmdTableStatus = 12
)

// Flags of struct dm_ioctl.
const (
	FlagReadOnly = 1 << 0 // DM_READONLY_FLAG: the table (and device) is read-only
	flagSuspend  = 1 << 1 // DM_SUSPEND_FLAG: suspend rather than resume
)

// ioctlNumber is _IOWR(DM_IOCTL, cmd, struct dm_ioctl).
func ioctlNumber(cmd uint32) uint32 {
	const (
		dirReadWrite = 3
		dmIoctlType  = 0xfd
	)
	return dirReadWrite<<30 | headerSize<<16 | dmIoctlType<<8 | cmd
}

// Target is one line of a device-mapper table: Length sectors from Start
// handled by target Type with its parameter string.
type Target struct {
	Start  uint64
	Length uint64
	Type   string // "verity", "linear", …
	Params string
}

// request is a decoded struct dm_ioctl header.
type request struct {
	DataSize    uint32
	DataStart   uint32
	TargetCount uint32
	OpenCount   int32
	Flags       uint32
	EventNr     uint32
	Dev         uint64
	Name        string
	UUID        string
}

// encodeHeader writes a dm_ioctl header for name with flags into the first
// headerSize bytes of buf, which is the whole request (data_size is
// len(buf)) with data starting at dataStart.
func encodeHeader(buf []byte, name string, flags uint32, dataStart uint32, targets uint32) error {
	if len(name) >= nameLen {
		return fmt.Errorf("device name %q is longer than %d bytes", name, nameLen-1)
	}
	le := binary.LittleEndian
	for i, v := range version {
		le.PutUint32(buf[offVersion+4*i:], v)
	}
	le.PutUint32(buf[offDataSize:], uint32(len(buf)))
	le.PutUint32(buf[offDataStart:], dataStart)
	le.PutUint32(buf[offTargetCount:], targets)
	le.PutUint32(buf[offFlags:], flags)
	copy(buf[offName:offName+nameLen], name)
	return nil
}

// decodeHeader reads the header the kernel wrote back.
func decodeHeader(buf []byte) request {
	le := binary.LittleEndian
	return request{
		DataSize:    le.Uint32(buf[offDataSize:]),
		DataStart:   le.Uint32(buf[offDataStart:]),
		TargetCount: le.Uint32(buf[offTargetCount:]),
		OpenCount:   int32(le.Uint32(buf[offOpenCount:])),
		Flags:       le.Uint32(buf[offFlags:]),
		EventNr:     le.Uint32(buf[offEventNr:]),
		Dev:         le.Uint64(buf[offDev:]),
		Name:        cString(buf[offName : offName+nameLen]),
		UUID:        cString(buf[offUUID : offUUID+uuidLen]),
	}
}

// newRequest is a request with room for extra bytes of data after the
// header (and at least 16 KiB for the kernel's answers).
func newRequest(name string, flags uint32, extra int) ([]byte, error) {
	size := max(headerSize+align8(extra), 16<<10)
	buf := make([]byte, size)
	return buf, encodeHeader(buf, name, flags, headerSize, 0)
}

// encodeTable is a DM_TABLE_LOAD request: the header, then per target a
// dm_target_spec followed by its NUL-terminated parameters, each spec
// 8-byte aligned, its next field the distance to the following one.
func encodeTable(name string, flags uint32, targets []Target) ([]byte, error) {
	if len(targets) == 0 {
		return nil, errors.New("empty table")
	}
	size := headerSize
	for _, t := range targets {
		size += specSize(t)
	}
	buf := make([]byte, size)
	if err := encodeHeader(buf, name, flags, headerSize, uint32(len(targets))); err != nil {
		return nil, err
	}
	off := headerSize
	for _, t := range targets {
		if len(t.Type) >= typeNameLen {
			return nil, fmt.Errorf("target type %q is longer than %d bytes", t.Type, typeNameLen-1)
		}
		n := specSize(t)
		spec := buf[off : off+n]
		le := binary.LittleEndian
		le.PutUint64(spec[offSectorStart:], t.Start)
		le.PutUint64(spec[offLength:], t.Length)
		le.PutUint32(spec[offNext:], uint32(n))
		copy(spec[offTargetType:offTargetType+typeNameLen], t.Type)
		copy(spec[targetSpecSize:], t.Params) // the NUL comes from make
		off += n
	}
	return buf, nil
}

// specSize is the aligned size of a target spec with its parameters.
func specSize(t Target) int { return align8(targetSpecSize + len(t.Params) + 1) }

func align8(n int) int { return (n + 7) &^ 7 }

// decodeStatus reads the target specs of a DM_TABLE_STATUS answer.
func decodeStatus(buf []byte) ([]Target, error) {
	h := decodeHeader(buf)
	if int(h.DataSize) > len(buf) || h.DataStart < headerSize {
		return nil, errors.New("decoding table status: bad sizes")
	}
	var ts []Target
	off := int(h.DataStart)
	le := binary.LittleEndian
	for range h.TargetCount {
		if off+targetSpecSize > int(h.DataSize) {
			return nil, errors.New("decoding table status: truncated")
		}
		spec := buf[off:h.DataSize]
		ts = append(ts, Target{
			Start:  le.Uint64(spec[offSectorStart:]),
			Length: le.Uint64(spec[offLength:]),
			Type:   cString(spec[offTargetType : offTargetType+typeNameLen]),
			Params: cString(spec[targetSpecSize:]),
		})
		// For answers, next is the offset from the start of the data.
		off = int(h.DataStart) + int(le.Uint32(spec[offNext:]))
	}
	return ts, nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
