package tpmseal

import (
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Unseal unseals s with the UKI's .pcrpkey (pubPEM) and .pcrsig
// (sigJSON, at most MaxSigJSON bytes): the TPM opens it only if PCR 11
// now holds a value whose policy that key signed. Each error says which
// step was refused and why.
func Unseal(tpm transport.TPM, s *Sealed, pubPEM, sigJSON []byte) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	key, err := parseKey(pubPEM)
	if err != nil {
		return nil, err
	}
	if fp := fingerprint(key); fp != s.PKFP {
		return nil, fmt.Errorf("the UKI's PCR public key (pkfp %s) is not the key /var is sealed to (%s)", fp, s.PKFP)
	}
	// The TPM would refuse a policy for another PCR 11 too, but could not
	// say why.
	pcr, err := ReadPCR11(tpm)
	if err != nil {
		return nil, err
	}
	pol := PCRPolicy(pcr)
	sig, err := findSig(sigJSON, s.PKFP, pol, pcr)
	if err != nil {
		return nil, err
	}
	return unseal(tpm, s, key, pol, sig)
}

// unseal asks the TPM, checking nothing first: the TPM alone enforces
// the policy.
func unseal(tpm transport.TPM, s *Sealed, key *rsa.PublicKey, pol, sig []byte) ([]byte, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](s.Public)
	if err != nil {
		return nil, fmt.Errorf("sealed key: public: %w", err)
	}
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](s.Private)
	if err != nil {
		return nil, fmt.Errorf("sealed key: private: %w", err)
	}
	srk, err := createSRK(tpm)
	if err != nil {
		return nil, err
	}
	defer flush(tpm, srk.handle)
	obj, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk.handle, Name: srk.name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    *priv,
		InPublic:     *pub,
	}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("the TPM refused to load the sealed key: it was sealed by another TPM or changed since: %w", err)
	}
	defer flush(tpm, obj.ObjectHandle)
	ticket, keyName, err := verifySig(tpm, key, pol, sig)
	if err != nil {
		return nil, err
	}
	sess, closeSess, err := tpm2.PolicySession(tpm, tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(srk.handle, srk.public), tpm2.AESEncryption(128, tpm2.EncryptOut))
	if err != nil {
		return nil, fmt.Errorf("the TPM refused a policy session: %w", err)
	}
	defer closeSess()
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: pcr11}).Execute(tpm); err != nil {
		return nil, fmt.Errorf("the TPM refused the PCR policy: %w", err)
	}
	if _, err := (tpm2.PolicyAuthorize{
		PolicySession:  sess.Handle(),
		ApprovedPolicy: tpm2.TPM2BDigest{Buffer: pol},
		KeySign:        *keyName,
		CheckTicket:    *ticket,
	}).Execute(tpm); err != nil {
		return nil, fmt.Errorf("the TPM refused the PCR policy: PCR 11 is not the value the UKI's signature covers: %w", err)
	}
	rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: obj.ObjectHandle, Name: obj.Name, Auth: sess}}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("the TPM refused to unseal: the PCR policy is signed by another key than the one /var is sealed to: %w", err)
	}
	return rsp.OutData.Buffer, nil
}

// verifySig has the TPM check sig, the .pcrsig's signature of the
// policy pol (policyRef empty) by key, and returns the ticket that
// proves it to TPM2_PolicyAuthorize, and the key's TPM name.
func verifySig(tpm transport.TPM, key *rsa.PublicKey, pol, sig []byte) (*tpm2.TPMTTKVerified, *tpm2.TPM2BName, error) {
	ext, err := tpm2.LoadExternal{
		InPublic:  tpm2.New2B(keyPublic(key)),
		Hierarchy: tpm2.TPMRHOwner, // a ticket from the null hierarchy would not do
	}.Execute(tpm)
	if err != nil {
		return nil, nil, fmt.Errorf("the TPM refused the PCR public key: %w", err)
	}
	defer flush(tpm, ext.ObjectHandle)
	digest := sha256.Sum256(pol)
	rsp, err := tpm2.VerifySignature{
		KeyHandle: tpm2.NamedHandle{Handle: ext.ObjectHandle, Name: ext.Name},
		Digest:    tpm2.TPM2BDigest{Buffer: digest[:]},
		Signature: tpm2.TPMTSignature{
			SigAlg: tpm2.TPMAlgRSASSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA,
				&tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: sig}}),
		},
	}.Execute(tpm)
	if err != nil {
		return nil, nil, fmt.Errorf("the TPM refused the .pcrsig: its signature does not verify with the key /var is sealed to: %w", err)
	}
	return &rsp.Validation, &ext.Name, nil
}

// ReadPCR11 reads the SHA-256 bank's PCR 11 from the TPM.
func ReadPCR11(tpm transport.TPM) ([]byte, error) {
	rsp, err := tpm2.PCRRead{PCRSelectionIn: pcr11}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("reading PCR 11: %w", err)
	}
	if len(rsp.PCRValues.Digests) != 1 || len(rsp.PCRValues.Digests[0].Buffer) != sha256.Size {
		return nil, errors.New("reading PCR 11: the TPM has no SHA-256 bank")
	}
	return rsp.PCRValues.Digests[0].Buffer, nil
}

// Lock extends the SHA-256 bank's PCR 11 with the SHA-256 of LockMarker,
// so no signed policy matches it, and the secret cannot be unsealed
// again, until the next boot (as systemd's "leave-initrd" phase does). The init calls it
// once /var is open.
func Lock(tpm transport.TPM) error {
	d := lockDigest()
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcrIndex), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d[:]}}},
	}.Execute(tpm)
	if err != nil {
		return fmt.Errorf("locking the TPM secret: extending PCR 11: %w", err)
	}
	return nil
}
