package trust

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

// Error is a trust failure of one image: "host.yml:8:12: image "x":
// signature: signed by another key".
type Error struct {
	Pos config.Pos // of the reference in the spec
	Ref string     // as written
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("image %q: %v", e.Ref, e.Err)
	if e.Pos != (config.Pos{}) {
		return e.Pos.String() + ": " + msg
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Reasons a check fails; Error wraps them.
var (
	ErrNotAllowed     = errors.New("not allowed by the trust policy")
	ErrNotPinned      = errors.New("not pinned by digest, and the trust policy requires it (run bulkhead lock)")
	ErrMoved          = errors.New("the tag moved after locking")
	ErrNoSignature    = errors.New("no signature")
	ErrOtherKey       = sign.ErrOtherKey
	ErrOtherDigest    = errors.New("signature covers another digest")
	ErrMalformed      = errors.New("malformed signature")
	errNoRuleForPin   = errors.New("the lock file names a key the trust policy does not accept for this image")
	errSourceFailures = errors.New("could not read signatures")
)

// CheckOption configures Check.
type CheckOption func(*checkConfig)

type checkConfig struct {
	pin *resolve.LockEntry
}

// WithPin gives the lock file's entry for the reference: the image must be
// the pinned digest, and signed by the recorded key if it names one.
func WithPin(e resolve.LockEntry) CheckOption {
	return func(c *checkConfig) { c.pin = &e }
}

// Check checks one resolved image against the policy and returns the ID of
// the key whose signature verified it ("" when no rule asks for one).
// Sources are asked in order until one yields a valid signature. Errors are
// *Error, positioned at ref.
func Check(ctx context.Context, p *Policy, ref config.Ref, img *resolve.Image, sources []Source, opts ...CheckOption) (KeyID, error) {
	var c checkConfig
	for _, o := range opts {
		o(&c)
	}
	id, err := check(ctx, p, ref, img, sources, c)
	if err != nil {
		return "", &Error{Pos: ref.Pos, Ref: ref.Ref, Err: err}
	}
	return id, nil
}

func check(ctx context.Context, p *Policy, ref config.Ref, img *resolve.Image, sources []Source, c checkConfig) (KeyID, error) {
	if !p.allowed(img.Name) {
		return "", fmt.Errorf("%s: %w (allowed: %s)", img.Name, ErrNotAllowed, strings.Join(p.Allow, ", "))
	}
	pinnedInRef := strings.Contains(ref.Ref, "@sha256:")
	if p.Pinned && !pinnedInRef && c.pin == nil {
		return "", ErrNotPinned
	}
	if c.pin != nil && c.pin.Digest != img.Digest {
		return "", fmt.Errorf("%w: it resolves to %s, the lock file pins %s", ErrMoved, img.Digest, c.pin.Digest)
	}
	rule := p.rule(img.Name)
	if rule == nil {
		return "", nil
	}
	keys := rule.Keys
	if c.pin != nil && c.pin.Key != "" {
		keys = nil
		for _, k := range rule.Keys {
			if k.ID() == c.pin.Key {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return "", fmt.Errorf("signature: %w (%s; the policy accepts %s)", errNoRuleForPin, c.pin.Key, keyNames(rule.Keys))
		}
	}
	return verifyImage(ctx, img, keys, sources)
}

// verifyImage looks for a signature by one of keys over img's digest.
func verifyImage(ctx context.Context, img *resolve.Image, keys []*NamedKey, sources []Source) (KeyID, error) {
	var worst error // the most telling failure so far
	var looked []string
	for _, src := range sources {
		sigs, where, err := src.Signatures(ctx, img)
		looked = append(looked, where...)
		if err != nil {
			worst = pickWorse(worst, fmt.Errorf("%w: %w", errSourceFailures, err))
			continue
		}
		for _, s := range sigs {
			id, err := verifySignature(s, img.Digest, keys)
			if err == nil {
				return id, nil
			}
			worst = pickWorse(worst, fmt.Errorf("%w (%s)", err, s.Origin))
		}
	}
	if worst == nil {
		return "", fmt.Errorf("signature: %w (looked at %s)", ErrNoSignature, strings.Join(looked, ", "))
	}
	return "", fmt.Errorf("signature: %w", worst)
}

// pickWorse keeps the failure that says most: a valid signature over
// another digest, then another key, then malformed, then fetch failures.
func pickWorse(a, b error) error {
	rank := func(e error) int {
		switch {
		case e == nil:
			return -1
		case errors.Is(e, ErrOtherDigest):
			return 4
		case errors.Is(e, ErrOtherKey):
			return 3
		case errors.Is(e, ErrMalformed):
			return 2
		default:
			return 1
		}
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// verifySignature checks one signature against each key.
func verifySignature(s Signature, digest v1.Hash, keys []*NamedKey) (KeyID, error) {
	var err error
	for _, k := range keys {
		if s.Bundle != nil {
			err = verifyBundle(s.Bundle, digest, k.PublicKey)
		} else {
			err = verifySimpleSigning(s.Payload, s.Sig, digest, k.PublicKey)
		}
		if err == nil {
			return k.ID(), nil
		}
		if !errors.Is(err, ErrOtherKey) {
			return "", err
		}
	}
	return "", err
}

func verifyBundle(raw []byte, digest v1.Hash, key *sign.PublicKey) error {
	b, err := sign.ParseBundle(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	want, err := hex.DecodeString(digest.Hex)
	if err != nil {
		return err
	}
	if b.GetDsseEnvelope() != nil {
		return verifyDSSEBundle(b, digest, key)
	}
	md := b.GetMessageSignature().GetMessageDigest()
	if md == nil {
		return fmt.Errorf("%w: no message digest", ErrMalformed)
	}
	if !bytes.Equal(md.GetDigest(), want) {
		if sign.VerifyDigestBundle(b, key, md.GetDigest()) != nil {
			return ErrOtherKey
		}
		return fmt.Errorf("%w: sha256:%x, not %s", ErrOtherDigest, md.GetDigest(), digest)
	}
	if sign.VerifyDigestBundle(b, key, want) != nil {
		return ErrOtherKey
	}
	return nil
}

func verifyDSSEBundle(b *bundle.Bundle, digest v1.Hash, key *sign.PublicKey) error {
	typ, payload, err := sign.VerifyDSSEBundle(b, key)
	if err != nil {
		return ErrOtherKey
	}
	if typ != sign.InTotoPayloadType {
		return fmt.Errorf("%w: payload type %q", ErrMalformed, typ)
	}
	_, subjects, err := sign.ParseStatement(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var covered []string
	for _, h := range subjects {
		if h == digest.Hex {
			return nil
		}
		covered = append(covered, "sha256:"+h)
	}
	return fmt.Errorf("%w: %s, not %s", ErrOtherDigest, strings.Join(covered, ", "), digest)
}

// simpleSigning is the part of cosign's simple-signing payload checked here.
type simpleSigning struct {
	Critical struct {
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

func verifySimpleSigning(payload, sig []byte, digest v1.Hash, key *sign.PublicKey) error {
	v, err := key.Verifier()
	if err != nil {
		return err
	}
	if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) != nil {
		return ErrOtherKey
	}
	var ss simpleSigning
	if err := json.Unmarshal(payload, &ss); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if got := ss.Critical.Image.DockerManifestDigest; got != digest.String() {
		return fmt.Errorf("%w: %s, not %s", ErrOtherDigest, got, digest)
	}
	return nil
}

// CheckAll checks every resolved image of a spec: refs[i] resolved to
// imgs[i], pinned by lock (may be nil) for platform. It returns the key ID
// that verified each image ("" where no rule asks for one) and an error
// joining one *Error per failed image, in order.
func CheckAll(ctx context.Context, p *Policy, refs []config.Ref, imgs []*resolve.Image, lock *resolve.Lock, platform v1.Platform, sources []Source) ([]KeyID, error) {
	if len(refs) != len(imgs) {
		return nil, fmt.Errorf("checking trust: %d references, %d images", len(refs), len(imgs))
	}
	ids := make([]KeyID, len(refs))
	var errs []error
	for i, ref := range refs {
		var opts []CheckOption
		if lock != nil {
			if e, ok := lock.Find(ref.Ref, platform); ok {
				opts = append(opts, WithPin(e))
			}
		}
		id, err := Check(ctx, p, ref, imgs[i], sources, opts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids[i] = id
	}
	return ids, errors.Join(errs...)
}

// DefaultSources are where a build looks for signatures: the local store's
// referrers, then the image's registry (unless offline).
func DefaultSources(store *resolve.Store, offline bool, opts ...remote.Option) []Source {
	srcs := []Source{StoreSource{Store: store}}
	if !offline {
		srcs = append(srcs, RegistrySource{Options: opts, Cache: store})
	}
	return srcs
}
