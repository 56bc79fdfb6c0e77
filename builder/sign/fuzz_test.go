package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
)

// FuzzVerifyBundle feeds bundles and DSSE envelopes (JSON from a release
// or a registry) to the parsers and verifiers: they must never panic, and
// a blob bundle that verifies must be over the artifact it is checked
// against.
func FuzzVerifyBundle(f *testing.F) {
	privPEM, pubPEM, err := GenerateKey(ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	priv, err := ParsePrivateKey(privPEM)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := ParsePublicKey(pubPEM)
	if err != nil {
		f.Fatal(err)
	}
	artifact := []byte("artifact bytes")
	blob, err := SignBlob(context.Background(), priv, artifact)
	if err != nil {
		f.Fatal(err)
	}
	dsse, err := SignDSSE(context.Background(), priv, "application/vnd.in-toto+json", []byte(`{"subject":[]}`))
	if err != nil {
		f.Fatal(err)
	}
	env, err := SignEnvelope(context.Background(), priv, "application/vnd.in-toto+json", []byte(`{}`))
	if err != nil {
		f.Fatal(err)
	}
	envJSON, err := env.MarshalLine()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{blob, dsse, envJSON} {
		f.Add(seed)
	}
	digest := sha256.Sum256(artifact)
	f.Fuzz(func(t *testing.T, data []byte) {
		if e, err := ParseEnvelope(data); err == nil {
			if b, err := e.Bundle(); err == nil {
				_, _, _ = VerifyDSSEBundle(b, pub)
			}
		}
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		_ = KeyHint(b)
		_, _, _ = VerifyDSSEBundle(b, pub)
		_ = VerifyDigestBundle(b, pub, digest[:])
		other := []byte("other bytes")
		if VerifyBlobBundle(b, pub, bytes.NewReader(other)) == nil {
			t.Fatal("a bundle verified over an artifact it does not sign")
		}
	})
}
