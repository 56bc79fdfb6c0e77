package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/output"
)

// Names of the files SignArtifacts writes next to the artifacts.
const (
	SumsFile       = "SHA256SUMS"
	ProvenanceFile = "provenance.intoto.jsonl"
	BundleSuffix   = ".sigstore.json"
)

// SignArtifacts signs the artifacts named by files (names inside dir) with
// key and writes, into dir: SHA256SUMS over them, a Sigstore bundle
// <name>.sigstore.json for each of them and for SHA256SUMS, and
// provenance.intoto.jsonl, a DSSE envelope holding an in-toto statement with
// an SLSA provenance predicate whose subjects are the artifacts. Everything
// is computed before anything is written; each file appears atomically.
//
// An ECDSA key signs each artifact's digest, so an artifact is read once,
// as a stream (or not at all when WithDigests gives its digest); an
// Ed25519 key signs the message itself, read whole into memory.
func SignArtifacts(ctx context.Context, dir string, files []string, key *PrivateKey, info BuildInfo, opts ...ArtifactOption) error {
	if len(files) == 0 {
		return errors.New("signing artifacts: no artifacts")
	}
	var o artifactOptions
	for _, opt := range opts {
		opt(&o)
	}
	digests := map[string]string{}
	out := map[string][]byte{}
	for _, name := range files {
		if err := checkArtifactName(name); err != nil {
			return fmt.Errorf("signing artifacts: %w", err)
		}
		if _, dup := digests[name]; dup {
			return fmt.Errorf("signing artifacts: %s listed twice", name)
		}
		hex, bundle, err := signArtifact(ctx, filepath.Join(dir, name), o.digests[name], key)
		if err != nil {
			return fmt.Errorf("signing %s: %w", name, err)
		}
		digests[name], out[name+BundleSuffix] = hex, bundle
	}
	sumsData := sums(digests)
	out[SumsFile] = sumsData
	var err error
	if out[SumsFile+BundleSuffix], err = SignBlob(ctx, key, sumsData); err != nil {
		return fmt.Errorf("signing %s: %w", SumsFile, err)
	}
	if out[ProvenanceFile], err = signProvenance(ctx, key, digests, info); err != nil {
		return err
	}
	for _, name := range sortedKeys(out) {
		if err := output.WriteFile(filepath.Join(dir, name), out[name]); err != nil {
			return fmt.Errorf("signing artifacts: %w", err)
		}
	}
	return nil
}

// ArtifactOption changes how SignArtifacts works.
type ArtifactOption func(*artifactOptions)

type artifactOptions struct {
	digests map[string]string
}

// WithDigests gives the sha256 (hex, or "sha256:<hex>") of artifacts by
// name, as their writer computed them, so SignArtifacts need not read them
// to hash them.
func WithDigests(digests map[string]string) ArtifactOption {
	return func(o *artifactOptions) { o.digests = digests }
}

// signArtifact returns the file's sha256 (hex) and its bundle. known is
// its digest when the caller has it.
func signArtifact(ctx context.Context, path, known string, key *PrivateKey) (string, []byte, error) {
	if key.signsDigest() {
		sum, err := knownOrFileDigest(path, known)
		if err != nil {
			return "", nil, err
		}
		b, err := SignDigest(ctx, key, sum)
		return hex.EncodeToString(sum), b, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	b, err := SignBlob(ctx, key, data)
	return hexSHA256(data), b, err
}

func knownOrFileDigest(path, known string) ([]byte, error) {
	if known == "" {
		h, _, err := fileDigest(path)
		if err != nil {
			return nil, err
		}
		known = h.Hex
	}
	sum, err := hex.DecodeString(strings.TrimPrefix(known, "sha256:"))
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("digest %q of %s: not a sha256", known, path)
	}
	return sum, nil
}

func signProvenance(ctx context.Context, key *PrivateKey, digests map[string]string, info BuildInfo) ([]byte, error) {
	st, err := statement(digests, info)
	if err != nil {
		return nil, err
	}
	env, err := SignEnvelope(ctx, key, InTotoPayloadType, st)
	if err != nil {
		return nil, fmt.Errorf("signing provenance: %w", err)
	}
	return env.MarshalLine()
}

// checkArtifactName refuses names outside dir and the names of the files
// SignArtifacts writes itself.
func checkArtifactName(name string) error {
	switch {
	case name == "" || name != filepath.Base(name) || name == "." || name == "..":
		return fmt.Errorf("artifact %q: want a file name inside the output directory", name)
	case name == SumsFile || name == ProvenanceFile || strings.HasSuffix(name, BundleSuffix):
		return fmt.Errorf("artifact %q: the name is reserved for signatures", name)
	}
	return nil
}

// Result is the verification of one file of a signed set.
type Result struct {
	Name   string // the file name inside the directory
	Digest string // its sha256 hex, when it could be read
	Err    error  // nil when it verified
}

// OK reports whether the file verified.
func (r Result) OK() bool { return r.Err == nil }

// Verify checks a directory written by SignArtifacts against the public
// key: each artifact's bundle and digest, SHA256SUMS and its bundle, and the
// provenance's signature and subjects. It returns one Result per artifact,
// then SHA256SUMS, then the provenance; a broken file fails only its own
// line. The error is non-nil when any file failed or nothing was found.
func Verify(ctx context.Context, dir string, key *PublicKey) ([]Result, error) {
	sumsRes, listed := verifySums(dir, key)
	provRes, subjects := verifyProvenance(dir, key, listed)
	names, err := artifactNames(dir, listed)
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		results = append(results, verifyArtifact(dir, name, key, listed, subjects))
	}
	results = append(results, sumsRes, provRes)
	failed := 0
	for _, r := range results {
		if !r.OK() {
			failed++
		}
	}
	if failed > 0 {
		return results, fmt.Errorf("verifying %s: %d of %d files failed", dir, failed, len(results))
	}
	return results, nil
}

// verifySums checks SHA256SUMS and returns its entries when it is authentic
// (nil otherwise).
func verifySums(dir string, key *PublicKey) (Result, map[string]string) {
	r := Result{Name: SumsFile}
	data, err := os.ReadFile(filepath.Join(dir, SumsFile))
	if err != nil {
		r.Err = err
		return r, nil
	}
	r.Digest = hexSHA256(data)
	if r.Err = verifyBlobFile(dir, SumsFile, data, key); r.Err != nil {
		return r, nil
	}
	listed, err := parseSums(data)
	if err != nil {
		r.Err = err
		return r, nil
	}
	return r, listed
}

// verifyProvenance checks the provenance's signature and, when SHA256SUMS is
// authentic, that its subjects are exactly the listed artifacts. It returns
// the subjects when the provenance is authentic.
func verifyProvenance(dir string, key *PublicKey, listed map[string]string) (Result, map[string]string) {
	r := Result{Name: ProvenanceFile}
	data, err := os.ReadFile(filepath.Join(dir, ProvenanceFile))
	if err != nil {
		r.Err = err
		return r, nil
	}
	r.Digest = hexSHA256(data)
	env, err := ParseEnvelope(bytes.TrimSuffix(data, []byte("\n")))
	if err != nil {
		r.Err = err
		return r, nil
	}
	payload, err := env.Verify(key)
	if err != nil {
		r.Err = fmt.Errorf("signature: %w", err)
		return r, nil
	}
	if env.PayloadType != InTotoPayloadType {
		r.Err = fmt.Errorf("payload type %q, want %q", env.PayloadType, InTotoPayloadType)
		return r, nil
	}
	st, subjects, err := ParseStatement(payload)
	if err != nil {
		r.Err = err
		return r, nil
	}
	if st.PredicateType != SLSAProvenanceType {
		r.Err = fmt.Errorf("predicate type %q, want %q", st.PredicateType, SLSAProvenanceType)
		return r, nil
	}
	if listed != nil && !sameDigests(listed, subjects) {
		r.Err = fmt.Errorf("its subjects differ from %s", SumsFile)
		return r, nil
	}
	return r, subjects
}

func verifyArtifact(dir, name string, key *PublicKey, listed, subjects map[string]string) Result {
	r := Result{Name: name}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		r.Err = err
		return r
	}
	r.Digest = hexSHA256(data)
	if listed != nil && listed[name] != r.Digest {
		r.Err = &ChangedError{Digest: r.Digest, Signed: listed[name]}
		return r
	}
	if r.Err = verifyBlobFile(dir, name, data, key); r.Err != nil {
		return r
	}
	if subjects != nil && subjects[name] != r.Digest {
		r.Err = fmt.Errorf("digest sha256:%s is not a subject of the provenance", r.Digest)
	}
	return r
}

// verifyBlobFile checks name's bundle against its content.
func verifyBlobFile(dir, name string, data []byte, key *PublicKey) error {
	raw, err := os.ReadFile(filepath.Join(dir, name+BundleSuffix))
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	b, err := ParseBundle(raw)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if hint := KeyHint(b); hint != key.ID() {
		return fmt.Errorf("bundle: %w", ErrOtherKey)
	}
	if err := VerifyBlobBundle(b, key, bytes.NewReader(data)); err != nil {
		// The signature may be good for other content: then the file
		// changed after it was signed, which is what to say.
		signed := b.GetMessageSignature().GetMessageDigest().GetDigest()
		if len(signed) == sha256.Size && hex.EncodeToString(signed) != hexSHA256(data) && VerifyDigestBundle(b, key, signed) == nil {
			return &ChangedError{Digest: hexSHA256(data), Signed: hex.EncodeToString(signed)}
		}
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

// ChangedError is a signed file whose content is not what was signed.
type ChangedError struct {
	Digest string // sha256 hex of the content now
	Signed string // sha256 hex of the content signed
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("content changed (sha256 %s, signed %s)", e.Digest, e.Signed)
}

// Unsigned lists the regular files in dir that a signed set does not
// cover: neither listed in SHA256SUMS nor one of the signature files. It
// reads SHA256SUMS without checking it (Verify does that).
func Unsigned(dir string) ([]string, error) {
	listed := map[string]string{}
	if data, err := os.ReadFile(filepath.Join(dir, SumsFile)); err == nil {
		listed, _ = parseSums(data)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		_, signed := listed[name]
		if !e.Type().IsRegular() || signed || name == SumsFile || name == ProvenanceFile || strings.HasSuffix(name, BundleSuffix) {
			continue
		}
		out = append(out, name)
	}
	return out, nil
}

// artifactNames lists the artifacts to check: those SHA256SUMS lists, or,
// when it cannot be trusted, those with a bundle.
func artifactNames(dir string, listed map[string]string) ([]string, error) {
	if listed != nil {
		return sortedKeys(listed), nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("verifying %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), BundleSuffix)
		if ok && name != SumsFile {
			names = append(names, name)
		}
	}
	return names, nil
}

func sameDigests(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
