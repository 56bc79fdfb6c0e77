package uki

import (
	"crypto/sha256"
	"errors"
)

// measured are the sections systemd-stub 252 measures into PCR 11, in
// the order it measures them (its section table's order, whatever the
// order in the file); .pcrsig is never measured.
var measured = []string{SectionLinux, SectionOSRel, SectionCmdline, SectionInitrd, ".splash", ".dtb", SectionPCRPKey}

// PCR11 predicts the SHA-256 bank's PCR 11 after systemd-stub has
// measured the UKI img, as systemd-measure calculates it: from zero, for
// each measured section present, extend with the digest of its name
// (with the terminating NUL) and then with the digest of its content as
// loaded (cut to its virtual size).
func PCR11(img []byte) ([]byte, error) {
	secs, err := ReadSections(img)
	if err != nil {
		return nil, err
	}
	if len(secs[SectionLinux]) == 0 {
		return nil, errors.New("not a UKI: no .linux section")
	}
	pcr := make([]byte, sha256.Size)
	extend := func(b []byte) {
		d := sha256.Sum256(b)
		pcr = sha256Sum(pcr, d[:])
	}
	for _, name := range measured {
		data, ok := secs[name]
		if !ok || len(data) == 0 {
			continue
		}
		extend(append([]byte(name), 0))
		extend(data)
	}
	return pcr, nil
}

func sha256Sum(a, b []byte) []byte {
	h := sha256.New()
	h.Write(a)
	h.Write(b)
	return h.Sum(nil)
}
