// Package luks2 reads and writes LUKS2 volumes in the on-disk format of
// cryptsetup 2.x (the LUKS2 On-Disk Format Specification) and maps them
// with dm-crypt through internal/host/dm, so the init can encrypt the
// data partition without cryptsetup or libcryptsetup.
//
// A volume starts with two copies of the header (binary header and JSON
// metadata, 16 KiB each by default), then the keyslots area, then the
// data segment. Format writes one: one luks2 keyslot (pbkdf2-sha256, AF
// with 4000 stripes), a pbkdf2 digest of the volume key, the tokens it is
// given, and an aes-xts-plain64 data segment with 4096-byte sectors at
// 16 MiB. ReadHeader and Unlock also read what cryptsetup luksFormat
// writes with its defaults (argon2id or argon2i keyslots).
package luks2

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Binary header layout (struct luks2_hdr_disk, big-endian).
const (
	binHeaderSize = 4096

	offMagic       = 0
	offVersion     = 6
	offHdrSize     = 8
	offSeqID       = 16
	offLabel       = 24
	offChecksumAlg = 72
	offSalt        = 104
	offUUID        = 168
	offSubsystem   = 208
	offHdrOffset   = 256
	offChecksum    = 448

	magicLen       = 6
	labelLen       = 48
	checksumAlgLen = 32
	saltLen        = 64
	uuidLen        = 40
	checksumLen    = 64
)

var (
	magic1 = []byte("LUKS\xba\xbe")
	magic2 = []byte("SKUL\xba\xbe")
)

// DefaultHeaderSize is the size of one header copy Format writes: the
// 4 KiB binary header and 12 KiB of JSON.
const DefaultHeaderSize = 16 << 10

// headerSizes are the header sizes the specification allows (16 KiB to
// 4 MiB); the secondary header starts at one of them.
var headerSizes = []uint64{16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}

// binHeader is a decoded binary header.
type binHeader struct {
	secondary   bool
	size        uint64 // hdr_size: binary header and JSON area
	seqID       uint64
	label       string
	checksumAlg string
	salt        [saltLen]byte
	uuid        string
	subsystem   string
	offset      uint64 // hdr_offset
}

// encode returns the header copy: binary header, then json zero-padded to
// size, with its checksum.
func (b binHeader) encode(json []byte) ([]byte, error) {
	if uint64(len(json)) >= b.size-binHeaderSize {
		return nil, fmt.Errorf("metadata is %d bytes, more than the %d-byte JSON area holds", len(json), b.size-binHeaderSize-1)
	}
	buf := make([]byte, b.size)
	if b.secondary {
		copy(buf[offMagic:], magic2)
	} else {
		copy(buf[offMagic:], magic1)
	}
	be := binary.BigEndian
	be.PutUint16(buf[offVersion:], 2)
	be.PutUint64(buf[offHdrSize:], b.size)
	be.PutUint64(buf[offSeqID:], b.seqID)
	copy(buf[offLabel:offLabel+labelLen-1], b.label)
	copy(buf[offChecksumAlg:offChecksumAlg+checksumAlgLen-1], b.checksumAlg)
	copy(buf[offSalt:offSalt+saltLen], b.salt[:])
	copy(buf[offUUID:offUUID+uuidLen-1], b.uuid)
	copy(buf[offSubsystem:offSubsystem+labelLen-1], b.subsystem)
	be.PutUint64(buf[offHdrOffset:], b.offset)
	copy(buf[binHeaderSize:], json)
	sum, err := checksum(b.checksumAlg, buf)
	if err != nil {
		return nil, err
	}
	copy(buf[offChecksum:], sum)
	return buf, nil
}

// checksum hashes a header copy with its checksum field taken as zero.
func checksum(alg string, hdr []byte) ([]byte, error) {
	var h hash.Hash
	switch alg {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return nil, fmt.Errorf("unsupported header checksum %q", alg)
	}
	h.Write(hdr[:offChecksum])
	h.Write(make([]byte, checksumLen))
	h.Write(hdr[offChecksum+checksumLen:])
	return h.Sum(nil), nil
}

// decodeBinHeader checks the fixed fields of the binary header in b (at
// least binHeaderSize bytes) found at offset off.
func decodeBinHeader(b []byte, off uint64) (binHeader, error) {
	secondary := off != 0
	want := magic1
	if secondary {
		want = magic2
	}
	if !bytes.Equal(b[offMagic:offMagic+magicLen], want) {
		return binHeader{}, errors.New("no LUKS2 magic")
	}
	be := binary.BigEndian
	if v := be.Uint16(b[offVersion:]); v != 2 {
		return binHeader{}, fmt.Errorf("version %d, not 2", v)
	}
	h := binHeader{
		secondary:   secondary,
		size:        be.Uint64(b[offHdrSize:]),
		seqID:       be.Uint64(b[offSeqID:]),
		label:       cString(b[offLabel : offLabel+labelLen]),
		checksumAlg: cString(b[offChecksumAlg : offChecksumAlg+checksumAlgLen]),
		uuid:        cString(b[offUUID : offUUID+uuidLen]),
		subsystem:   cString(b[offSubsystem : offSubsystem+labelLen]),
		offset:      be.Uint64(b[offHdrOffset:]),
	}
	copy(h.salt[:], b[offSalt:])
	if !validHeaderSize(h.size) {
		return binHeader{}, fmt.Errorf("header size %d is not one LUKS2 allows", h.size)
	}
	if h.offset != off {
		return binHeader{}, fmt.Errorf("header says it is at byte %d", h.offset)
	}
	if secondary && h.size != off {
		return binHeader{}, fmt.Errorf("secondary header at byte %d says headers are %d bytes", off, h.size)
	}
	return h, nil
}

func validHeaderSize(n uint64) bool {
	for _, s := range headerSizes {
		if n == s {
			return true
		}
	}
	return false
}

// headerCopy is one checked header copy and its JSON text.
type headerCopy struct {
	bin  binHeader
	json []byte
}

// readCopy reads and checks the header copy at off: magic, version,
// size, offset and checksum. It reads at most 4 MiB.
func readCopy(r io.ReaderAt, off uint64) (headerCopy, error) {
	first := make([]byte, binHeaderSize)
	if _, err := r.ReadAt(first, int64(off)); err != nil {
		return headerCopy{}, err
	}
	b, err := decodeBinHeader(first, off)
	if err != nil {
		return headerCopy{}, err
	}
	buf := make([]byte, b.size)
	copy(buf, first)
	if _, err := r.ReadAt(buf[binHeaderSize:], int64(off+binHeaderSize)); err != nil {
		return headerCopy{}, fmt.Errorf("reading JSON area: %w", err)
	}
	sum, err := checksum(b.checksumAlg, buf)
	if err != nil {
		return headerCopy{}, err
	}
	if !bytes.Equal(sum, buf[offChecksum:offChecksum+len(sum)]) {
		return headerCopy{}, errors.New("checksum mismatch")
	}
	json := buf[binHeaderSize:]
	if i := bytes.IndexByte(json, 0); i >= 0 {
		json = json[:i]
	}
	return headerCopy{bin: b, json: json}, nil
}

// readCopies reads both header copies: the secondary where the primary
// says, or, when the primary is unreadable, at the first offset where a
// valid one is. It returns the newest valid copy (highest seqid, the
// primary on a tie) and the copies' errors when neither is valid.
func readCopies(r io.ReaderAt) (*Header, error) {
	primary, perr := readHeader(r, 0)
	var secondary *Header
	serr := errors.New("not found")
	if perr == nil {
		secondary, serr = readHeader(r, primary.Size)
	} else {
		for _, off := range headerSizes {
			if secondary, serr = readHeader(r, off); serr == nil {
				break
			}
		}
	}
	switch {
	case perr == nil && serr == nil:
		if secondary.SeqID > primary.SeqID {
			return secondary, nil
		}
		return primary, nil
	case perr == nil:
		return primary, nil
	case serr == nil:
		return secondary, nil
	}
	return nil, fmt.Errorf("no valid LUKS2 header: primary: %w; secondary: %w", perr, serr)
}

// IsLUKS reports whether r starts with a LUKS header (either version) or,
// its primary header damaged, holds a valid LUKS2 secondary header: a
// device IsLUKS accepts must not be formatted over. Errors are read
// errors, not verdicts.
func IsLUKS(r io.ReaderAt) (bool, error) {
	found, err := magicAt(r, 0, magic1)
	if found || err != nil {
		return found, err
	}
	for _, off := range headerSizes {
		found, err := magicAt(r, off, magic2)
		if err != nil {
			return false, err
		}
		if !found {
			continue
		}
		if _, err := readCopy(r, off); err == nil {
			return true, nil
		}
	}
	return false, nil
}

// magicAt reports whether magic is at off; a device that ends before is
// not an error.
func magicAt(r io.ReaderAt, off uint64, magic []byte) (bool, error) {
	b := make([]byte, len(magic))
	if _, err := r.ReadAt(b, int64(off)); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, fmt.Errorf("reading LUKS magic: %w", err)
	}
	return bytes.Equal(b, magic), nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
