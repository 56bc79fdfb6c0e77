// Package secureboot signs EFI programs (systemd-boot, unified kernel
// images) with Authenticode for UEFI Secure Boot, and makes the keys a
// machine enrolls to trust them: PK, KEK and db, each as a certificate and
// as an EFI signature list wrapped in a signed, time-based authenticated
// variable update (.auth) that firmware in setup mode (or systemd-boot's
// secure-boot-enroll) writes into its key databases.
//
// The Authenticode structures come from relic's lib/authenticode; this
// package adds only the EFI variable formats. Signing is deterministic
// (RSA PKCS #1 v1.5, no signing time, no timestamp): the same image and
// key give the same bytes.
package secureboot

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sassoftware/relic/v8/lib/authenticode"
	"github.com/sassoftware/relic/v8/lib/binpatch"
	"github.com/sassoftware/relic/v8/lib/certloader"
)

// MaxImage bounds the EFI program Sign reads (a UKI with its initrd).
const MaxImage = 3 << 30

// Signer signs with a db key and its certificate.
type Signer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// ParseSigner reads a PEM private key (PKCS #1 or #8, RSA) and the PEM
// certificate of its public key.
func ParseSigner(keyPEM, certPEM []byte) (*Signer, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the Secure Boot key does not match the certificate")
	}
	return &Signer{Cert: cert, Key: key}, nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("certificate: no PEM CERTIFICATE block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return c, nil
}

// ParseRSAKey reads a PEM RSA private key (PKCS #1 or #8).
func ParseRSAKey(b []byte) (*rsa.PrivateKey, error) { return parseKey(b) }

func parseKey(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("key: no PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("key: PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("key: not RSA (UEFI firmware verifies RSA signatures)")
	}
	return rk, nil
}

// Sign returns the PE image img with an Authenticode signature (SHA-256)
// appended in its certificate table. An image that is already signed
// has its signature replaced.
func (s *Signer) Sign(img []byte) ([]byte, error) {
	if len(img) > MaxImage {
		return nil, errors.New("signing: image larger than 3 GiB")
	}
	d, err := authenticode.DigestPE(bytes.NewReader(img), crypto.SHA256, false)
	if err != nil {
		return nil, fmt.Errorf("signing: reading the image: %w", err)
	}
	cert := &certloader.Certificate{Leaf: s.Cert, Certificates: []*x509.Certificate{s.Cert}, PrivateKey: s.Key}
	patch, _, err := d.Sign(context.Background(), cert, nil)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	out, err := applyPatch(img, patch)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	fixChecksum(out)
	return out, nil
}

// applyPatch applies relic's patch set (sorted, non-overlapping regions)
// to b in memory.
func applyPatch(b []byte, p *binpatch.PatchSet) ([]byte, error) {
	var out bytes.Buffer
	pos := int64(0)
	for i, h := range p.Patches {
		if h.Offset < pos || h.Offset+int64(h.OldSize) > int64(len(b)) {
			return nil, errors.New("signature patch out of order or out of range")
		}
		out.Write(b[pos:h.Offset])
		out.Write(p.Blobs[i])
		pos = h.Offset + int64(h.OldSize)
	}
	out.Write(b[pos:])
	return out.Bytes(), nil
}

// fixChecksum sets the PE optional header's CheckSum (it is outside what
// Authenticode hashes, so the signature stays valid).
func fixChecksum(b []byte) {
	pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
	h := authenticode.NewPEChecksum(pe)
	h.Write(b)
	copy(b[pe+88:], h.Sum(nil))
}

// Verify checks that img carries a valid Authenticode signature whose
// signer certificate is cert (a db entry as firmware checks it: the
// signer itself, no chain).
func Verify(img []byte, cert *x509.Certificate) error {
	sigs, err := authenticode.VerifyPE(bytes.NewReader(img), false)
	if err != nil {
		return err
	}
	for _, s := range sigs {
		if s.Certificate != nil && s.Certificate.Equal(cert) {
			return nil
		}
	}
	return errors.New("not signed by the given certificate")
}
