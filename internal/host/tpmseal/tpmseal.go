// Package tpmseal seals a short secret (the key of the LUKS2 data
// partition) to the TPM under a signed PCR 11 policy, and unseals it with
// the signature a unified kernel image carries: only an OS whose UKI is
// signed by the spec's key opens /var, and an update signed by the same
// key keeps opening it without re-sealing.
//
// The sealed object's authPolicy is TPM2_PolicyAuthorize bound to the TPM
// name of the RSA key in the UKI's .pcrpkey (policyRef empty). To unseal,
// a policy session runs TPM2_PolicyPCR on the SHA-256 bank's PCR 11, and
// TPM2_PolicyAuthorize accepts that policy if the .pcrsig (systemd 252's
// JSON, which systemd-stub hands to the OS as
// /.extra/tpm2-pcr-signature.json) signs it with that key. Nothing is kept
// in the TPM's NV memory: the storage root key is re-derived on every boot
// from the TCG ECC P-256 SRK template under the owner hierarchy.
//
// The package runs in the host's init: it links go-tpm and the standard
// library only.
package tpmseal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/bulkhead-dev/bulkhead/internal/host/measured"
)

// ErrNoTPM means the machine has no TPM 2.0 device (the same error as
// measured.ErrNoTPM, so a caller tests one).
var ErrNoTPM = measured.ErrNoTPM

// Devices are the TPM character devices Open tries, in order: the kernel's
// resource manager first, so handles this package leaves are flushed
// when it closes.
var devices = []string{"/dev/tpmrm0", "/dev/tpm0"}

// Limits on what Seal takes and what ParseSealed and Unseal read.
const (
	MaxSecret     = 64      // bytes of secret (TPM2B_SENSITIVE_DATA holds 128 at most)
	MaxSealedJSON = 4 << 10 // a Sealed as JSON
	MaxSigJSON    = 64 << 10
	MaxKeyPEM     = 16 << 10
	maxBlob       = 1 << 10 // TPM2B_PUBLIC or TPM2B_PRIVATE
	maxSigEntries = 64
)

// Open opens the TPM: /dev/tpmrm0, else /dev/tpm0.
func Open() (transport.TPMCloser, error) { return open(devices) }

func open(paths []string) (transport.TPMCloser, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		t, err := linuxtpm.Open(p)
		if err != nil {
			return nil, fmt.Errorf("opening the TPM: %w", err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("%w: none of %v exists", ErrNoTPM, paths)
}

// Sealed is a secret sealed by Seal, as the host stores it (JSON, in the
// data partition's LUKS2 token).
type Sealed struct {
	// Public and Private are the sealed object's TPM2B_PUBLIC and
	// TPM2B_PRIVATE, as TPM2_Create returned them.
	Public  []byte `json:"public"`
	Private []byte `json:"private"`
	// PKFP is the SHA-256 of the policy key (PKCS #1 DER) in hex, as in
	// the "pkfp" of a .pcrsig entry.
	PKFP string `json:"pkfp"`
	// Bank and PCRs are the PCRs the signed policy covers: sha256, [11].
	Bank string `json:"bank"`
	PCRs []int  `json:"pcrs"`
}

// ParseSealed reads a Sealed from its JSON, at most MaxSealedJSON bytes.
func ParseSealed(b []byte) (*Sealed, error) {
	if len(b) > MaxSealedJSON {
		return nil, fmt.Errorf("sealed key: %d bytes of JSON, at most %d", len(b), MaxSealedJSON)
	}
	var s Sealed
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("sealed key: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

// check says what is wrong with a Sealed this package cannot have made.
func (s *Sealed) check() error {
	switch {
	case len(s.Public) == 0 || len(s.Public) > maxBlob || len(s.Private) == 0 || len(s.Private) > maxBlob:
		return fmt.Errorf("sealed key: public (%d bytes) and private (%d bytes) must each be 1 to %d bytes",
			len(s.Public), len(s.Private), maxBlob)
	case s.Bank != "sha256" || len(s.PCRs) != 1 || s.PCRs[0] != pcrIndex:
		return fmt.Errorf("sealed key: bound to %s PCRs %v, only sha256 PCR %d is supported", s.Bank, s.PCRs, pcrIndex)
	case len(s.PKFP) != 64:
		return fmt.Errorf("sealed key: pkfp %q is not a SHA-256 fingerprint", s.PKFP)
	}
	return nil
}

// Seal seals secret (at most MaxSecret bytes) to tpm so that only a
// policy session whose PCR 11 policy is signed by the RSA key in pubPEM
// (the .pcrpkey, PEM PKIX) can unseal it.
func Seal(tpm transport.TPM, pubPEM, secret []byte) (*Sealed, error) {
	if len(secret) == 0 || len(secret) > MaxSecret {
		return nil, fmt.Errorf("sealing: the secret is %d bytes, it must be 1 to %d", len(secret), MaxSecret)
	}
	key, err := parseKey(pubPEM)
	if err != nil {
		return nil, err
	}
	policy, err := PolicyDigest(pubPEM)
	if err != nil {
		return nil, err
	}
	srk, err := createSRK(tpm)
	if err != nil {
		return nil, err
	}
	defer flush(tpm, srk.handle)
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: srk.handle, Name: srk.name, Auth: srk.encryptIn()},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(sealedTemplate(policy)),
	}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("sealing: the TPM refused to create the sealed object: %w", err)
	}
	return &Sealed{
		Public:  tpm2.Marshal(rsp.OutPublic),
		Private: tpm2.Marshal(rsp.OutPrivate),
		PKFP:    fingerprint(key),
		Bank:    "sha256",
		PCRs:    []int{pcrIndex},
	}, nil
}

// sealedTemplate is the public area of a sealed data object that only a
// policy session satisfying policy opens (userWithAuth clear), bound to
// this TPM and its parent.
func sealedTemplate(policy []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:    true,
			FixedParent: true,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash,
			&tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}}),
	}
}

// srk is the storage root key, loaded.
type srk struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	public tpm2.TPMTPublic
}

// createSRK derives the storage root key from the TCG's ECC P-256 SRK
// template: the same key on every boot of this TPM (until its owner
// hierarchy is cleared).
func createSRK(tpm transport.TPM) (*srk, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("the TPM refused to create its storage root key: %w", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		flush(tpm, rsp.ObjectHandle)
		return nil, fmt.Errorf("reading the storage root key: %w", err)
	}
	return &srk{handle: rsp.ObjectHandle, name: rsp.Name, public: *pub}, nil
}

// encryptIn is a session salted with the SRK that encrypts the first
// command parameter (the secret), so it never crosses the bus in clear.
func (k *srk) encryptIn() tpm2.Session {
	return tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Salted(k.handle, k.public), tpm2.AESEncryption(128, tpm2.EncryptIn))
}

// flush unloads a transient object or session; the error is of no use
// to a caller already returning (and /dev/tpmrm0 flushes on close).
func flush(tpm transport.TPM, h tpm2.TPMHandle) {
	tpm2.FlushContext{FlushHandle: h}.Execute(tpm)
}
