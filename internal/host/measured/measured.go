// Package measured reads what the firmware and systemd-stub measured into
// the TPM, so the host can log its PCR 11 (the UKI it booted, as
// `bulkhead verify --secureboot` predicts it) and an operator or a test
// can compare the two.
package measured

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// PCRPath is where Linux (5.12 and later) exports a TPM 2.0 PCR of the
// SHA-256 bank.
const PCRPath = "/sys/class/tpm/tpm0/pcr-sha256/"

// ErrNoTPM means the machine has no TPM 2.0 the kernel drives.
var ErrNoTPM = errors.New("no TPM 2.0")

// PCR returns PCR n of the SHA-256 bank, in hex, read under root (the
// sysfs directory of PCRPath).
func PCR(root string, n int) (string, error) {
	f, err := os.Open(fmt.Sprintf("%s%d", root, n))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoTPM
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return "", fmt.Errorf("reading PCR %d: %w", n, err)
	}
	s := string(bytes.ToLower(bytes.TrimSpace(b)))
	if d, err := hex.DecodeString(s); err != nil || len(d) != 32 {
		return "", fmt.Errorf("reading PCR %d: %q is not a SHA-256 digest", n, s)
	}
	return s, nil
}
