package update

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Magic starts every bundle.
var Magic = []byte("bulkhead-update\n")

// Errors a reader reports, wrapped with the payload they concern.
var (
	// ErrDigest means content does not match its signed digest or size.
	ErrDigest = errors.New("digest mismatch")
	// ErrTruncated means the bundle ends early.
	ErrTruncated = errors.New("truncated bundle")
	// ErrTrailing means bytes follow the last payload.
	ErrTrailing = errors.New("data after the last payload")
)

// maxWindow bounds the memory a zstd frame may ask of the decoder.
const maxWindow = 64 << 20

// Reader reads a bundle from a stream: the signed manifest, then each
// payload in turn.
type Reader struct {
	src   io.Reader
	m     *Manifest
	keyID string
	next  int
	cur   *payloadReader
	err   error // sticky: after a failure the stream position is unknown
}

// NewReader reads the bundle's header from r and checks the manifest's
// signature against keys and the manifest itself. It reads nothing past
// the envelope.
func NewReader(r io.Reader, keys []*PublicKey) (*Reader, error) {
	env, err := readEnvelope(r)
	if err != nil {
		return nil, err
	}
	payload, keyID, err := env.Verify(keys)
	if err != nil {
		return nil, fmt.Errorf("checking the manifest's signature: %w", err)
	}
	m, err := ParseManifest(payload)
	if err != nil {
		return nil, err
	}
	return &Reader{src: r, m: m, keyID: keyID}, nil
}

// Inspect reads the header of a bundle without checking its signature:
// for showing what a bundle claims, never for acting on it.
func Inspect(r io.Reader) (*Manifest, *Envelope, error) {
	env, err := readEnvelope(r)
	if err != nil {
		return nil, nil, err
	}
	m, err := ParseManifest(env.Payload)
	if err != nil {
		return nil, nil, err
	}
	return m, env, nil
}

// InspectReader is Inspect that goes on to read the payloads: for
// republishing a bundle (update push), never for installing it. The
// payloads are still checked against the manifest's digests.
func InspectReader(r io.Reader) (*Reader, *Envelope, error) {
	env, err := readEnvelope(r)
	if err != nil {
		return nil, nil, err
	}
	m, err := ParseManifest(env.Payload)
	if err != nil {
		return nil, nil, err
	}
	return &Reader{src: r, m: m}, env, nil
}

func readEnvelope(r io.Reader) (*Envelope, error) {
	head := make([]byte, len(Magic)+4)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("reading bundle header: %w", truncated(err))
	}
	if string(head[:len(Magic)]) != string(Magic) {
		return nil, errors.New("reading bundle header: not a bulkhead update bundle")
	}
	n := binary.BigEndian.Uint32(head[len(Magic):])
	if n == 0 || n > MaxEnvelope {
		return nil, fmt.Errorf("reading bundle header: envelope of %d bytes, at most %d", n, MaxEnvelope)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("reading signed manifest: %w", truncated(err))
	}
	return ParseEnvelope(b)
}

// Manifest is the checked, signed manifest.
func (r *Reader) Manifest() *Manifest { return r.m }

// KeyID names the trusted key that signed the manifest.
func (r *Reader) KeyID() string { return r.keyID }

// Next returns the next payload and a reader of its decoded content. That
// reader returns io.EOF only once the content and the stored bytes matched
// their signed sizes and digests; otherwise an error wrapping ErrDigest or
// ErrTruncated. A payload not read to its end is checked (and decoded) by
// the following Next. After the last payload Next returns io.EOF, once it
// made sure nothing follows.
func (r *Reader) Next() (Payload, io.Reader, error) {
	if err := r.finishCurrent(); err != nil {
		return Payload{}, nil, r.fail(err)
	}
	if r.next == len(r.m.Payloads) {
		return Payload{}, nil, r.checkEnd()
	}
	p := r.m.Payloads[r.next]
	r.next++
	pr, err := newPayloadReader(r.src, p)
	if err != nil {
		return Payload{}, nil, r.fail(err)
	}
	r.cur = pr
	return p, pr, nil
}

// CheckStored reads the rest of the bundle and checks each remaining
// payload's stored size and digest, without decoding: the check a host
// makes before it writes anything. The Reader is used up.
func (r *Reader) CheckStored() error {
	if err := r.finishCurrent(); err != nil {
		return r.fail(err)
	}
	for ; r.next < len(r.m.Payloads); r.next++ {
		if err := checkStored(r.src, r.m.Payloads[r.next]); err != nil {
			return r.fail(err)
		}
	}
	return r.checkEnd()
}

func checkStored(src io.Reader, p Payload) error {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(src, p.StoredSize))
	if err != nil {
		return fmt.Errorf("payload %s: %w", p.Name, err)
	}
	if n < p.StoredSize {
		return fmt.Errorf("payload %s: %w: %d of %d bytes", p.Name, ErrTruncated, n, p.StoredSize)
	}
	if hex.EncodeToString(h.Sum(nil)) != p.StoredSHA256 {
		return fmt.Errorf("payload %s: %w", p.Name, ErrDigest)
	}
	return nil
}

// fail records the reader's first error and returns it.
func (r *Reader) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

func (r *Reader) finishCurrent() error {
	if r.err != nil {
		return r.err
	}
	if r.cur == nil {
		return nil
	}
	defer func() { r.cur.close(); r.cur = nil }()
	if _, err := io.Copy(io.Discard, r.cur); err != nil {
		return err
	}
	return nil
}

// checkEnd makes sure the stream ends after the last payload.
func (r *Reader) checkEnd() error {
	var b [1]byte
	for range 100 {
		n, err := r.src.Read(b[:])
		switch {
		case n > 0:
			return r.fail(ErrTrailing)
		case errors.Is(err, io.EOF):
			return io.EOF
		case err != nil:
			return r.fail(fmt.Errorf("reading bundle end: %w", err))
		}
	}
	return r.fail(io.ErrNoProgress)
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

// payloadReader decodes one payload while hashing the stored bytes. The
// decoded bytes are not hashed again: they are a deterministic function of
// the stored bytes, which match their signed digest (for an unencoded
// payload the manifest check makes both digests equal), and the decoded
// size is checked; a host also verifies the root it wrote against the
// signed verity root hash. That is one SHA-256 pass fewer over the root.
type payloadReader struct {
	p       Payload
	stored  *countingHash
	decoded io.Reader
	zr      *zstd.Decoder
	left    int64
	err     error
}

func newPayloadReader(src io.Reader, p Payload) (*payloadReader, error) {
	stored := &countingHash{r: io.LimitReader(src, p.StoredSize), h: sha256.New(), limit: p.StoredSize}
	pr := &payloadReader{p: p, stored: stored, decoded: stored, left: p.Size}
	if p.Encoding == EncodingZstd {
		zr, err := zstd.NewReader(stored, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow))
		if err != nil {
			return nil, fmt.Errorf("payload %s: %w", p.Name, err)
		}
		pr.zr, pr.decoded = zr, zr
	}
	return pr, nil
}

func (pr *payloadReader) Read(b []byte) (int, error) {
	if pr.err != nil {
		return 0, pr.err
	}
	if pr.left == 0 {
		pr.err = pr.finish()
		return 0, pr.err
	}
	if int64(len(b)) > pr.left {
		b = b[:pr.left]
	}
	n, err := pr.decoded.Read(b)
	pr.left -= int64(n)
	switch {
	case err == nil || n > 0 && errors.Is(err, io.EOF) && pr.left > 0:
		return n, nil
	case errors.Is(err, io.EOF) && pr.left == 0:
		return n, nil // finish on the next call
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		pr.err = pr.describe(ErrTruncated)
	default:
		pr.err = fmt.Errorf("%w (%w)", pr.describe(ErrDigest), err)
	}
	return n, pr.err
}

// finish checks, once Size bytes were decoded, that nothing more decodes
// and every stored byte was read, and compares both digests.
func (pr *payloadReader) finish() error {
	var one [1]byte
	if n, _ := io.ReadFull(pr.decoded, one[:]); n > 0 {
		return pr.describe(ErrDigest)
	}
	if _, err := io.Copy(io.Discard, pr.stored); err != nil {
		return fmt.Errorf("payload %s: %w", pr.p.Name, err)
	}
	if pr.stored.n < pr.p.StoredSize {
		return fmt.Errorf("payload %s: %w", pr.p.Name, ErrTruncated)
	}
	if hex.EncodeToString(pr.stored.h.Sum(nil)) != pr.p.StoredSHA256 {
		return pr.describe(ErrDigest)
	}
	return io.EOF
}

// describe wraps err with the payload's name; a source that ended early
// makes any failure a truncation.
func (pr *payloadReader) describe(err error) error {
	if pr.stored.short {
		err = ErrTruncated
	}
	return fmt.Errorf("payload %s: %w", pr.p.Name, err)
}

func (pr *payloadReader) close() {
	if pr.zr != nil {
		pr.zr.Close()
	}
}

// countingHash hashes and counts what is read through it, and notes a
// source that ended before limit bytes.
type countingHash struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64
	short bool
}

func (c *countingHash) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.h.Write(b[:n])
	c.n += int64(n)
	if errors.Is(err, io.EOF) && c.n < c.limit {
		c.short = true
	}
	return n, err
}
