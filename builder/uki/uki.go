// Package uki assembles a unified kernel image: systemd's UEFI stub
// (linuxx64.efi.stub from Debian's systemd-boot-efi) with the kernel, its
// initrd, its command line and an os-release appended as PE sections, so
// one file, signed as a whole, is everything a version boots. The stub
// finds the sections by name; systemd-boot lists the file when it sits in
// EFI/Linux/ on the ESP. Same inputs, same bytes: nothing here reads a
// clock or the build machine.
package uki

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Section names the stub reads (systemd 252), and .uname (newer stubs
// read it; 252 ignores it, tools such as ukify and bootctl show it).
const (
	SectionOSRel   = ".osrel"
	SectionCmdline = ".cmdline"
	SectionUname   = ".uname"
	SectionLinux   = ".linux"
	SectionInitrd  = ".initrd"
	SectionPCRSig  = ".pcrsig"
	SectionPCRPKey = ".pcrpkey"
	SectionSBAT    = ".sbat"
)

// Limits on what Build accepts.
const (
	MaxStub    = 4 << 20
	MaxKernel  = 512 << 20
	MaxInitrd  = 2 << 30
	maxText    = 64 << 10
	maxSection = 16
)

// Input is what a UKI holds besides the stub.
type Input struct {
	// Stub is linuxx64.efi.stub, unsigned.
	Stub []byte
	// Linux is the kernel (an EFI-stub bzImage), Initrd its initrd.
	Linux, Initrd []byte
	// Cmdline is the whole kernel command line; with Secure Boot the stub
	// ignores any other.
	Cmdline string
	// OSRel is the os-release text systemd-boot names the entry from
	// (see OSRelease).
	OSRel string
	// Uname is the kernel release; empty reads it from Linux.
	Uname string
	// Extra are further sections (such as .pcrsig and .pcrpkey), appended
	// in order before .initrd and .linux.
	Extra []Section
}

// Section is one named PE section's content.
type Section struct {
	Name string
	Data []byte
}

// OSRelease is the .osrel text of a bulkhead version: systemd-boot shows
// PRETTY_NAME and sorts by ID and VERSION_ID.
func OSRelease(version string) string {
	return fmt.Sprintf("NAME=Bulkhead\nID=bulkhead\nPRETTY_NAME=\"Bulkhead %s\"\nVERSION_ID=%s\nIMAGE_VERSION=%s\n", version, version, version)
}

// Sections lists the sections Build appends to the stub, in file order:
// the small ones first, .linux last (as ukify does).
func (in Input) Sections() ([]Section, error) {
	if len(in.Linux) == 0 {
		return nil, errors.New("no kernel")
	}
	if len(in.Linux) > MaxKernel || len(in.Initrd) > MaxInitrd {
		return nil, errors.New("kernel or initrd too large")
	}
	if len(in.Cmdline) > maxText || len(in.OSRel) > maxText {
		return nil, errors.New("command line or os-release too large")
	}
	uname := in.Uname
	if uname == "" {
		var err error
		if uname, err = KernelRelease(in.Linux); err != nil {
			return nil, err
		}
	}
	s := []Section{
		{SectionOSRel, []byte(in.OSRel)},
		{SectionCmdline, []byte(in.Cmdline)},
		{SectionUname, []byte(uname)},
	}
	s = append(s, in.Extra...)
	if len(in.Initrd) > 0 {
		s = append(s, Section{SectionInitrd, in.Initrd})
	}
	return append(s, Section{SectionLinux, in.Linux}), nil
}

// Build returns the UKI: the stub with in's sections appended.
func Build(in Input) ([]byte, error) {
	secs, err := in.Sections()
	if err != nil {
		return nil, fmt.Errorf("assembling uki: %w", err)
	}
	if len(in.Stub) > MaxStub {
		return nil, errors.New("assembling uki: stub larger than 4 MiB")
	}
	img, err := parsePE(in.Stub)
	if err != nil {
		return nil, fmt.Errorf("assembling uki: stub: %w", err)
	}
	for _, s := range secs {
		if img.section(s.Name) != nil {
			return nil, fmt.Errorf("assembling uki: the stub already has a %s section", s.Name)
		}
		if err := img.add(s.Name, s.Data); err != nil {
			return nil, fmt.Errorf("assembling uki: %w", err)
		}
	}
	return img.bytes(), nil
}

// KernelRelease reads the release string ("6.1.0-28-amd64 (…) #1 SMP …",
// first word) from an x86 bzImage's setup header.
func KernelRelease(bz []byte) (string, error) {
	if len(bz) < 0x210 || string(bz[0x202:0x206]) != "HdrS" {
		return "", errors.New("kernel: not a bzImage (no HdrS setup header)")
	}
	off := int(binary.LittleEndian.Uint16(bz[0x20e:])) + 0x200
	if off <= 0x200 || off >= len(bz) {
		return "", errors.New("kernel: setup header names no version string")
	}
	end := bytes.IndexByte(bz[off:min(len(bz), off+256)], 0)
	if end < 0 {
		return "", errors.New("kernel: version string not terminated")
	}
	f := strings.Fields(string(bz[off : off+end]))
	if len(f) == 0 {
		return "", errors.New("kernel: empty version string")
	}
	return f[0], nil
}
