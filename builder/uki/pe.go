package uki

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PE32+ layout: offsets inside the optional header, and sizes.
const (
	coffSize        = 20
	sectionSize     = 40
	optMagicPE32P   = 0x20b
	optSectionAlign = 32
	optFileAlign    = 36
	optSizeOfImage  = 56
	optSizeOfHdrs   = 60
	optCheckSum     = 64
	optNumDirs      = 108
	optDirs         = 112
	dirSecurity     = 4
	machineAMD64    = 0x8664
	// scnData is IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ.
	scnData = 0x40000040
	// vaAlign is where appended sections start in memory: page aligned
	// (a multiple of any section alignment up to 4 KiB).
	vaAlign = 0x1000
)

// peImage is a parsed PE32+ file: its headers up to the section table and
// its sections with their raw data.
type peImage struct {
	head     []byte // DOS header, stub, PE signature, COFF and optional headers
	optOff   int    // offset of the optional header in head
	sections []peSection
	secAlign uint32
	fileAlgn uint32
}

type peSection struct {
	hdr  [sectionSize]byte
	data []byte // raw data (SizeOfRawData bytes)
}

func (s *peSection) name() string {
	n := s.hdr[:8]
	for i, c := range n {
		if c == 0 {
			return string(n[:i])
		}
	}
	return string(n)
}

func (s *peSection) virtualAddress() uint32 { return binary.LittleEndian.Uint32(s.hdr[12:]) }
func (s *peSection) virtualSize() uint32    { return binary.LittleEndian.Uint32(s.hdr[8:]) }

// content is the section's bytes as loaded: raw data cut to VirtualSize.
func (s *peSection) content() []byte {
	if n := int(s.virtualSize()); n < len(s.data) {
		return s.data[:n]
	}
	return s.data
}

// parsePE reads a PE32+ x86-64 image with no certificate table and no
// COFF symbols (what a stub and a UKI are).
func parsePE(b []byte) (*peImage, error) {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return nil, errors.New("not a PE file (no MZ)")
	}
	pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if pe < 0x40 || pe > len(b)-4-coffSize || string(b[pe:pe+4]) != "PE\x00\x00" {
		return nil, errors.New("not a PE file (no PE signature)")
	}
	coff := b[pe+4:]
	if binary.LittleEndian.Uint16(coff) != machineAMD64 {
		return nil, errors.New("not an x86-64 image")
	}
	nsec := int(binary.LittleEndian.Uint16(coff[2:]))
	optSize := int(binary.LittleEndian.Uint16(coff[16:]))
	optOff := pe + 4 + coffSize
	tableOff := optOff + optSize
	if optSize < optDirs || tableOff+nsec*sectionSize > len(b) || nsec > 96 {
		return nil, errors.New("truncated headers")
	}
	opt := b[optOff:tableOff]
	if binary.LittleEndian.Uint16(opt) != optMagicPE32P {
		return nil, errors.New("not PE32+")
	}
	img := &peImage{
		head: append([]byte(nil), b[:tableOff]...), optOff: optOff,
		secAlign: binary.LittleEndian.Uint32(opt[optSectionAlign:]),
		fileAlgn: binary.LittleEndian.Uint32(opt[optFileAlign:]),
	}
	// The COFF symbol table (deprecated in images; Debian's stub keeps
	// one after its last section) is dropped: nothing loads it.
	binary.LittleEndian.PutUint64(img.head[pe+4+8:], 0)
	if !pow2(img.secAlign) || !pow2(img.fileAlgn) || img.fileAlgn > 1<<16 || img.secAlign > 1<<21 {
		return nil, errors.New("bad section or file alignment")
	}
	if nd := binary.LittleEndian.Uint32(opt[optNumDirs:]); nd > dirSecurity && optDirs+8*(dirSecurity+1) <= optSize &&
		binary.LittleEndian.Uint32(opt[optDirs+8*dirSecurity+4:]) != 0 {
		return nil, errors.New("image is already signed")
	}
	for i := range nsec {
		var s peSection
		copy(s.hdr[:], b[tableOff+i*sectionSize:])
		off, size := binary.LittleEndian.Uint32(s.hdr[20:]), binary.LittleEndian.Uint32(s.hdr[16:])
		if uint64(off)+uint64(size) > uint64(len(b)) {
			return nil, fmt.Errorf("section %s runs past the end of the file", s.name())
		}
		s.data = b[off : off+size]
		if s.hdr[0] == '/' {
			return nil, fmt.Errorf("section %s: long section names are not supported", s.name())
		}
		img.sections = append(img.sections, s)
	}
	return img, nil
}

func pow2(v uint32) bool { return v != 0 && v&(v-1) == 0 }

func align(v, to uint32) uint32 { return (v + to - 1) / to * to }

func (img *peImage) section(name string) *peSection {
	for i := range img.sections {
		if img.sections[i].name() == name {
			return &img.sections[i]
		}
	}
	return nil
}

// add appends an initialized, read-only data section after the last one
// in memory.
func (img *peImage) add(name string, data []byte) error {
	if len(name) > 8 {
		return fmt.Errorf("section name %q longer than 8 bytes", name)
	}
	if len(img.sections) >= maxSection+16 {
		return errors.New("too many sections")
	}
	var end uint32
	for i := range img.sections {
		s := &img.sections[i]
		end = max(end, s.virtualAddress()+max(s.virtualSize(), uint32(len(s.data))))
	}
	va := uint64(align(end, max(vaAlign, img.secAlign)))
	if va+uint64(len(data)) > 1<<32-1<<22 {
		return errors.New("image larger than 4 GiB")
	}
	var s peSection
	copy(s.hdr[:8], name)
	binary.LittleEndian.PutUint32(s.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(s.hdr[12:], uint32(va))
	binary.LittleEndian.PutUint32(s.hdr[36:], scnData)
	s.data = data
	img.sections = append(img.sections, s)
	return nil
}

// bytes lays the image out again: headers with the section table, padded
// to the file alignment, then each section's raw data in turn, padded;
// NumberOfSections, SizeOfHeaders, SizeOfImage and CheckSum follow.
func (img *peImage) bytes() []byte {
	hdrEnd := uint32(len(img.head) + len(img.sections)*sectionSize)
	sizeOfHeaders := align(hdrEnd, img.fileAlgn)
	total := sizeOfHeaders
	for i := range img.sections {
		total += align(uint32(len(img.sections[i].data)), img.fileAlgn)
	}
	out := make([]byte, total)
	copy(out, img.head)
	pe := int(binary.LittleEndian.Uint32(out[0x3c:]))
	binary.LittleEndian.PutUint16(out[pe+4+2:], uint16(len(img.sections)))
	opt := out[img.optOff:]
	binary.LittleEndian.PutUint32(opt[optSizeOfHdrs:], sizeOfHeaders)
	off, end := sizeOfHeaders, uint32(0)
	for i := range img.sections {
		s := &img.sections[i]
		raw := align(uint32(len(s.data)), img.fileAlgn)
		binary.LittleEndian.PutUint32(s.hdr[16:], raw)
		binary.LittleEndian.PutUint32(s.hdr[20:], off)
		if raw == 0 {
			binary.LittleEndian.PutUint32(s.hdr[20:], 0)
		}
		copy(out[len(img.head)+i*sectionSize:], s.hdr[:])
		copy(out[off:], s.data)
		off += raw
		end = max(end, s.virtualAddress()+max(s.virtualSize(), uint32(len(s.data))))
	}
	binary.LittleEndian.PutUint32(opt[optSizeOfImage:], align(end, img.secAlign))
	binary.LittleEndian.PutUint32(opt[optCheckSum:], 0)
	binary.LittleEndian.PutUint32(opt[optCheckSum:], checksum(out, img.optOff+optCheckSum))
	return out
}

// checksum is the PE image checksum (as IMAGEHLP computes it): the
// one's-complement sum of 16-bit words, the CheckSum field counted as
// zero, plus the file's length.
func checksum(b []byte, at int) uint32 {
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		if i == at || i == at+2 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(b))
}

// ReadSections returns the named sections of a PE image (a UKI) as they
// load: each cut to its virtual size.
func ReadSections(b []byte) (map[string][]byte, error) {
	img, err := parsePEAny(b)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for i := range img.sections {
		out[img.sections[i].name()] = img.sections[i].content()
	}
	return out, nil
}

// parsePEAny parses an image that may be signed (ReadSections' input).
func parsePEAny(b []byte) (*peImage, error) {
	img, err := parsePE(b)
	if err == nil || err.Error() != "image is already signed" {
		return img, err
	}
	c := append([]byte(nil), b...)
	pe := int(binary.LittleEndian.Uint32(c[0x3c:]))
	dir := pe + 4 + coffSize + optDirs + 8*dirSecurity
	binary.LittleEndian.PutUint64(c[dir:], 0)
	return parsePE(c)
}
