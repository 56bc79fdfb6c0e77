package update

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testKey signs as builder/sign does, with the standard library.
type testKey struct {
	pub  *PublicKey
	sign func(pae []byte) []byte
}

func newECDSAKey(t *testing.T) testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{pub: pkix(t, &k.PublicKey), sign: func(pae []byte) []byte {
		sum := sha256.Sum256(pae)
		sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}}
}

func newEd25519Key(t *testing.T) testKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{pub: pkix(t, pub), sign: func(pae []byte) []byte { return ed25519.Sign(priv, pae) }}
}

func pkix(t *testing.T, k any) *PublicKey {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePKIX(der)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testBundle builds a bundle of payloads root, kernel, initrd (root zstd)
// signed by key; edit changes the manifest before it is signed.
func testBundle(t *testing.T, key testKey, edit func(*Manifest)) ([]byte, *Manifest) {
	t.Helper()
	root := bytes.Repeat([]byte("root image block "), 3000)
	root = append(root[:len(root)/4096*4096], make([]byte, 8192)...) // data, superblock, one tree block
	contents := map[string][]byte{PayloadRoot: root, PayloadKernel: []byte("kernel"), PayloadInitrd: []byte("initrd")}
	verity := fmt.Sprintf("%d:%d:%s:%s", len(root)/4096-2, len(root)/4096-1, strings.Repeat("ab", 32), strings.Repeat("cd", 32))
	m := &Manifest{
		Format: FormatVersion, Host: "test", Version: "1.2.0", Arch: "amd64",
		Created: time.Unix(0, 0).UTC(), Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Verity: verity, Options: "console=ttyS0 bulkhead.verity=" + verity, Tries: 3,
	}
	var stored [][]byte
	for _, name := range payloadOrder {
		c := contents[name]
		s, enc := c, EncodingNone
		if name == PayloadRoot {
			zw, _ := zstd.NewWriter(nil)
			s, enc = zw.EncodeAll(c, nil), EncodingZstd
		}
		stored = append(stored, s)
		m.Payloads = append(m.Payloads, Payload{Name: name, Size: int64(len(c)), SHA256: digest(c),
			Encoding: enc, StoredSize: int64(len(s)), StoredSHA256: digest(s)})
	}
	if edit != nil {
		edit(m)
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(Envelope{PayloadType: PayloadType, Payload: body,
		Signatures: []Signature{{KeyID: key.pub.ID(), Sig: key.sign(PAE(PayloadType, body))}}})
	var buf bytes.Buffer
	if err := WriteHeader(&buf, env); err != nil {
		t.Fatal(err)
	}
	for _, s := range stored {
		buf.Write(s)
	}
	return buf.Bytes(), m
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// readAll reads every payload, returning the decoded contents or the first error.
func readAll(b []byte, keys []*PublicKey) (map[string][]byte, error) {
	r, err := NewReader(bytes.NewReader(b), keys)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for {
		p, pr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if out[p.Name], err = io.ReadAll(pr); err != nil {
			return nil, err
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, key := range []testKey{newECDSAKey(t), newEd25519Key(t)} {
		b, m := testBundle(t, key, nil)
		got, err := readAll(b, []*PublicKey{newEd25519Key(t).pub, key.pub})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Payloads {
			if digest(got[p.Name]) != p.SHA256 {
				t.Errorf("%s differs", p.Name)
			}
		}
		r, err := NewReader(bytes.NewReader(b), []*PublicKey{key.pub})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CheckStored(); !errors.Is(err, io.EOF) {
			t.Fatalf("CheckStored: %v", err)
		}
	}
}

func TestRefusals(t *testing.T) {
	key := newECDSAKey(t)
	good, m := testBundle(t, key, nil)
	headerLen := len(good) - int(m.Payloads[0].StoredSize+m.Payloads[1].StoredSize+m.Payloads[2].StoredSize)
	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 1
		return b
	}
	cases := []struct {
		name   string
		bundle []byte
		keys   []*PublicKey
		want   error
	}{
		{"other key", good, []*PublicKey{newECDSAKey(t).pub}, ErrSignature},
		{"flipped manifest", flip(len(Magic) + 40), []*PublicKey{key.pub}, nil},
		{"flipped root", flip(headerLen + 10), []*PublicKey{key.pub}, ErrDigest},
		{"flipped initrd", flip(len(good) - 1), []*PublicKey{key.pub}, ErrDigest},
		{"truncated in root", good[:headerLen+20], []*PublicKey{key.pub}, ErrTruncated},
		{"truncated at the end", good[:len(good)-1], []*PublicKey{key.pub}, ErrTruncated},
		{"truncated header", good[:10], []*PublicKey{key.pub}, ErrTruncated},
		{"trailing bytes", append(bytes.Clone(good), 0), []*PublicKey{key.pub}, ErrTrailing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readAll(c.bundle, c.keys)
			if err == nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("read: %v, want %v", err, c.want)
			}
			r, err := NewReader(bytes.NewReader(c.bundle), c.keys)
			if err == nil {
				err = r.CheckStored()
			}
			if err == nil || errors.Is(err, io.EOF) || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("check: %v, want %v", err, c.want)
			}
		})
	}
}

func TestManifestChecks(t *testing.T) {
	key := newEd25519Key(t)
	for name, edit := range map[string]func(*Manifest){
		"no expiry":          func(m *Manifest) { m.Expires = time.Time{} },
		"verity differs":     func(m *Manifest) { m.Options = "console=ttyS0" },
		"root= set":          func(m *Manifest) { m.Options += " root=/dev/sda" },
		"payloads reordered": func(m *Manifest) { m.Payloads[0], m.Payloads[1] = m.Payloads[1], m.Payloads[0] },
		"huge kernel":        func(m *Manifest) { m.Payloads[1].Size, m.Payloads[1].StoredSize = MaxKernel+1, MaxKernel+1 },
		"bad version":        func(m *Manifest) { m.Version = "1+2" },
		"format 2":           func(m *Manifest) { m.Format = 2 },
		"no tries":           func(m *Manifest) { m.Tries = 0 },
	} {
		b, _ := testBundle(t, key, edit)
		if _, err := NewReader(bytes.NewReader(b), []*PublicKey{key.pub}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEnvelopeLimit(t *testing.T) {
	b := append(bytes.Clone(Magic), 0x7f, 0xff, 0xff, 0xff)
	if _, err := NewReader(bytes.NewReader(b), nil); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("huge envelope: %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{"1.0~rc1", "1.0", "1.0a", "1.0.1", "1.2", "1.10", "2", "10"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareVersions(ordered[i], ordered[j]); got != want {
				t.Errorf("CompareVersions(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	if CompareVersions("1.01", "1.1") != 0 {
		t.Error("leading zeros count")
	}
}

func TestReadKeys(t *testing.T) {
	root := t.TempDir()
	a, b := newECDSAKey(t), newEd25519Key(t)
	p := root + "/" + KeysPath
	if err := os.MkdirAll(p[:strings.LastIndex(p, "/")], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(a.pub.PEM(), b.pub.PEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadKeys(root)
	if err != nil || len(keys) != 2 || keys[0].ID() != a.pub.ID() || keys[1].ID() != b.pub.ID() {
		t.Fatalf("ReadKeys: %v %v", keys, err)
	}
	if err := os.WriteFile(p, append(a.pub.PEM(), "junk"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeys(root); err == nil {
		t.Fatal("junk after a key accepted")
	}
}

// TestErrorsStick: after a payload fails, the reader never hands out
// another payload from a stream whose position is unknown.
func TestErrorsStick(t *testing.T) {
	key := newEd25519Key(t)
	good, m := testBundle(t, key, nil)
	b := bytes.Clone(good)
	b[len(b)-int(m.Payloads[1].StoredSize+m.Payloads[2].StoredSize)-5] ^= 1 // in the root
	r, err := NewReader(bytes.NewReader(b), []*PublicKey{key.pub})
	if err != nil {
		t.Fatal(err)
	}
	_, pr, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(pr); !errors.Is(err, ErrDigest) {
		t.Fatalf("root: %v", err)
	}
	for range 2 {
		if _, _, err := r.Next(); !errors.Is(err, ErrDigest) {
			t.Fatalf("Next after a failure: %v", err)
		}
	}
	if err := r.CheckStored(); !errors.Is(err, ErrDigest) {
		t.Fatalf("CheckStored after a failure: %v", err)
	}
}
