package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/builder/disk"
	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
	"github.com/bulkhead-dev/bulkhead/builder/uki"
)

// verifySecureBoot checks the EFI programs on a raw-efi disk's ESP
// against the db certificate: systemd-boot and every UKI in EFI/Linux
// must carry a valid Authenticode signature by it. It prints one line per
// program, with the PCR 11 value systemd-stub will leave for each UKI.
func verifySecureBoot(img, certPath string, stdout io.Writer) error {
	b, err := readSmall(certPath)
	if err != nil {
		return fmt.Errorf("--cert: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return fmt.Errorf("--cert %s: no PEM CERTIFICATE", certPath)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("--cert %s: %w", certPath, err)
	}
	ukis, err := disk.ReadUKIs(img)
	if err != nil {
		return err
	}
	if len(ukis) == 0 {
		return errors.New("no unified kernel images in EFI/Linux (built without boot.uki?)")
	}
	failed := false
	for _, name := range append([]string{"EFI/BOOT/BOOTX64.EFI"}, prefixAll("EFI/Linux/", ukis)...) {
		prog, err := disk.ReadESPFile(img, name)
		if err == nil {
			err = secureboot.Verify(prog, cert)
		}
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "FAIL  %s: %v\n", name, err)
			continue
		}
		line := "ok    " + name
		if name != "EFI/BOOT/BOOTX64.EFI" {
			pcr, err := uki.PCR11(prog)
			if err != nil {
				failed = true
				fmt.Fprintf(stdout, "FAIL  %s: %v\n", name, err)
				continue
			}
			line += fmt.Sprintf(" pcr11 sha256:%x", pcr)
			if secs, _ := uki.ReadSections(prog); secs[uki.SectionPCRSig] != nil {
				if _, err := uki.CheckPCRSig(prog); err != nil {
					failed = true
					fmt.Fprintf(stdout, "FAIL  %s: %v\n", name, err)
					continue
				}
				line += " pcrsig ok"
			}
		}
		fmt.Fprintln(stdout, line)
	}
	if failed {
		return exitError{1}
	}
	return nil
}

func prefixAll(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}
