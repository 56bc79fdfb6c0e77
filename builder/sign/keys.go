package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Algorithm is a signing key algorithm.
type Algorithm string

// The algorithms GenerateKey knows.
const (
	ECDSAP256 Algorithm = "ecdsa-p256" // the default
	Ed25519   Algorithm = "ed25519"
)

// EnvPrefix marks a private key given through an environment variable:
// env://NAME reads the PEM from $NAME.
const EnvPrefix = "env://"

// PEM block types of the keys this package writes and reads.
const (
	privatePEMType = "PRIVATE KEY"
	publicPEMType  = "PUBLIC KEY"
)

// GenerateKey makes a key pair and returns the private key (PKCS#8) and the
// public key (PKIX), each PEM encoded.
func GenerateKey(alg Algorithm) (priv, pub []byte, err error) {
	var signer crypto.Signer
	switch alg {
	case ECDSAP256, "":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("generating key: unknown algorithm %q (known: %s, %s)", alg, ECDSAP256, Ed25519)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	priv = pem.EncodeToMemory(&pem.Block{Type: privatePEMType, Bytes: der})
	pub = pem.EncodeToMemory(&pem.Block{Type: publicPEMType, Bytes: pubDER})
	return priv, pub, nil
}

// PrivateKey is a signing key. It implements sigstore-go's sign.Keypair, and
// its signatures are deterministic (RFC 6979 for ECDSA; Ed25519 is by
// nature), so signing the same bytes twice gives the same bundle.
type PrivateKey struct {
	signer crypto.Signer
	pub    *PublicKey
}

// LoadPrivateKey reads a PEM private key from a file, or from the
// environment variable NAME when pathOrEnv is env://NAME. Errors never quote
// the key material.
func LoadPrivateKey(pathOrEnv string) (*PrivateKey, error) {
	var b []byte
	if name, ok := strings.CutPrefix(pathOrEnv, EnvPrefix); ok {
		v, set := os.LookupEnv(name)
		if !set || v == "" {
			return nil, fmt.Errorf("reading signing key: environment variable %s is not set", name)
		}
		b = []byte(v)
	} else {
		var err error
		if b, err = os.ReadFile(pathOrEnv); err != nil {
			return nil, fmt.Errorf("reading signing key: %w", err)
		}
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("reading signing key %s: %w", pathOrEnv, err)
	}
	return k, nil
}

// ParsePrivateKey parses a PEM PKCS#8 (or SEC 1 "EC PRIVATE KEY") private
// key: ECDSA P-256 or Ed25519.
func ParsePrivateKey(b []byte) (*PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case privatePEMType:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not an unencrypted private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("malformed private key") // the parser's message may quote key bytes
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	pub, err := NewPublicKey(signer.Public())
	if err != nil {
		return nil, err
	}
	return &PrivateKey{signer: signer, pub: pub}, nil
}

// Public is the key's public half.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// String names the key by its ID only.
func (k *PrivateKey) String() string { return "private key " + k.pub.ID() }

// GetHashAlgorithm implements sign.Keypair. Ed25519 signs messages whole;
// SHA-256 is then the digest a bundle records beside the signature.
func (k *PrivateKey) GetHashAlgorithm() protocommon.HashAlgorithm {
	if k.pub.details.GetHashType() == crypto.Hash(0) {
		return protocommon.HashAlgorithm_SHA2_256
	}
	return k.pub.details.GetProtoHashType()
}

// GetSigningAlgorithm implements sign.Keypair.
func (k *PrivateKey) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.pub.details.GetSignatureAlgorithm()
}

// GetHint implements sign.Keypair: the key ID.
func (k *PrivateKey) GetHint() []byte { return []byte(k.pub.ID()) }

// GetKeyAlgorithm implements sign.Keypair.
func (k *PrivateKey) GetKeyAlgorithm() string {
	if k.pub.details.GetKeyType() == signature.ED25519 {
		return "ED25519"
	}
	return "ECDSA"
}

// GetPublicKey implements sign.Keypair.
func (k *PrivateKey) GetPublicKey() crypto.PublicKey { return k.pub.key }

// GetPublicKeyPem implements sign.Keypair.
func (k *PrivateKey) GetPublicKeyPem() (string, error) { return string(k.pub.PEM()), nil }

// signsDigest reports whether the key signs a message's SHA-256 digest
// (ECDSA P-256) rather than the message itself (Ed25519).
func (k *PrivateKey) signsDigest() bool { return k.pub.details.GetHashType() == crypto.SHA256 }

// SignData implements sign.Keypair: it signs data (its digest for ECDSA,
// the data itself for Ed25519) and returns the signature and the data's
// digest.
func (k *PrivateKey) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := k.pub.details.GetHashType()
	var digest, msg []byte
	if hf == crypto.Hash(0) {
		sum := sha256.Sum256(data)
		digest, msg = sum[:], data
	} else {
		h := hf.New()
		h.Write(data)
		digest = h.Sum(nil)
		msg = digest
	}
	// A nil random source makes ECDSA deterministic (RFC 6979).
	sig, err := k.signer.Sign(nil, msg, hf)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	return sig, digest, nil
}

// PublicKey is a verification key.
type PublicKey struct {
	key     crypto.PublicKey
	der     []byte
	details signature.AlgorithmDetails
}

// NewPublicKey wraps an ECDSA P-256 or Ed25519 public key.
func NewPublicKey(key crypto.PublicKey) (*PublicKey, error) {
	var alg protocommon.PublicKeyDetails
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("unsupported ECDSA curve %s (want P-256)", k.Curve.Params().Name)
		}
		alg = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
	case ed25519.PublicKey:
		alg = protocommon.PublicKeyDetails_PKIX_ED25519
	default:
		return nil, fmt.Errorf("unsupported key type %T (want ECDSA P-256 or Ed25519)", key)
	}
	details, err := signature.GetAlgorithmDetails(alg)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, err
	}
	return &PublicKey{key: key, der: der, details: details}, nil
}

// ParsePublicKey parses a PEM PKIX public key.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != publicPEMType {
		return nil, errors.New("parsing public key: no PEM PUBLIC KEY block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	pk, err := NewPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	return pk, nil
}

// LoadPublicKey reads a PEM public key file.
func LoadPublicKey(path string) (*PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	pk, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pk, nil
}

// ID identifies the key: sha256: and the hex SHA-256 of its PKIX encoding.
// Bundles name their key by it, and lock files record it.
func (p *PublicKey) ID() string {
	sum := sha256.Sum256(p.der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Key is the crypto public key.
func (p *PublicKey) Key() crypto.PublicKey { return p.key }

// PEM renders the key as a PEM PUBLIC KEY block.
func (p *PublicKey) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: publicPEMType, Bytes: p.der})
}

// Verifier is the key as a sigstore signature verifier.
func (p *PublicKey) Verifier() (signature.Verifier, error) {
	v, err := signature.LoadVerifierFromAlgorithmDetails(p.key, p.details)
	if err != nil {
		return nil, fmt.Errorf("loading verifier for key %s: %w", p.ID(), err)
	}
	return v, nil
}
