package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/update/chunk"
)

// ErrUnsigned means the artifact carries no signature, or none by a key
// the host trusts, or one over another manifest.
var ErrUnsigned = errors.New("no valid signature")

// Update is one published update being pulled. New resolves it; Verify
// checks its signature (fetching nothing else); then it serves as
// apply.Payloads to apply.Install.
type Update struct {
	o      options
	ref    Ref
	c      *Client
	layers []descriptor // the artifact's layers
	m      *update.Manifest
	keyID  string
	index  *chunk.Index
	need   map[string]int64    // chunk digest -> size, for every component
	where  map[string]location // chunk digest -> where the host has it
	cuts   []*chunk.Cuts       // the stable seeds' chunks, when there are deltas
	stats  Stats
}

// Stats counts what a pull fetched and reused.
type Stats struct {
	// Fetched is every byte read from the registry (manifests, the
	// signature, the index and chunk bytes, refetches included).
	Fetched int64
	// ChunksFetched and ChunkBytes count verified chunks fetched (stored
	// bytes); Refetched the chunks fetched again after bad bytes or a cut.
	ChunksFetched, Refetched int
	ChunkBytes               int64
	// Deltas counts the chunks made from deltas (among ChunksFetched),
	// and DeltaBytes the delta bytes read, refetches included.
	Deltas     int
	DeltaBytes int64
	// ChunksLocal are the chunks found on the host (slots, ESP, cache).
	ChunksLocal int
	// Scan is the time spent looking for chunks on the host, Fetch the
	// time spent fetching the others.
	Scan, Fetch time.Duration
}

type options struct {
	http     *http.Client
	creds    string
	cache    string
	seeds    []Seed
	tries    int
	progress func(string)
}

// Option configures New.
type Option func(*options) error

// WithHTTPClient sets the HTTP client (default: http.DefaultClient's
// transport, no overall timeout).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error { o.http = c; return nil }
}

// WithCredentials reads the registry's credentials from path (see
// ReadCredentials); a missing file means none.
func WithCredentials(path string) Option {
	return func(o *options) error { o.creds = path; return nil }
}

// WithCache keeps fetched, verified chunks in dir (on /var on a host),
// where an interrupted pull finds them again. Required.
func WithCache(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("empty chunk cache directory")
		}
		o.cache = dir
		return nil
	}
}

// WithSeed offers content the host already has (the running slot's file
// system, typically) as a source of chunks.
func WithSeed(s Seed) Option {
	return func(o *options) error {
		if s.R == nil || s.Size < 0 {
			return errors.New("seed without content")
		}
		o.seeds = append(o.seeds, s)
		return nil
	}
}

// WithTries sets how often a chunk is fetched before the pull fails
// (default 3).
func WithTries(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("tries %d, want at least 1", n)
		}
		o.tries = n
		return nil
	}
}

// WithProgress calls f with a line at each stage (synchronously).
func WithProgress(f func(string)) Option {
	return func(o *options) error { o.progress = f; return nil }
}

// New prepares a pull of ref.
func New(ref string, opts ...Option) (*Update, error) {
	o := options{http: &http.Client{}, tries: 3, progress: func(string) {}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("pulling update: %w", err)
		}
	}
	if o.cache == "" {
		return nil, errors.New("pulling update: no chunk cache directory")
	}
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	var user, pass string
	if o.creds != "" {
		if _, err := os.Stat(o.creds); err == nil {
			if user, pass, err = ReadCredentials(o.creds, r.Host); err != nil {
				return nil, err
			}
		}
	}
	u := &Update{o: o, ref: r}
	u.c = NewClient(r, &http.Client{Transport: counting{o.http.Transport, &u.stats.Fetched}, Timeout: o.http.Timeout}, user, pass)
	return u, nil
}

// Name names the update in errors.
func (u *Update) Name() string { return u.ref.String() }

// Stats is what the pull fetched and reused so far.
func (u *Update) Stats() Stats { return u.stats }

// Manifest is the verified manifest (after Verify).
func (u *Update) Manifest() *update.Manifest { return u.m }

// KeyID names the key that signed it (after Verify).
func (u *Update) KeyID() string { return u.keyID }

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type ociManifestJSON struct {
	MediaType string       `json:"mediaType"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
}

// Verify resolves the reference, fetches the signature the cosign way
// (the sha256-<digest>.sig tag) and checks it against keys and against
// the artifact's manifest layer. It fetches no chunk and no index; an
// error wrapping ErrUnsigned is a refusal.
func (u *Update) Verify(ctx context.Context, keys []*update.PublicKey) (*update.Manifest, string, error) {
	art, digest, err := u.artifact(ctx, u.reference(), ArtifactType)
	if err != nil {
		return nil, "", err
	}
	if len(art.Layers) < 2 || art.Layers[0].MediaType != update.PayloadType || art.Layers[1].MediaType != chunk.IndexMediaType {
		return nil, "", fmt.Errorf("pulling %s: not a bulkhead update artifact", u.Name())
	}
	sig, _, err := u.artifact(ctx, SignatureTag(digest), SignatureArtifactType)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrUnsigned, err)
	}
	if len(sig.Layers) == 0 || len(sig.Layers) > MaxSignatures {
		return nil, "", fmt.Errorf("%w: the signature artifact holds %d layers, want 1 to %d", ErrUnsigned, len(sig.Layers), MaxSignatures)
	}
	err = fmt.Errorf("%w: no DSSE envelope", ErrUnsigned)
	for _, l := range sig.Layers {
		var m *update.Manifest
		var keyID string
		if m, keyID, err = u.verifyLayer(ctx, l, art.Layers[0].Digest, keys); err == nil {
			u.layers, u.m, u.keyID = art.Layers, m, keyID
			return m, keyID, nil
		}
	}
	return nil, "", err
}

// MaxSignatures bounds the envelopes a signature artifact may hold.
const MaxSignatures = 16

// verifyLayer checks one envelope of the signature artifact: by a key in
// keys, over the manifest whose digest is manifestDigest.
func (u *Update) verifyLayer(ctx context.Context, l descriptor, manifestDigest string, keys []*update.PublicKey) (*update.Manifest, string, error) {
	if l.MediaType != EnvelopeMediaType || l.Size > update.MaxEnvelope {
		return nil, "", fmt.Errorf("%w: a signature layer is not a DSSE envelope", ErrUnsigned)
	}
	b, err := u.blob(ctx, l.Digest, update.MaxEnvelope)
	if err != nil {
		return nil, "", err
	}
	m, payload, keyID, err := verifyEnvelope(b, keys)
	if err != nil {
		return nil, "", err
	}
	if digestOf(payload) != manifestDigest {
		return nil, "", fmt.Errorf("%w: the signature is over another manifest", ErrUnsigned)
	}
	return m, keyID, nil
}

func (u *Update) reference() string {
	if u.ref.Digest != "" {
		return u.ref.Digest
	}
	return u.ref.Tag
}

// blob fetches a small blob, again after a cut or a bad digest.
func (u *Update) blob(ctx context.Context, digest string, limit int64) ([]byte, error) {
	var b []byte
	err := u.retry(ctx, func() (err error) {
		b, err = u.c.Blob(ctx, digest, limit)
		return err
	})
	return b, err
}

// retry calls f until it succeeds, up to the tries allowed, waiting a
// little longer each time.
func (u *Update) retry(ctx context.Context, f func() error) error {
	var err error
	for try := range u.o.tries {
		if err = f(); err == nil || ctx.Err() != nil || errors.Is(err, errNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(try*try) * 100 * time.Millisecond):
		}
	}
	return err
}

func (u *Update) artifact(ctx context.Context, reference, artifactType string) (*ociManifestJSON, string, error) {
	var b []byte
	var d string
	err := u.retry(ctx, func() (err error) {
		b, d, err = u.c.Manifest(ctx, reference)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	var m ociManifestJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("parsing manifest %s: %w", reference, err)
	}
	if m.Config.MediaType != artifactType {
		return nil, "", fmt.Errorf("manifest %s: type %q, want %q", reference, m.Config.MediaType, artifactType)
	}
	return &m, d, nil
}

// verifyEnvelope checks a DSSE envelope against keys and returns the
// manifest it signs, the manifest's bytes and the signing key's ID.
func verifyEnvelope(b []byte, keys []*update.PublicKey) (*update.Manifest, []byte, string, error) {
	env, err := update.ParseEnvelope(b)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: %w", ErrUnsigned, err)
	}
	payload, keyID, err := env.Verify(keys)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: %w", ErrUnsigned, err)
	}
	m, err := update.ParseManifest(payload)
	if err != nil {
		return nil, nil, "", err
	}
	return m, payload, keyID, nil
}
