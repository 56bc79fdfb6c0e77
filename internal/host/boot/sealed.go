package boot

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/google/go-tpm/tpm2/transport"
	"os"
	"path/filepath"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/bootparam"
	"github.com/bulkhead-dev/bulkhead/internal/host/datafs"
	"github.com/bulkhead-dev/bulkhead/internal/host/luks2"
	"github.com/bulkhead-dev/bulkhead/internal/host/tpmseal"
)

// The encrypted data partition (disk.encrypt_data: tpm).
const (
	// dataMapper is the dm-crypt device /var is mounted from.
	dataMapper = "bulkhead-data"
	// tokenType is the LUKS2 token holding the sealed passphrase.
	tokenType = "bulkhead-tpm2"
	// passphraseSize is the random passphrase of the keyslot: the TPM
	// seals it, so it needs no stretching (the keyslot's pbkdf2 is cheap).
	passphraseSize = 32
)

// sealedToken is the LUKS2 token of a data partition: keyslot 0's
// passphrase, sealed to the TPM under the UKI's signed PCR 11 policy.
type sealedToken struct {
	Type     string          `json:"type"`
	Keyslots []string        `json:"keyslots"`
	Sealed   *tpmseal.Sealed `json:"bulkhead-sealed"`
}

// openSealed returns the device to mount on DataDir for the data partition
// dev when the command line asks for bulkhead.data.encrypt=tpm: the
// LUKS2 volume on dev opened with the passphrase the TPM unseals (the
// volume and the sealed passphrase are made on the first boot). Before it
// returns, PCR 11 is extended, so the passphrase cannot be unsealed again
// until the next boot. Without the parameter it returns dev.
func (h *host) openSealed(ctx context.Context, dev string, sealed bool) (string, error) {
	if !sealed {
		return dev, nil
	}
	return h.unlockData(ctx, dev, bootparam.Value(cmdline(), bootparam.WithoutTPM) == "plain")
}

// sealedData says the command line asks for the sealed data partition.
func sealedData(cmdline string) bool { return bootparam.Value(cmdline, bootparam.DataEncrypt) == "tpm" }

// dataPlan is what openSealed does with the data partition.
type dataPlan int

const (
	planUnseal dataPlan = iota // unseal the key of the LUKS2 volume on it
	planCreate                 // seal a new key, make a LUKS2 volume
	planPlain                  // mount it as it is (plain ext4)
)

// planData decides from what the partition holds and whether the machine
// has a TPM. It never plans to write over a LUKS2 volume or a file system.
func planData(dev string, isLUKS, isExt4, haveTPM, plainWithoutTPM bool) (dataPlan, error) {
	switch {
	case isLUKS && !haveTPM:
		return 0, fmt.Errorf("%s is a LUKS2 volume sealed to a TPM, and this machine has no TPM 2.0", dev)
	case isLUKS:
		return planUnseal, nil
	case isExt4:
		return planPlain, nil
	case haveTPM:
		return planCreate, nil
	case plainWithoutTPM:
		return planPlain, nil
	}
	return 0, errors.New("no TPM 2.0 to seal the data partition's key to (disk.without_tpm: fail)")
}

func (h *host) unlockData(ctx context.Context, dev string, plainWithoutTPM bool) (string, error) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", dev, err)
	}
	defer f.Close()
	isLUKS, err := luks2.IsLUKS(f)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", dev, err)
	}
	isExt4, err := datafs.IsExt4(f)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", dev, err)
	}
	tpm, err := tpmseal.Open()
	haveTPM := err == nil
	if err != nil && !errors.Is(err, tpmseal.ErrNoTPM) {
		return "", err
	}
	locked := false
	if haveTPM {
		defer tpm.Close()
		// Whatever happens below, nothing after this boot step may ask
		// the TPM for the key again: a failed attempt locks too.
		defer func() {
			if !locked {
				tpmseal.Lock(tpm)
			}
		}()
	}
	plan, err := planData(dev, isLUKS, isExt4, haveTPM, plainWithoutTPM)
	if err != nil {
		return "", err
	}
	if plan == planPlain {
		if isExt4 {
			h.logf("data: %s holds a plain file system from a boot without encryption; it stays plain", dev)
		} else {
			h.logf("data: no TPM 2.0; %s is plain ext4, as disk.without_tpm: plain says", DataDir)
		}
		return dev, nil
	}
	pub, sig, err := readPCRPolicy()
	if err != nil {
		return "", err
	}
	var (
		hdr   *luks2.Header
		key   []byte
		begin = time.Now()
	)
	if plan == planUnseal {
		if hdr, key, err = unsealVolume(f, tpm, pub, sig); err != nil {
			return "", err
		}
		h.logf("data: the TPM unsealed the key of the LUKS2 volume on %s in %s", dev, since(begin))
	} else {
		if hdr, key, err = newVolume(f, tpm, pub); err != nil {
			return "", err
		}
		h.logf("data: created a LUKS2 volume on %s in %s, its key sealed to the TPM under the UKI's signed PCR 11 policy", dev, since(begin))
	}
	defer clear(key)
	locked = true
	if err := tpmseal.Lock(tpm); err != nil {
		return "", fmt.Errorf("extending PCR 11 after unsealing: %w", err)
	}
	h.logf("tpm: extended PCR 11: the data key cannot be unsealed again before a reboot")
	mapped, err := luks2.Open(ctx, dev, dataMapper, key, hdr)
	if err != nil {
		return "", fmt.Errorf("opening the LUKS2 volume on %s: %w", dev, err)
	}
	return mapped, nil
}

// readPCRPolicy reads the UKI's .pcrpkey and .pcrsig that stage 0 kept.
func readPCRPolicy() (pub, sig []byte, err error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(bootparam.PCRDir, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("the UKI carries no signed PCR policy (.pcrpkey, .pcrsig): build it with --pcr-key")
		}
		return b, err
	}
	if pub, err = read(bootparam.PCRPublicKey); err != nil {
		return nil, nil, err
	}
	if sig, err = read(bootparam.PCRSignature); err != nil {
		return nil, nil, err
	}
	return pub, sig, nil
}

// newVolume seals a new random passphrase to the TPM under the policy key
// pub and formats f as a LUKS2 volume whose keyslot opens with it.
func newVolume(f *os.File, tpm transport.TPM, pub []byte) (*luks2.Header, []byte, error) {
	pass := make([]byte, passphraseSize)
	defer clear(pass)
	if _, err := rand.Read(pass); err != nil {
		return nil, nil, err
	}
	sealed, err := tpmseal.Seal(tpm, pub, pass)
	if err != nil {
		return nil, nil, err
	}
	tok, err := luks2.NewToken(sealedToken{Type: tokenType, Keyslots: []string{"0"}, Sealed: sealed})
	if err != nil {
		return nil, nil, err
	}
	size, err := f.Seek(0, 2)
	if err != nil {
		return nil, nil, err
	}
	hdr, key, err := luks2.Format(f, size, luks2.FormatOptions{Passphrase: pass, Tokens: []luks2.Token{tok}, Label: "bulkhead-data"})
	if err != nil {
		return nil, nil, err
	}
	if err := f.Sync(); err != nil {
		clear(key)
		return nil, nil, err
	}
	return hdr, key, nil
}

// unsealVolume reads the LUKS2 header of f, has the TPM unseal the
// passphrase in its token under the signed policy sig, and opens the
// keyslot with it.
func unsealVolume(f *os.File, tpm transport.TPM, pub, sig []byte) (*luks2.Header, []byte, error) {
	hdr, err := luks2.ReadHeader(f)
	if err != nil {
		return nil, nil, err
	}
	var sealed *tpmseal.Sealed
	for _, t := range hdr.Tokens {
		if t.Type != tokenType {
			continue
		}
		var raw struct {
			Sealed json.RawMessage `json:"bulkhead-sealed"`
		}
		if err := t.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("LUKS2 token %d: %w", t.ID, err)
		}
		// ParseSealed bounds and checks what the disk says.
		if sealed, err = tpmseal.ParseSealed(raw.Sealed); err != nil {
			return nil, nil, fmt.Errorf("LUKS2 token %d: %w", t.ID, err)
		}
		break
	}
	if sealed == nil {
		return nil, nil, fmt.Errorf("the LUKS2 volume has no %s token", tokenType)
	}
	pass, err := tpmseal.Unseal(tpm, sealed, pub, sig)
	if err != nil {
		return nil, nil, err
	}
	defer clear(pass)
	key, err := hdr.Unlock(f, pass)
	if err != nil {
		return nil, nil, err
	}
	return hdr, key, nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
