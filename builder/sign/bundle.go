package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"
)

// BundleMediaType is the media type of the Sigstore bundles this package
// writes.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// InTotoPayloadType is the DSSE payload type of an in-toto statement.
const InTotoPayloadType = "application/vnd.in-toto+json"

// ErrOtherKey reports a signature that is not by the expected key.
var ErrOtherKey = errors.New("signed by another key")

// SignBlob signs data and returns a Sigstore bundle (JSON) holding a message
// signature over it and naming the key by its ID.
func SignBlob(ctx context.Context, key *PrivateKey, data []byte) ([]byte, error) {
	return signContent(ctx, key, &sgsign.PlainData{Data: data})
}

// SignDigest returns the Sigstore bundle (JSON) of a message whose SHA-256
// is digest, the same bundle SignBlob makes of the message, without the
// message. Only keys that sign a digest (ECDSA) can: see signsDigest.
func SignDigest(ctx context.Context, key *PrivateKey, digest []byte) ([]byte, error) {
	if !key.signsDigest() {
		return nil, fmt.Errorf("%s signs whole messages, not digests", key)
	}
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("digest of %d bytes is not a sha256", len(digest))
	}
	return signContent(ctx, prehashed{key}, &sgsign.PlainData{Data: digest})
}

// prehashed is a key whose SignData gets the message's digest instead of
// the message.
type prehashed struct{ *PrivateKey }

func (p prehashed) SignData(_ context.Context, digest []byte) ([]byte, []byte, error) {
	sig, err := p.signer.Sign(nil, digest, crypto.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	return sig, digest, nil
}

// SignDSSE signs payload in a DSSE envelope and returns it as a Sigstore
// bundle (JSON).
func SignDSSE(ctx context.Context, key *PrivateKey, payloadType string, payload []byte) ([]byte, error) {
	return signContent(ctx, key, &sgsign.DSSEData{Data: payload, PayloadType: payloadType})
}

func signContent(ctx context.Context, key sgsign.Keypair, c sgsign.Content) ([]byte, error) {
	pb, err := newBundle(ctx, key, c)
	if err != nil {
		return nil, err
	}
	return marshalBundle(pb)
}

func newBundle(ctx context.Context, key sgsign.Keypair, c sgsign.Content) (*protobundle.Bundle, error) {
	pb, err := sgsign.Bundle(c, key, sgsign.BundleOptions{Context: ctx})
	if err != nil {
		return nil, fmt.Errorf("making bundle: %w", err)
	}
	return pb, nil
}

// marshalBundle renders a bundle as indented JSON. protojson's spacing is
// deliberately unstable, so the output is re-indented to be reproducible.
func marshalBundle(pb *protobundle.Bundle) ([]byte, error) {
	raw, err := protojson.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encoding bundle: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("encoding bundle: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ParseBundle parses a Sigstore bundle (JSON).
func ParseBundle(b []byte) (*bundle.Bundle, error) {
	var bun bundle.Bundle
	if err := bun.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("parsing bundle: %w", err)
	}
	return &bun, nil
}

// KeyHint is the key ID a bundle names, if any.
func KeyHint(b *bundle.Bundle) string {
	return b.GetVerificationMaterial().GetPublicKey().GetHint()
}

// VerifyBlobBundle checks that b is key's signature over the content read
// from artifact.
func VerifyBlobBundle(b *bundle.Bundle, key *PublicKey, artifact io.Reader) error {
	if b.GetMessageSignature() == nil {
		return errors.New("the bundle holds no message signature")
	}
	return verifyBundle(b, key, verify.WithArtifact(artifact))
}

// VerifyDSSEBundle checks that b holds a DSSE envelope signed by key and
// returns its payload type and payload. The caller checks what the payload
// says.
func VerifyDSSEBundle(b *bundle.Bundle, key *PublicKey) (string, []byte, error) {
	env := b.GetDsseEnvelope()
	if env == nil {
		return "", nil, errors.New("the bundle holds no DSSE envelope")
	}
	if err := verifyBundle(b, key, verify.WithoutArtifactUnsafe()); err != nil {
		return "", nil, err
	}
	return env.GetPayloadType(), env.GetPayload(), nil
}

// VerifyDigestBundle checks that b is key's signature over the artifact
// whose SHA-256 is digest: a message signature over it, or a DSSE in-toto
// statement naming it as a subject.
func VerifyDigestBundle(b *bundle.Bundle, key *PublicKey, digest []byte) error {
	return verifyBundle(b, key, verify.WithArtifactDigest("sha256", digest))
}

// verifyBundle runs sigstore-go's verifier in key mode, offline: the
// signature must be key's (whatever hint the bundle carries), with no
// transparency log or timestamp required.
func verifyBundle(b *bundle.Bundle, key *PublicKey, artifact verify.ArtifactPolicyOption) error {
	v, err := key.Verifier()
	if err != nil {
		return err
	}
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(v, time.Time{}, time.Time{}), nil
	})
	sev, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
	if err != nil {
		return fmt.Errorf("verifying bundle: %w", err)
	}
	if _, err := sev.Verify(b, verify.NewPolicy(artifact, verify.WithKey())); err != nil {
		return fmt.Errorf("verifying bundle: %w", err)
	}
	return nil
}
