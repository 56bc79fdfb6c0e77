package update

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
)

// ErrSignature means no signature on a manifest is by a key the reader
// trusts.
var ErrSignature = errors.New("not signed by a trusted key")

// maxSignatures bounds the signatures an envelope may carry.
const maxSignatures = 8

// Envelope is a DSSE envelope as JSON carries it (payload and signatures
// base64), the form builder/sign writes.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one signature of an Envelope, naming its key by ID.
type Signature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   []byte `json:"sig"`
}

// ParseEnvelope decodes a DSSE envelope.
func ParseEnvelope(b []byte) (*Envelope, error) {
	var e Envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("parsing signed manifest: %w", err)
	}
	if e.PayloadType != PayloadType {
		return nil, fmt.Errorf("parsing signed manifest: payload type %q, want %q", e.PayloadType, PayloadType)
	}
	if n := len(e.Signatures); n == 0 || n > maxSignatures {
		return nil, fmt.Errorf("parsing signed manifest: %d signatures, want 1 to %d", n, maxSignatures)
	}
	return &e, nil
}

// PAE is DSSE's pre-authentication encoding: what is signed.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// Verify returns the payload when one of the envelope's signatures is by
// one of keys, and the ID of that key; otherwise ErrSignature.
func (e *Envelope) Verify(keys []*PublicKey) ([]byte, string, error) {
	pae := PAE(e.PayloadType, e.Payload)
	for _, s := range e.Signatures {
		for _, k := range keys {
			if s.KeyID == k.ID() && k.verify(pae, s.Sig) {
				return e.Payload, k.ID(), nil
			}
		}
	}
	return nil, "", ErrSignature
}

// PublicKey is a key a host accepts bundles from: ECDSA P-256 (signing
// the SHA-256 of the PAE, ASN.1 signatures) or Ed25519 (signing the PAE),
// as builder/sign's keys sign.
type PublicKey struct {
	key any
	der []byte
}

// ID is sha256: and the hex SHA-256 of the key's PKIX encoding, as
// builder/sign names keys.
func (k *PublicKey) ID() string {
	sum := sha256.Sum256(k.der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PEM renders the key as a PEM PUBLIC KEY block.
func (k *PublicKey) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.der})
}

func (k *PublicKey) verify(msg, sig []byte) bool {
	switch pub := k.key.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(pub, sum[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(pub, msg, sig)
	}
	return false
}

// maxKeys bounds the keys one file may hold.
const maxKeys = 64

// ParsePublicKeys reads every PEM PUBLIC KEY block of b (other blocks and
// text between them are refused).
func ParsePublicKeys(b []byte) ([]*PublicKey, error) {
	var keys []*PublicKey
	for rest := bytes.TrimSpace(b); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, errors.New("parsing public keys: want only PEM PUBLIC KEY blocks")
		}
		k, err := parsePKIX(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing public key %d: %w", len(keys)+1, err)
		}
		if keys = append(keys, k); len(keys) > maxKeys {
			return nil, fmt.Errorf("parsing public keys: more than %d", maxKeys)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("parsing public keys: none found")
	}
	return keys, nil
}

func parsePKIX(der []byte) (*PublicKey, error) {
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA curve %s, want P-256", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("key type %T, want ECDSA P-256 or Ed25519", key)
	}
	return &PublicKey{key: key, der: append([]byte(nil), der...)}, nil
}
