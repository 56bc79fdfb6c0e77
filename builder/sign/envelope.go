package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
)

// Envelope is a DSSE envelope, as written one per line in a .intoto.jsonl
// file. Payload and Sig are base64 in JSON.
type Envelope struct {
	PayloadType string              `json:"payloadType"`
	Payload     []byte              `json:"payload"`
	Signatures  []EnvelopeSignature `json:"signatures"`
}

// EnvelopeSignature is one signature of an Envelope.
type EnvelopeSignature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   []byte `json:"sig"`
}

// SignEnvelope signs payload into a DSSE envelope whose signature names the
// key by its ID.
func SignEnvelope(ctx context.Context, key *PrivateKey, payloadType string, payload []byte) (*Envelope, error) {
	pb, err := newBundle(ctx, key, &sgsign.DSSEData{Data: payload, PayloadType: payloadType})
	if err != nil {
		return nil, err
	}
	env := pb.GetDsseEnvelope()
	if env == nil || len(env.Signatures) != 1 {
		return nil, errors.New("making DSSE envelope: no signature")
	}
	return &Envelope{
		PayloadType: env.PayloadType,
		Payload:     env.Payload,
		Signatures:  []EnvelopeSignature{{KeyID: key.Public().ID(), Sig: env.Signatures[0].Sig}},
	}, nil
}

// MarshalLine renders the envelope as one JSON line.
func (e *Envelope) MarshalLine() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding DSSE envelope: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseEnvelope parses one JSON DSSE envelope.
func ParseEnvelope(b []byte) (*Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("parsing DSSE envelope: %w", err)
	}
	if e.PayloadType == "" || len(e.Signatures) == 0 {
		return nil, errors.New("parsing DSSE envelope: needs a payloadType and a signature")
	}
	return &e, nil
}

// Bundle wraps the envelope's first signature in a Sigstore bundle naming
// the key by the signature's key ID, so sigstore-go can verify it.
func (e *Envelope) Bundle() (*bundle.Bundle, error) {
	sig := e.Signatures[0]
	pb := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{
				PublicKey: &protocommon.PublicKeyIdentifier{Hint: sig.KeyID},
			},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     e.Payload,
			PayloadType: e.PayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig.Sig}},
		}},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("wrapping DSSE envelope: %w", err)
	}
	return b, nil
}

// Verify checks the envelope's signature with key and returns the payload.
// The signature must name key's ID.
func (e *Envelope) Verify(key *PublicKey) ([]byte, error) {
	if len(e.Signatures) != 1 {
		return nil, fmt.Errorf("the envelope has %d signatures, want 1", len(e.Signatures))
	}
	if e.Signatures[0].KeyID != key.ID() {
		return nil, ErrOtherKey
	}
	b, err := e.Bundle()
	if err != nil {
		return nil, err
	}
	_, payload, err := VerifyDSSEBundle(b, key)
	return payload, err
}
