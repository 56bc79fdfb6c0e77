package update

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/bootentry"
	"github.com/bulkhead-dev/bulkhead/internal/verity"
)

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// PayloadType is the DSSE payload type of a signed manifest.
const PayloadType = "application/vnd.bulkhead.update.manifest.v1+json"

// KeysPath is where a host carries the public keys (PEM, one after the
// other) whose signatures on a bundle it accepts, inside its verified
// root: they change only through an update signed by a key it trusts.
const KeysPath = "usr/share/bulkhead/update/keys.pem"

// CredentialsPathFile is where a host's root names, in one line, the file
// on /var that holds its registry credentials (the spec's
// update.credentials): the path is baked, the credentials never are.
const CredentialsPathFile = "usr/share/bulkhead/update/credentials"

// Payload names, in the order a bundle carries them.
const (
	PayloadRoot   = "root"
	PayloadKernel = bootentry.Kernel
	PayloadInitrd = bootentry.Initrd
	// PayloadUKI is a version's unified kernel image (kernel, initrd and
	// command line in one signed EFI program), instead of kernel and
	// initrd.
	PayloadUKI = bootentry.UKI
)

// payloadOrder is the payloads of format 1, in bundle order: a kernel
// and an initrd, or a unified kernel image.
var (
	payloadOrder    = []string{PayloadRoot, PayloadKernel, PayloadInitrd}
	payloadOrderUKI = []string{PayloadRoot, PayloadUKI}
)

// Encodings of a stored payload.
const (
	EncodingNone = ""
	EncodingZstd = "zstd"
)

// Caps on what a manifest may claim, whatever it is signed by.
const (
	MaxEnvelope   = 1 << 20
	MaxKernel     = 512 << 20
	MaxInitrd     = 2 << 30
	MaxUKI        = MaxKernel + MaxInitrd
	MaxRoot       = 1 << 40
	maxDowngrades = 64
	maxOptions    = 4096
)

// Manifest describes one version of one host: what its bundle installs
// and on which hosts it may be installed.
type Manifest struct {
	Format int `json:"format"`
	// Host is the name the bundle was built under (the spec's base name).
	Host    string `json:"host"`
	Version string `json:"version"`
	// Arch is the GOARCH of the host's binaries.
	Arch string `json:"arch"`
	// From is the oldest running version this bundle may be applied on;
	// empty allows any.
	From string `json:"from,omitempty"`
	// Downgrade lists the running versions this bundle may replace even
	// though it is not newer (an explicit, signed downgrade).
	Downgrade []string `json:"downgrade,omitempty"`
	// Created is the build time (SOURCE_DATE_EPOCH); Expires is when
	// hosts stop accepting the bundle.
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Verity is the root's bulkhead.verity= value:
	// DATA_BLOCKS:HASH_START:SALT:ROOT_HASH.
	Verity string `json:"verity"`
	// Options is the boot entry's command line without root= and
	// bulkhead.data= (the host adds them for the slot it writes); it
	// carries bulkhead.verity= equal to Verity. A unified kernel image
	// carries it inside, as it is: stage 0 boots the slot holding the
	// root hash.
	Options string `json:"options"`
	// Tries is the new entry's boot counter.
	Tries    int       `json:"tries"`
	Payloads []Payload `json:"payloads"`
}

// Payload is one file of a bundle.
type Payload struct {
	Name string `json:"name"`
	// Size and SHA256 are the content once decoded.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Encoding is how the content is stored ("" or "zstd"); StoredSize
	// and StoredSHA256 are the stored bytes.
	Encoding     string `json:"encoding,omitempty"`
	StoredSize   int64  `json:"stored_size"`
	StoredSHA256 string `json:"stored_sha256"`
}

// Params parses Verity.
func (m *Manifest) Params() (verity.Params, error) { return verity.ParseParams(m.Verity) }

// RootHash is the root image's verity root hash, in hex.
func (m *Manifest) RootHash() string {
	p, err := m.Params()
	if err != nil {
		return ""
	}
	return hex.EncodeToString(p.RootHash)
}

// Payload returns the payload called name.
func (m *Manifest) Payload(name string) (Payload, bool) {
	for _, p := range m.Payloads {
		if p.Name == name {
			return p, true
		}
	}
	return Payload{}, false
}

// UKI reports whether the bundle carries a unified kernel image.
func (m *Manifest) UKI() bool {
	return len(m.Payloads) == len(payloadOrderUKI) && m.Payloads[1].Name == PayloadUKI
}

// Entry is the boot entry the bundle installs for a root slot and a data
// partition (their partition GUIDs). A unified kernel image names no slot.
func (m *Manifest) Entry(rootGUID, dataGUID string) (bootentry.Entry, error) {
	if m.UKI() {
		return bootentry.Entry{Version: m.Version, Options: m.Options, Tries: m.Tries, UKI: true}, nil
	}
	opts, err := bootentry.SlotOptions(m.Options, rootGUID, dataGUID)
	if err != nil {
		return bootentry.Entry{}, err
	}
	return bootentry.Entry{Version: m.Version, Initrd: true, Options: opts, Tries: m.Tries}, nil
}

// ParseManifest decodes and checks a manifest; unknown fields are errors.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parsing manifest: data after the manifest")
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal encodes the manifest, checked, as the bytes that are signed.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Check reports a manifest that no host should act on.
func (m *Manifest) Check() error {
	if err := m.checkHeader(); err != nil {
		return fmt.Errorf("checking manifest: %w", err)
	}
	if err := m.checkBoot(); err != nil {
		return fmt.Errorf("checking manifest: %w", err)
	}
	if err := m.checkPayloads(); err != nil {
		return fmt.Errorf("checking manifest: %w", err)
	}
	return nil
}

func (m *Manifest) checkHeader() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("format %d, this host reads %d", m.Format, FormatVersion)
	}
	if m.Host == "" || len(m.Host) > 255 {
		return errors.New("no host name")
	}
	if m.Arch == "" || len(m.Arch) > 32 {
		return errors.New("no arch")
	}
	for _, v := range append([]string{m.Version}, m.Downgrade...) {
		if err := bootentry.CheckVersion(v); err != nil {
			return err
		}
	}
	if m.From != "" {
		if err := bootentry.CheckVersion(m.From); err != nil {
			return fmt.Errorf("from: %w", err)
		}
	}
	if len(m.Downgrade) > maxDowngrades {
		return fmt.Errorf("%d downgrade versions, at most %d", len(m.Downgrade), maxDowngrades)
	}
	if m.Expires.IsZero() || !m.Expires.After(m.Created) {
		return errors.New("expiry missing or not after the build time")
	}
	return nil
}

func (m *Manifest) checkBoot() error {
	p, err := m.Params()
	if err != nil {
		return err
	}
	if len(m.Options) > maxOptions {
		return errors.New("options too long")
	}
	cp, ok, err := verity.FromCmdline(m.Options)
	if err != nil || !ok || cp.String() != p.String() {
		return errors.New("options do not carry the manifest's verity parameters")
	}
	e := bootentry.Entry{Version: m.Version, Tries: m.Tries}
	if err := e.Check(); err != nil {
		return err
	}
	if m.Tries < 1 {
		return errors.New("tries must be at least 1: a new entry is counted")
	}
	return bootentry.CheckOptions(m.Options)
}

func (m *Manifest) checkPayloads() error {
	names := make([]string, len(m.Payloads))
	for i, p := range m.Payloads {
		names[i] = p.Name
		if err := p.check(); err != nil {
			return fmt.Errorf("payload %s: %w", p.Name, err)
		}
	}
	if !slices.Equal(names, payloadOrder) && !slices.Equal(names, payloadOrderUKI) {
		return fmt.Errorf("payloads %v, want %v or %v", names, payloadOrder, payloadOrderUKI)
	}
	root, _ := m.Payload(PayloadRoot)
	p, _ := m.Params()
	if int64(p.HashStart)*verity.BlockSize > root.Size || int64(p.DataBlocks)*verity.BlockSize > root.Size {
		return errors.New("verity parameters point past the root image")
	}
	return nil
}

func (p Payload) check() error {
	limit := map[string]int64{PayloadRoot: MaxRoot, PayloadKernel: MaxKernel, PayloadInitrd: MaxInitrd, PayloadUKI: MaxUKI}[p.Name]
	switch {
	case p.Size <= 0 || p.Size > limit:
		return fmt.Errorf("size %d is not between 1 and %d", p.Size, limit)
	case p.StoredSize <= 0 || p.StoredSize > limit:
		return fmt.Errorf("stored size %d is not between 1 and %d", p.StoredSize, limit)
	case !isDigest(p.SHA256) || !isDigest(p.StoredSHA256):
		return errors.New("digests must be 64 hex digits")
	}
	switch p.Encoding {
	case EncodingNone:
		if p.StoredSize != p.Size || p.StoredSHA256 != p.SHA256 {
			return errors.New("unencoded payload stored differently")
		}
	case EncodingZstd:
	default:
		return fmt.Errorf("unknown encoding %q", p.Encoding)
	}
	return nil
}

func isDigest(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && s == hex.EncodeToString(b)
}
