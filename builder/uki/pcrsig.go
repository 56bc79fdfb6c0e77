package uki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// tpmCCPolicyPCR is TPM2_CC_PolicyPCR, tpmAlgSHA256 TPM2_ALG_SHA256.
const (
	tpmCCPolicyPCR = 0x17f
	tpmAlgSHA256   = 0x000b
)

// PolicyPCR11 is the TPM 2.0 policy digest of a policy session that ran
// TPM2_PolicyPCR on the SHA-256 bank's PCR 11 holding pcr: what a
// key sealed under a signed PCR policy (PolicyAuthorize) needs, and what
// .pcrsig signs.
func PolicyPCR11(pcr []byte) []byte {
	var sel bytes.Buffer
	binary.Write(&sel, binary.BigEndian, uint32(1))            // TPML_PCR_SELECTION.count
	binary.Write(&sel, binary.BigEndian, uint16(tpmAlgSHA256)) // hash
	sel.Write([]byte{3, 0x00, 0x08, 0x00})                     // sizeofSelect, PCR 11
	pcrDigest := sha256.Sum256(pcr)
	h := sha256.New()
	h.Write(make([]byte, sha256.Size))
	binary.Write(h, binary.BigEndian, uint32(tpmCCPolicyPCR))
	h.Write(sel.Bytes())
	h.Write(pcrDigest[:])
	return h.Sum(nil)
}

// pcrSig is the .pcrsig JSON of systemd 252 (systemd-measure sign).
type pcrSig struct {
	SHA256 []pcrSigEntry `json:"sha256"`
}

type pcrSigEntry struct {
	PCRs []int `json:"pcrs"`
	// PKFP is the SHA-256 of the public key (PKCS #1 DER), Pol the policy
	// digest, Sig the RSA PKCS #1 v1.5 signature of SHA-256(Pol) (base64).
	PKFP string `json:"pkfp"`
	Pol  string `json:"pol"`
	Sig  []byte `json:"sig"`
}

// PCRSig is the .pcrsig section for a UKI whose PCR 11 is pcr: the
// policy digest signed with key, as systemd-measure sign writes it.
func PCRSig(pcr []byte, key *rsa.PrivateKey) ([]byte, error) {
	pol := PolicyPCR11(pcr)
	// The TPM checks a PolicyAuthorize signature over
	// H(approvedPolicy || policyRef), policyRef empty.
	aHash := sha256.Sum256(pol)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, aHash[:])
	if err != nil {
		return nil, fmt.Errorf("signing the PCR policy: %w", err)
	}
	fp := sha256.Sum256(x509.MarshalPKCS1PublicKey(&key.PublicKey))
	return json.Marshal(pcrSig{SHA256: []pcrSigEntry{{PCRs: []int{11}, PKFP: hex.EncodeToString(fp[:]), Pol: hex.EncodeToString(pol), Sig: sig}}})
}

// PCRPKey is the .pcrpkey section: the public key as PEM.
func PCRPKey(pub *rsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// BuildSigned builds the UKI with .pcrpkey holding key's public key and
// .pcrsig signing the policy of the PCR 11 it leaves (.pcrsig itself is
// not measured, so adding it does not change the value).
func BuildSigned(in Input, key *rsa.PrivateKey) ([]byte, error) {
	in.Extra = append(in.Extra[:len(in.Extra):len(in.Extra)], Section{SectionPCRPKey, PCRPKey(&key.PublicKey)})
	img, err := Build(in)
	if err != nil {
		return nil, err
	}
	pcr, err := PCR11(img)
	if err != nil {
		return nil, err
	}
	sig, err := PCRSig(pcr, key)
	if err != nil {
		return nil, err
	}
	in.Extra = append(in.Extra, Section{SectionPCRSig, sig})
	return Build(in)
}

// CheckPCRSig checks a UKI's .pcrsig: signed by the key in its .pcrpkey,
// for the policy of the PCR 11 the UKI leaves. It returns that PCR 11.
func CheckPCRSig(img []byte) ([]byte, error) {
	secs, err := ReadSections(img)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(secs[SectionPCRPKey])
	if blk == nil {
		return nil, errors.New("no .pcrpkey")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	pub, ok := k.(*rsa.PublicKey)
	if err != nil || !ok {
		return nil, errors.New(".pcrpkey is not an RSA public key")
	}
	var ps pcrSig
	if err := json.Unmarshal(secs[SectionPCRSig], &ps); err != nil || len(ps.SHA256) != 1 {
		return nil, errors.New(".pcrsig: not one sha256 entry")
	}
	pcr, err := PCR11(img)
	if err != nil {
		return nil, err
	}
	pol := PolicyPCR11(pcr)
	if e := ps.SHA256[0]; e.Pol != hex.EncodeToString(pol) {
		return nil, errors.New(".pcrsig signs another PCR 11 policy")
	}
	aHash := sha256.Sum256(pol)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, aHash[:], ps.SHA256[0].Sig); err != nil {
		return nil, fmt.Errorf(".pcrsig: %w", err)
	}
	return pcr, nil
}
