package luks2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
)

// Limits on what a header may ask for. The keyslots area and the object
// counts are the specification's (and cryptsetup's); the KDF costs are
// cryptsetup's maximums, so every volume it makes opens.
const (
	maxObjects      = 32        // keyslots, tokens, segments, digests
	maxKeyslotsSize = 128 << 20 // bytes of the keyslots area
	maxKeySize      = 256       // bytes of a volume or keyslot key
	maxStripes      = 4000      // AF stripes
	maxIterations   = 1 << 31   // pbkdf2 iterations, argon2 time
	maxMemory       = 4 << 20   // argon2 memory, KiB (4 GiB)
	maxThreads      = 255       // argon2 lanes
)

// metadata is the JSON area.
type metadata struct {
	Keyslots map[string]keyslot         `json:"keyslots"`
	Tokens   map[string]json.RawMessage `json:"tokens"`
	Segments map[string]segment         `json:"segments"`
	Digests  map[string]digest          `json:"digests"`
	Config   config                     `json:"config"`
}

type keyslot struct {
	Type     string `json:"type"`
	KeySize  int    `json:"key_size"`
	AF       af     `json:"af"`
	Area     area   `json:"area"`
	KDF      kdf    `json:"kdf"`
	Priority *int   `json:"priority,omitempty"`
}

type af struct {
	Type    string `json:"type"`
	Stripes int    `json:"stripes"`
	Hash    string `json:"hash"`
}

type area struct {
	Type       string `json:"type"`
	Offset     uint64 `json:"offset,string"`
	Size       uint64 `json:"size,string"`
	Encryption string `json:"encryption"`
	KeySize    int    `json:"key_size"`
}

// kdf is a keyslot's key derivation: pbkdf2 uses Hash and Iterations,
// argon2i and argon2id Time, Memory (KiB) and CPUs.
type kdf struct {
	Type       string `json:"type"`
	Hash       string `json:"hash,omitempty"`
	Iterations int    `json:"iterations,omitempty"`
	Time       int    `json:"time,omitempty"`
	Memory     int    `json:"memory,omitempty"`
	CPUs       int    `json:"cpus,omitempty"`
	Salt       []byte `json:"salt"`
}

type segment struct {
	Type       string   `json:"type"`
	Offset     uint64   `json:"offset,string"`
	Size       string   `json:"size"` // "dynamic" or bytes
	IVTweak    uint64   `json:"iv_tweak,string"`
	Encryption string   `json:"encryption"`
	SectorSize int      `json:"sector_size"`
	Flags      []string `json:"flags,omitempty"`
}

type digest struct {
	Type       string   `json:"type"`
	Keyslots   []string `json:"keyslots"`
	Segments   []string `json:"segments"`
	Hash       string   `json:"hash"`
	Iterations int      `json:"iterations"`
	Salt       []byte   `json:"salt"`
	Digest     []byte   `json:"digest"`
}

type config struct {
	JSONSize     uint64          `json:"json_size,string"`
	KeyslotsSize uint64          `json:"keyslots_size,string"`
	Flags        []string        `json:"flags,omitempty"`
	Requirements json.RawMessage `json:"requirements,omitempty"`
}

// Header is a checked LUKS2 header: the newer valid copy of the two.
type Header struct {
	UUID      string
	Label     string
	Subsystem string
	SeqID     uint64
	Size      uint64 // bytes of one header copy, binary header and JSON area
	Offset    uint64 // where the copy read is: 0 (primary) or Size (secondary)
	KeySize   int    // bytes of the volume key
	Segment   Segment
	Tokens    []Token // by ID

	meta metadata
}

// Segment is the data segment: where the encrypted data is and how.
type Segment struct {
	Offset     uint64 // bytes from the start of the device
	Size       uint64 // bytes; 0 when Dynamic
	Dynamic    bool   // the segment ends where the device does
	IVTweak    uint64 // added to the IV's sector number (512-byte sectors)
	Encryption string // dm-crypt cipher specification, "aes-xts-plain64"
	SectorSize int    // bytes of an encryption sector
}

// Token is one entry of the metadata's tokens: a JSON object with a type
// and the keyslots it unlocks; its other members are the type's own (a
// sealed key, a policy). Format numbers the tokens it is given 0, 1, …
type Token struct {
	ID       int
	Type     string
	Keyslots []string
	JSON     json.RawMessage // the whole object
}

// NewToken makes a token of v, marshalled to a JSON object with string
// members "type" and "keyslots" (a list of keyslot numbers as strings).
func NewToken(v any) (Token, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Token{}, fmt.Errorf("making token: %w", err)
	}
	return parseToken(b)
}

// Decode unmarshals the token's JSON into v.
func (t Token) Decode(v any) error { return json.Unmarshal(t.JSON, v) }

func parseToken(b []byte) (Token, error) {
	var t struct {
		Type     *string  `json:"type"`
		Keyslots []string `json:"keyslots"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	if t.Type == nil || *t.Type == "" || t.Keyslots == nil {
		return Token{}, errors.New("token: no type or no keyslots")
	}
	return Token{Type: *t.Type, Keyslots: t.Keyslots, JSON: json.RawMessage(bytes.Clone(b))}, nil
}

// ReadHeader reads and checks both header copies of a LUKS2 volume
// (magic, version, sizes, checksum, metadata) and returns the valid one
// with the higher sequence number. It reads at most two
// 4 MiB header copies and holds no more.
func ReadHeader(r io.ReaderAt) (*Header, error) { return readCopies(r) }

// readHeader reads the header copy at off and checks its metadata.
func readHeader(r io.ReaderAt, off uint64) (*Header, error) {
	c, err := readCopy(r, off)
	if err != nil {
		return nil, err
	}
	h, err := parseMetadata(c)
	if err != nil {
		return nil, fmt.Errorf("metadata (seqid %d): %w", c.bin.seqID, err)
	}
	return h, nil
}

func parseMetadata(c headerCopy) (*Header, error) {
	var m metadata
	dec := json.NewDecoder(bytes.NewReader(c.json))
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	h := &Header{
		UUID: c.bin.uuid, Label: c.bin.label, Subsystem: c.bin.subsystem,
		SeqID: c.bin.seqID, Size: c.bin.size, Offset: c.bin.offset, meta: m,
	}
	for _, check := range []func(*Header) error{checkConfig, checkKeyslots, checkSegment, checkDigests, checkTokens} {
		if err := check(h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func checkConfig(h *Header) error {
	c := h.meta.Config
	if c.JSONSize != h.Size-binHeaderSize {
		return fmt.Errorf("config: json_size %d in a %d-byte header", c.JSONSize, h.Size)
	}
	if c.KeyslotsSize > maxKeyslotsSize || c.KeyslotsSize%4096 != 0 {
		return fmt.Errorf("config: keyslots_size %d is not a multiple of 4096 up to %d", c.KeyslotsSize, maxKeyslotsSize)
	}
	if len(c.Requirements) > 0 && !bytes.Equal(c.Requirements, []byte("{}")) {
		var req struct {
			Mandatory []string `json:"mandatory"`
		}
		if err := json.Unmarshal(c.Requirements, &req); err != nil {
			return fmt.Errorf("config: requirements: %w", err)
		}
		if len(req.Mandatory) > 0 {
			return fmt.Errorf("config: unsupported requirements %q (reencryption in progress?)", req.Mandatory)
		}
	}
	return nil
}

// keyslotsArea is the byte range the keyslots may use.
func (h *Header) keyslotsArea() (start, end uint64) {
	return 2 * h.Size, 2*h.Size + h.meta.Config.KeyslotsSize
}

func checkKeyslots(h *Header) error {
	if err := checkIDs("keyslots", slices.Collect(maps.Keys(h.meta.Keyslots))); err != nil {
		return err
	}
	start, end := h.keyslotsArea()
	for id, k := range h.meta.Keyslots {
		if err := k.check(start, end); err != nil {
			return fmt.Errorf("keyslot %s: %w", id, err)
		}
	}
	return nil
}

func (k keyslot) check(start, end uint64) error {
	if k.Type != "luks2" {
		return fmt.Errorf("type %q, not luks2", k.Type)
	}
	if k.KeySize <= 0 || k.KeySize > maxKeySize || k.Area.KeySize <= 0 || k.Area.KeySize > maxKeySize {
		return fmt.Errorf("key sizes %d and %d, not 1 to %d", k.KeySize, k.Area.KeySize, maxKeySize)
	}
	if k.AF.Type != "luks1" || k.AF.Stripes <= 0 || k.AF.Stripes > maxStripes {
		return fmt.Errorf("af %q with %d stripes, not luks1 with 1 to %d", k.AF.Type, k.AF.Stripes, maxStripes)
	}
	if _, err := hashFunc(k.AF.Hash); err != nil {
		return fmt.Errorf("af: %w", err)
	}
	a := k.Area
	if a.Type != "raw" {
		return fmt.Errorf("area type %q, not raw", a.Type)
	}
	if a.Offset < start || a.Size > end-start || a.Offset > end-a.Size {
		return fmt.Errorf("area %d+%d is outside the keyslots area %d to %d", a.Offset, a.Size, start, end)
	}
	if afSize(k) > a.Size {
		return fmt.Errorf("area of %d bytes holds no %d stripes of %d bytes", a.Size, k.AF.Stripes, k.KeySize)
	}
	return k.KDF.check()
}

// afSize is the bytes of a keyslot's split key, whole 512-byte sectors.
func afSize(k keyslot) uint64 {
	n := uint64(k.KeySize) * uint64(k.AF.Stripes)
	return (n + 511) &^ 511
}

func (k kdf) check() error {
	switch k.Type {
	case "pbkdf2":
		if _, err := hashFunc(k.Hash); err != nil {
			return fmt.Errorf("kdf: %w", err)
		}
		if k.Iterations <= 0 || k.Iterations > maxIterations {
			return fmt.Errorf("kdf: %d iterations", k.Iterations)
		}
	case "argon2i", "argon2id":
		if k.Time <= 0 || k.Time > maxIterations || k.Memory < 8 || k.Memory > maxMemory || k.CPUs <= 0 || k.CPUs > maxThreads {
			return fmt.Errorf("kdf: %s time %d memory %d KiB cpus %d out of bounds", k.Type, k.Time, k.Memory, k.CPUs)
		}
	default:
		return fmt.Errorf("kdf: unsupported type %q", k.Type)
	}
	if len(k.Salt) == 0 {
		return errors.New("kdf: no salt")
	}
	return nil
}

// cipherSpec is what may stand in a dm-crypt table's cipher field.
var cipherSpec = regexp.MustCompile(`^[a-z0-9_()-]+(-[a-z0-9_():-]+)*$`)

func checkSegment(h *Header) error {
	if len(h.meta.Segments) != 1 {
		return fmt.Errorf("%d segments, not one (reencryption in progress?)", len(h.meta.Segments))
	}
	s, ok := h.meta.Segments["0"]
	if !ok || s.Type != "crypt" {
		return errors.New(`segments: no crypt segment "0"`)
	}
	if !cipherSpec.MatchString(s.Encryption) || len(s.Encryption) > 64 {
		return fmt.Errorf("segment 0: encryption %q", s.Encryption)
	}
	switch s.SectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return fmt.Errorf("segment 0: sector size %d", s.SectorSize)
	}
	_, end := h.keyslotsArea()
	if s.Offset < end || s.Offset%uint64(s.SectorSize) != 0 {
		return fmt.Errorf("segment 0: offset %d is inside the header or not sector-aligned", s.Offset)
	}
	seg := Segment{Offset: s.Offset, IVTweak: s.IVTweak, Encryption: s.Encryption, SectorSize: s.SectorSize}
	if s.Size == "dynamic" {
		seg.Dynamic = true
	} else {
		n, err := strconv.ParseUint(s.Size, 10, 64)
		if err != nil || n == 0 || n%uint64(s.SectorSize) != 0 {
			return fmt.Errorf("segment 0: size %q", s.Size)
		}
		seg.Size = n
	}
	h.Segment = seg
	return nil
}

func checkDigests(h *Header) error {
	if err := checkIDs("digests", slices.Collect(maps.Keys(h.meta.Digests))); err != nil {
		return err
	}
	for id, d := range h.meta.Digests {
		if d.Type != "pbkdf2" {
			return fmt.Errorf("digest %s: unsupported type %q", id, d.Type)
		}
		if _, err := hashFunc(d.Hash); err != nil {
			return fmt.Errorf("digest %s: %w", id, err)
		}
		if d.Iterations <= 0 || d.Iterations > maxIterations || len(d.Digest) == 0 || len(d.Digest) > 64 {
			return fmt.Errorf("digest %s: %d iterations, %d-byte digest", id, d.Iterations, len(d.Digest))
		}
		for _, k := range d.Keyslots {
			if _, ok := h.meta.Keyslots[k]; !ok {
				return fmt.Errorf("digest %s: no keyslot %q", id, k)
			}
		}
		if slices.Contains(d.Segments, "0") {
			h.KeySize = h.meta.Keyslots[firstOr(d.Keyslots)].KeySize
		}
	}
	if h.KeySize == 0 {
		return errors.New("no digest with a keyslot covers segment 0")
	}
	return nil
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func checkTokens(h *Header) error {
	ids := slices.Collect(maps.Keys(h.meta.Tokens))
	if err := checkIDs("tokens", ids); err != nil {
		return err
	}
	slices.SortFunc(ids, func(a, b string) int { return atoi(a) - atoi(b) })
	for _, id := range ids {
		t, err := parseToken(h.meta.Tokens[id])
		if err != nil {
			return fmt.Errorf("token %s: %w", id, err)
		}
		t.ID = atoi(id)
		h.Tokens = append(h.Tokens, t)
	}
	return nil
}

// checkIDs checks the keys of an object: at most maxObjects of them, each
// a decimal number below maxObjects.
func checkIDs(what string, ids []string) error {
	if len(ids) > maxObjects {
		return fmt.Errorf("%s: %d entries, more than %d", what, len(ids), maxObjects)
	}
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || n >= maxObjects || strconv.Itoa(n) != id {
			return fmt.Errorf("%s: bad id %q", what, id)
		}
	}
	return nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
