package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
	"github.com/bulkhead-dev/bulkhead/builder/uki"
)

// verifySecureBoot checks the EFI programs on a raw-efi disk's ESP
// against the db certificate: systemd-boot and every UKI in EFI/Linux
// must carry a valid Authenticode signature by it. It returns one line per
// program, with the PCR 11 value systemd-stub will leave for each UKI, and
// whether any failed.
func verifySecureBoot(img, certPath string) ([]verifyLine, bool, error) {
	b, err := readSmall(certPath)
	if err != nil {
		return nil, false, fmt.Errorf("--cert: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, false, fmt.Errorf("--cert %s: no PEM CERTIFICATE", certPath)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("--cert %s: %w", certPath, err)
	}
	ukis, err := disk.ReadUKIs(img)
	if err != nil {
		return nil, false, err
	}
	if len(ukis) == 0 {
		return nil, false, errors.New("no unified kernel images in EFI/Linux (built without boot.uki?)")
	}
	var lines []verifyLine
	failed := false
	for _, name := range append([]string{"EFI/BOOT/BOOTX64.EFI"}, prefixAll("EFI/Linux/", ukis)...) {
		l, err := verifyEFIProgram(img, name, cert)
		if err != nil {
			l = verifyLine{Name: name, Status: "fail", Error: err.Error()}
			failed = true
		}
		lines = append(lines, l)
	}
	return lines, failed, nil
}

// verifyEFIProgram checks one program's signature and, for a UKI, predicts
// its PCR 11 and checks its .pcrsig when it has one.
func verifyEFIProgram(img, name string, cert *x509.Certificate) (verifyLine, error) {
	l := verifyLine{Name: name, Status: "ok"}
	prog, err := disk.ReadESPFile(img, name)
	if err != nil {
		return l, err
	}
	if err := secureboot.Verify(prog, cert); err != nil {
		return l, err
	}
	if name == "EFI/BOOT/BOOTX64.EFI" {
		return l, nil
	}
	pcr, err := uki.PCR11(prog)
	if err != nil {
		return l, err
	}
	l.PCR11 = fmt.Sprintf("%x", pcr)
	if secs, _ := uki.ReadSections(prog); secs[uki.SectionPCRSig] != nil {
		if _, err := uki.CheckPCRSig(prog); err != nil {
			return l, err
		}
		l.PCRSig = true
	}
	return l, nil
}

func prefixAll(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}
