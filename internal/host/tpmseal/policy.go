package tpmseal

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// pcrIndex is the PCR the signed policy covers: systemd-stub measures
// the UKI's sections into PCR 11.
const pcrIndex = 11

// pcr11 selects the SHA-256 bank's PCR 11.
var pcr11 = tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
	{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(pcrIndex)},
}}

// parseKey reads the RSA public key of a .pcrpkey (PEM, PKIX).
func parseKey(pubPEM []byte) (*rsa.PublicKey, error) {
	if len(pubPEM) > MaxKeyPEM {
		return nil, fmt.Errorf("the PCR public key is %d bytes, at most %d", len(pubPEM), MaxKeyPEM)
	}
	blk, _ := pem.Decode(pubPEM)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("the PCR public key is not a PEM PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the PCR public key: %w", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the PCR public key is a %T, not RSA", k)
	}
	if n := pub.N.BitLen(); n != 2048 && n != 3072 && n != 4096 {
		return nil, fmt.Errorf("the PCR public key has %d bits, not 2048, 3072 or 4096", n)
	}
	return pub, nil
}

// fingerprint is a .pcrsig's "pkfp" for key: the SHA-256 of its PKCS #1
// DER, in hex.
func fingerprint(key *rsa.PublicKey) string {
	fp := sha256.Sum256(x509.MarshalPKCS1PublicKey(key))
	return hex.EncodeToString(fp[:])
}

// keyPublic is the TPM public area of key as TPM2_LoadExternal loads it,
// field for field as systemd 252 does (sign and decrypt, userWithAuth, no
// scheme, the exponent spelled out): its TPM name, which the policy binds
// to, is fixed by the key alone, and a key systemd-cryptenroll
// --tpm2-public-key enrolls gets the same policy.
func keyPublic(key *rsa.PublicKey) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgRSA,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			Decrypt:      true,
			SignEncrypt:  true,
			UserWithAuth: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
			KeyBits:   tpm2.TPMIRSAKeyBits(key.N.BitLen()),
			Exponent:  uint32(key.E), // not 0 for 65537: the name would differ
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: key.N.Bytes()}),
	}
}

// KeyName is the TPM name of the RSA key in pubPEM (a .pcrpkey): what
// the sealed object's PolicyAuthorize names.
func KeyName(pubPEM []byte) ([]byte, error) {
	key, err := parseKey(pubPEM)
	if err != nil {
		return nil, err
	}
	pub := keyPublic(key)
	name, err := tpm2.ObjectName(&pub)
	if err != nil {
		return nil, fmt.Errorf("naming the PCR public key: %w", err)
	}
	return name.Buffer, nil
}

// PolicyDigest is the authPolicy Seal gives the sealed object:
// TPM2_PolicyAuthorize by the key in pubPEM, policyRef empty.
func PolicyDigest(pubPEM []byte) ([]byte, error) {
	name, err := KeyName(pubPEM)
	if err != nil {
		return nil, err
	}
	pc, _ := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	auth := tpm2.PolicyAuthorize{KeySign: tpm2.TPM2BName{Buffer: name}}
	if err := auth.Update(pc); err != nil {
		return nil, fmt.Errorf("computing the policy: %w", err)
	}
	return pc.Hash().Digest, nil
}

// PCRPolicy is the policy digest of TPM2_PolicyPCR on the SHA-256 bank's
// PCR 11 holding pcr: what a .pcrsig entry's "pol" signs.
func PCRPolicy(pcr []byte) []byte {
	pc, _ := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	d := sha256.Sum256(pcr)
	tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: d[:]}, Pcrs: pcr11}.Update(pc)
	return pc.Hash().Digest
}

// sigEntry is one signed policy of a .pcrsig (systemd 252): pkfp is the
// key's fingerprint, pol the policy digest (hex), sig the RSA PKCS #1
// v1.5 signature of SHA-256(pol) (base64 in the JSON).
type sigEntry struct {
	PCRs []int  `json:"pcrs"`
	PKFP string `json:"pkfp"`
	Pol  string `json:"pol"`
	Sig  []byte `json:"sig"`
}

// findSig picks the signature, in the .pcrsig sigJSON, of the policy
// pol by the key with fingerprint pkfp, on the SHA-256 bank's PCR 11
// alone. A .pcrsig may sign several policies (one per boot phase).
func findSig(sigJSON []byte, pkfp string, pol, pcr []byte) ([]byte, error) {
	if len(sigJSON) > MaxSigJSON {
		return nil, fmt.Errorf("the .pcrsig is %d bytes, at most %d", len(sigJSON), MaxSigJSON)
	}
	var ps struct {
		SHA256 []sigEntry `json:"sha256"`
	}
	if err := json.Unmarshal(sigJSON, &ps); err != nil {
		return nil, fmt.Errorf("the .pcrsig is not systemd's PCR signature JSON: %w", err)
	}
	if len(ps.SHA256) > maxSigEntries {
		return nil, fmt.Errorf("the .pcrsig has %d sha256 entries, at most %d", len(ps.SHA256), maxSigEntries)
	}
	signed := false
	for _, e := range ps.SHA256 {
		if !strings.EqualFold(e.PKFP, pkfp) || len(e.PCRs) != 1 || e.PCRs[0] != pcrIndex {
			continue
		}
		signed = true
		if strings.EqualFold(e.Pol, hex.EncodeToString(pol)) {
			return e.Sig, nil
		}
	}
	if !signed {
		return nil, fmt.Errorf("the .pcrsig is not signed by the key /var is sealed to (no sha256 entry for PCR %d with pkfp %s)", pcrIndex, pkfp)
	}
	return nil, fmt.Errorf("PCR 11 is %x, not a value the UKI's .pcrsig covers: this is not the OS it signs, or /var was opened already in this boot", pcr)
}

// LockMarker marks, in PCR 11, that this boot has opened /var: Lock
// extends the SHA-256 bank's PCR 11 with its SHA-256, after which PCR 11
// matches no UKI's signed policy until the next boot.
const LockMarker = "bulkhead: /var opened, TPM secret locked until reboot"

// AfterLock is PCR 11 after Lock extended pcr.
func AfterLock(pcr []byte) []byte {
	h := sha256.New()
	h.Write(pcr)
	d := lockDigest()
	h.Write(d[:])
	return h.Sum(nil)
}

func lockDigest() [sha256.Size]byte { return sha256.Sum256([]byte(LockMarker)) }
