// Package bundler writes update bundles (NAME.bundle): one version of a
// host as the update on the host installs it. It reuses what the raw-efi
// writer puts into a slot (the verified root image) and onto the ESP (the
// kernel, the stage-0 initrd and the entry's command line), compresses the
// root with zstd for transit, and signs the manifest with the same keys and
// DSSE envelope as --sign-key. The format is internal/update's.
//
// Bundles are reproducible: the same inputs and key give the same bytes
// (zstd is run with fixed settings on one thread; ECDSA signatures are
// deterministic; every time comes from the caller).
package bundler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/sign"
	"github.com/bulkhead-dev/bulkhead/internal/update"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// Input is one version of a host.
type Input struct {
	Host, Version, Arch string
	// From and Downgrade are the manifest's (see update.Manifest).
	From      string
	Downgrade []string
	// Created is the build time (SOURCE_DATE_EPOCH); Expires must follow.
	Created, Expires time.Time
	// Root is the root image file (file system and verity tree) and
	// Verity its parameters.
	Root   string
	Verity verity.Params
	// Kernel and Initrd are the files the version's ESP directory holds;
	// Options is its entry's command line without root= (what the
	// raw-efi writer is given) and Tries its boot counter.
	Kernel, Initrd []byte
	Options        string
	Tries          int
	// UKI, when set, is the version's unified kernel image (holding
	// Options, and the kernel and initrd): the bundle carries it instead
	// of Kernel and Initrd.
	UKI []byte
}

// espPayloads are the payloads after the root, in bundle order.
func (in Input) espPayloads() []update.Payload {
	if in.UKI != nil {
		return []update.Payload{plain(update.PayloadUKI, in.UKI)}
	}
	return []update.Payload{plain(update.PayloadKernel, in.Kernel), plain(update.PayloadInitrd, in.Initrd)}
}

// espFiles are the contents of espPayloads.
func (in Input) espFiles() [][]byte {
	if in.UKI != nil {
		return [][]byte{in.UKI}
	}
	return [][]byte{in.Kernel, in.Initrd}
}

// Write writes the bundle of in, signed with key, to path (atomically)
// and returns its manifest. The compressed root is staged in a temporary
// file beside path.
func Write(ctx context.Context, path string, in Input, key *sign.PrivateKey) (*update.Manifest, error) {
	if key == nil {
		return nil, errors.New("writing update bundle: no signing key")
	}
	staged, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".root-*")
	if err != nil {
		return nil, fmt.Errorf("writing update bundle: %w", err)
	}
	defer func() { staged.Close(); os.Remove(staged.Name()) }()
	rootPayload, err := compressRoot(ctx, in.Root, staged)
	if err != nil {
		return nil, fmt.Errorf("writing update bundle: compressing the root: %w", err)
	}
	m := manifest(in, rootPayload)
	env, err := signManifest(ctx, m, key)
	if err != nil {
		return nil, fmt.Errorf("writing update bundle: %w", err)
	}
	if err := writeFile(path, env, staged, in); err != nil {
		return nil, fmt.Errorf("writing update bundle: %w", err)
	}
	return m, nil
}

func manifest(in Input, root update.Payload) *update.Manifest {
	return &update.Manifest{
		Format: update.FormatVersion, Host: in.Host, Version: in.Version, Arch: in.Arch,
		From: in.From, Downgrade: in.Downgrade,
		Created: in.Created.UTC(), Expires: in.Expires.UTC(),
		Verity: in.Verity.String(), Options: in.Options, Tries: in.Tries,
		Payloads: append([]update.Payload{root}, in.espPayloads()...),
	}
}

// signManifest checks and encodes m and returns the DSSE envelope's JSON.
func signManifest(ctx context.Context, m *update.Manifest, key *sign.PrivateKey) ([]byte, error) {
	body, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	env, err := sign.SignEnvelope(ctx, key, update.PayloadType, body)
	if err != nil {
		return nil, fmt.Errorf("signing manifest: %w", err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encoding signed manifest: %w", err)
	}
	return b, nil
}

func writeFile(path string, env []byte, staged *os.File, in Input) error {
	out, err := output.Create(path)
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := update.WriteHeader(out, env); err != nil {
		return err
	}
	if _, err := staged.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(out, staged); err != nil {
		return err
	}
	for _, b := range in.espFiles() {
		if _, err := out.Write(b); err != nil {
			return err
		}
	}
	return out.Commit()
}

// plain is a payload stored as it is.
func plain(name string, b []byte) update.Payload {
	d := digest(b)
	return update.Payload{Name: name, Size: int64(len(b)), SHA256: d, StoredSize: int64(len(b)), StoredSHA256: d}
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// compressRoot writes the root image zstd-compressed to dst, hashing both
// sides.
func compressRoot(ctx context.Context, root string, dst io.Writer) (update.Payload, error) {
	f, err := os.Open(root)
	if err != nil {
		return update.Payload{}, err
	}
	defer f.Close()
	plainHash, storedHash := sha256.New(), sha256.New()
	stored := &counter{w: io.MultiWriter(dst, storedHash)}
	zw, err := zstd.NewWriter(stored, zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20))
	if err != nil {
		return update.Payload{}, err
	}
	n, err := io.Copy(io.MultiWriter(zw, plainHash), readerCtx{ctx, f})
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return update.Payload{}, err
	}
	return update.Payload{
		Name: update.PayloadRoot, Size: n, SHA256: hex.EncodeToString(plainHash.Sum(nil)),
		Encoding: update.EncodingZstd, StoredSize: stored.n, StoredSHA256: hex.EncodeToString(storedHash.Sum(nil)),
	}, nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// readerCtx stops a copy when ctx is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(b)
}
