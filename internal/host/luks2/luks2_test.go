package luks2

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/bulkhead-dev/bulkhead/internal/test/testfile"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// tpmToken is a token like the one the host stores: its own members
// besides type and keyslots.
type tpmToken struct {
	Type     string   `json:"type"`
	Keyslots []string `json:"keyslots"`
	Blob     []byte   `json:"tpm2-blob"`
	PCRs     []int    `json:"tpm2-pcrs"`
}

func seeded(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// image makes a sparse file of size bytes and returns its path.
func image(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "luks.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func cryptsetup(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("cryptsetup", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cryptsetup %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dumpVolumeKey is the volume key cryptsetup finds with the passphrase
// in keyFile.
func dumpVolumeKey(t *testing.T, img, keyFile string) []byte {
	t.Helper()
	vk := filepath.Join(t.TempDir(), "vk")
	cryptsetup(t, "luksDump", "--dump-volume-key", "--volume-key-file", vk, "--key-file", keyFile, "--batch-mode", img)
	b, err := os.ReadFile(vk)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// format formats a new image file with Format and returns its path,
// header, volume key and the file holding the passphrase.
func format(t *testing.T, size int64, o FormatOptions) (string, *Header, []byte, string) {
	t.Helper()
	img := image(t, size)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, key, err := Format(f, size, o)
	if err != nil {
		t.Fatal(err)
	}
	return img, h, key, writeFile(t, "passphrase", o.Passphrase)
}

func openHeader(t *testing.T, img string) (*Header, *os.File) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	return h, f
}

func passphrase(seed byte) []byte {
	p := make([]byte, 32)
	seeded(seed).Read(p)
	return p
}

// TestFormatCryptsetupAccepts: cryptsetup reads what Format writes — the
// keyslot, token and segment — opens the keyslot with the passphrase and
// no other, and finds the volume key Format returned.
func TestFormatCryptsetupAccepts(t *testing.T) {
	tok, err := NewToken(tpmToken{Type: "bulkhead-tpm2", Keyslots: []string{"0"}, Blob: []byte("sealed"), PCRs: []int{11}})
	if err != nil {
		t.Fatal(err)
	}
	img, h, key, keyFile := format(t, 64<<20, FormatOptions{Passphrase: passphrase(1), Tokens: []Token{tok}, Label: "bulkhead-data"})

	cryptsetup(t, "isLuks", "--type", "luks2", img)
	dump := cryptsetup(t, "luksDump", img)
	for _, re := range []string{
		`Version:\s+2`, `UUID:\s+` + h.UUID, `Label:\s+bulkhead-data`,
		`(?s)Data segments:\s+0: crypt\s+offset: 16777216 \[bytes\]\s+length: \(whole device\)\s+cipher: aes-xts-plain64\s+sector: 4096 \[bytes\]`,
		`(?s)Keyslots:\s+0: luks2\s+Key:\s+512 bits.*PBKDF:\s+pbkdf2\s+Hash:\s+sha256\s+Iterations: 1000.*AF stripes: 4000`,
		`(?s)Tokens:\s+0: bulkhead-tpm2\s+Keyslot:\s+0`,
		`(?s)Digests:\s+0: pbkdf2`,
	} {
		if !regexp.MustCompile(re).MatchString(dump) {
			t.Errorf("luksDump does not match %s:\n%s", re, dump)
		}
	}
	var meta struct {
		Tokens map[string]tpmToken `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(cryptsetup(t, "luksDump", "--dump-json-metadata", img)), &meta); err != nil {
		t.Fatal(err)
	}
	if got := meta.Tokens["0"]; string(got.Blob) != "sealed" || !reflect.DeepEqual(got.PCRs, []int{11}) {
		t.Errorf("cryptsetup's token 0 is %+v", got)
	}

	cryptsetup(t, "open", "--test-passphrase", "--key-file", keyFile, img)
	wrong := writeFile(t, "wrong", passphrase(2))
	if out, err := exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", wrong, img).CombinedOutput(); err == nil {
		t.Errorf("cryptsetup accepts another passphrase:\n%s", out)
	}
	if got := dumpVolumeKey(t, img, keyFile); !bytes.Equal(got, key) {
		t.Errorf("cryptsetup's volume key %x, Format's %x", got, key)
	}

	h2, f := openHeader(t, img)
	got, err := h2.Unlock(f, passphrase(1))
	if err != nil || !bytes.Equal(got, key) {
		t.Errorf("Unlock = %x, %v; want %x", got, err, key)
	}
	if len(h2.Tokens) != 1 || h2.Tokens[0].Type != "bulkhead-tpm2" || h2.Offset != 0 || h2.SeqID != 1 {
		t.Errorf("read back tokens %+v offset %d seqid %d", h2.Tokens, h2.Offset, h2.SeqID)
	}
}

// TestReadsCryptsetupVolume: ReadHeader and Unlock open what cryptsetup
// luksFormat writes, with each keyslot KDF, and read back a token that
// cryptsetup token import added.
func TestReadsCryptsetupVolume(t *testing.T) {
	for _, kdf := range [][]string{
		{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"},
		{"--pbkdf", "argon2id", "--pbkdf-memory", "1024", "--pbkdf-force-iterations", "4"},
		{"--pbkdf", "argon2i", "--pbkdf-memory", "256", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1"},
	} {
		t.Run(kdf[1], func(t *testing.T) {
			img := image(t, 32<<20)
			keyFile := writeFile(t, "passphrase", passphrase(3))
			cryptsetup(t, append([]string{"luksFormat", "--type", "luks2", "--batch-mode", "--key-file", keyFile, "--sector-size", "4096"}, append(kdf, img)...)...)
			tokFile := writeFile(t, "token.json", []byte(`{"type":"bulkhead-tpm2","keyslots":["0"],"tpm2-blob":"c2VhbGVk","tpm2-pcrs":[7,11]}`))
			cryptsetup(t, "token", "import", "--json-file", tokFile, img)
			want := dumpVolumeKey(t, img, keyFile)

			h, f := openHeader(t, img)
			if h.KeySize != 64 || h.Segment != (Segment{Offset: 16 << 20, Dynamic: true, Encryption: "aes-xts-plain64", SectorSize: 4096}) {
				t.Errorf("key size %d, segment %+v", h.KeySize, h.Segment)
			}
			if got := h.meta.Keyslots["0"].KDF.Type; got != kdf[1] {
				t.Errorf("keyslot kdf %s, want %s", got, kdf[1])
			}
			key, err := h.Unlock(f, passphrase(3))
			if err != nil || !bytes.Equal(key, want) {
				t.Errorf("Unlock = %x, %v; cryptsetup says %x", key, err, want)
			}
			if _, err := h.Unlock(f, passphrase(4)); !errors.Is(err, ErrPassphrase) {
				t.Errorf("Unlock with another passphrase: %v", err)
			}
			var tok tpmToken
			if len(h.Tokens) != 1 || h.Tokens[0].Decode(&tok) != nil || string(tok.Blob) != "sealed" || !reflect.DeepEqual(tok.Keyslots, []string{"0"}) {
				t.Errorf("tokens %+v", h.Tokens)
			}
		})
	}
}

// TestDamagedHeader: a damaged primary header (its JSON, or its magic)
// leaves the secondary, which cryptsetup also falls back to; both
// damaged is an error.
func TestDamagedHeader(t *testing.T) {
	for _, off := range []int64{5000, offChecksum, offMagic} {
		img, _, key, keyFile := format(t, 32<<20, FormatOptions{Passphrase: passphrase(5), Rand: seeded(5)})
		testfile.FlipByte(t, img, off)
		h, f := openHeader(t, img)
		if h.Offset != DefaultHeaderSize {
			t.Errorf("byte %d flipped: read the copy at %d, want the secondary", off, h.Offset)
		}
		if got, err := h.Unlock(f, passphrase(5)); err != nil || !bytes.Equal(got, key) {
			t.Errorf("byte %d flipped: Unlock = %x, %v", off, got, err)
		}
		if ok, err := IsLUKS(f); !ok || err != nil {
			t.Errorf("byte %d flipped: IsLUKS = %v, %v", off, ok, err)
		}
		if off == 5000 {
			// cryptsetup opens it too, and repairs the primary from
			// the secondary as it does.
			cryptsetup(t, "open", "--test-passphrase", "--key-file", keyFile, img)
			if h, err := ReadHeader(f); err != nil || h.Offset != 0 {
				t.Fatalf("after cryptsetup's repair: %+v, %v", h, err)
			}
			testfile.FlipByte(t, img, off)
		}
		testfile.FlipByte(t, img, DefaultHeaderSize+5000)
		if _, err := ReadHeader(f); err == nil || !strings.Contains(err.Error(), "no valid LUKS2 header") {
			t.Errorf("both copies damaged (byte %d): %v", off, err)
		}
	}
}

// rewrite replaces the metadata of the header copies with edit's version,
// with right checksums and the seqids given (0 leaves that copy alone),
// as a writer of hostile headers would.
func rewrite(t *testing.T, img string, seqIDs [2]uint64, edit func(m map[string]any)) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := readCopy(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(c.json, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []uint64{0, c.bin.size} {
		if seqIDs[i] == 0 {
			continue
		}
		b := c.bin
		b.secondary, b.offset, b.seqID = i == 1, off, seqIDs[i]
		buf, err := b.encode(js)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
}

func get(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

// TestHigherSeqIDWins: of two valid copies the newer is read.
func TestHigherSeqIDWins(t *testing.T) {
	img, _, _, _ := format(t, 32<<20, FormatOptions{Passphrase: passphrase(6)})
	for _, ids := range [][2]uint64{{3, 2}, {2, 3}} {
		rewrite(t, img, ids, func(map[string]any) {})
		h, _ := openHeader(t, img)
		if want := max(ids[0], ids[1]); h.SeqID != want || (h.Offset == 0) != (ids[0] > ids[1]) {
			t.Errorf("seqids %v: read seqid %d at %d", ids, h.SeqID, h.Offset)
		}
	}
}

// TestBadNewerMetadata: a newer copy whose metadata does not check out
// is passed over for the older one.
func TestBadNewerMetadata(t *testing.T) {
	img, _, _, _ := format(t, 32<<20, FormatOptions{Passphrase: passphrase(6)})
	rewrite(t, img, [2]uint64{0, 2}, func(m map[string]any) { get(m, "config")["keyslots_size"] = "1" })
	h, _ := openHeader(t, img)
	if h.SeqID != 1 || h.Offset != 0 {
		t.Errorf("read seqid %d at %d, want the primary's 1", h.SeqID, h.Offset)
	}
}

// TestHostileMetadata: metadata with valid checksums that asks for too
// much, or points outside its areas, is refused before anything is
// allocated for it.
func TestHostileMetadata(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"huge keyslots area", func(m map[string]any) { get(m, "config")["keyslots_size"] = "1099511627776" }, "keyslots_size"},
		{"huge keyslot area", func(m map[string]any) { get(m, "keyslots", "0", "area")["size"] = "1099511627776" }, "outside the keyslots area"},
		{"area past the end", func(m map[string]any) { get(m, "keyslots", "0", "area")["offset"] = "18446744073709547520" }, "outside the keyslots area"},
		{"too many stripes", func(m map[string]any) { get(m, "keyslots", "0", "af")["stripes"] = 1 << 30 }, "stripes"},
		{"huge key", func(m map[string]any) { get(m, "keyslots", "0")["key_size"] = 1 << 30 }, "key sizes"},
		{"argon2 memory", func(m map[string]any) {
			get(m, "keyslots", "0")["kdf"] = map[string]any{"type": "argon2id", "time": 4, "memory": 8 << 20, "cpus": 4, "salt": "c2FsdA=="}
		}, "memory"},
		{"json size", func(m map[string]any) { get(m, "config")["json_size"] = "4190208" }, "json_size"},
		{"many tokens", func(m map[string]any) {
			toks := get(m, "tokens")
			for i := range 40 {
				toks[strconv.Itoa(i)] = map[string]any{"type": "x", "keyslots": []string{}}
			}
		}, "tokens"},
		{"segment in header", func(m map[string]any) { get(m, "segments", "0")["offset"] = "4096" }, "inside the header"},
		{"table injection", func(m map[string]any) { get(m, "segments", "0")["encryption"] = "aes-xts-plain64 0 /dev/sda" }, "encryption"},
		{"reencryption", func(m map[string]any) {
			get(m, "config")["requirements"] = map[string]any{"mandatory": []string{"online-reencrypt-v2"}}
		}, "requirements"},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, _, _, _ := format(t, 32<<20, FormatOptions{Passphrase: passphrase(7)})
			rewrite(t, img, [2]uint64{1, 1}, c.edit)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = ReadHeader(f)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ReadHeader: %v, want an error about %s", err, c.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("ReadHeader allocated %d bytes", n)
			}
		})
	}
}

// TestBadBinaryHeader: a header size LUKS2 does not allow, in both
// copies with right checksums, is refused.
func TestBadBinaryHeader(t *testing.T) {
	img, _, _, _ := format(t, 32<<20, FormatOptions{Passphrase: passphrase(8)})
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, DefaultHeaderSize} {
		b := make([]byte, 8)
		b[3] = 0x80 // 8 GiB... of header
		if _, err := f.WriteAt(b, off+offHdrSize); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ReadHeader(f); err == nil || !strings.Contains(err.Error(), "not one LUKS2 allows") {
		t.Errorf("ReadHeader: %v", err)
	}
	if ok, err := IsLUKS(f); !ok || err != nil {
		t.Errorf("IsLUKS on a damaged LUKS2 volume = %v, %v", ok, err)
	}
}

func TestIsLUKS(t *testing.T) {
	img := image(t, 32<<20)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := IsLUKS(f); ok || err != nil {
		t.Errorf("IsLUKS on zeros = %v, %v", ok, err)
	}
	if ok, err := IsLUKS(bytes.NewReader([]byte("LUK"))); ok || err != nil {
		t.Errorf("IsLUKS on 3 bytes = %v, %v", ok, err)
	}
	if _, err := ReadHeader(f); err == nil {
		t.Error("ReadHeader on zeros: no error")
	}
}

// mem is an in-memory device.
type mem []byte

func (m mem) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }
func (m mem) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	return copy(p, m[off:]), nil
}

// TestFormatReproducible: the same random stream gives the same bytes,
// all of the header region rewritten (the old bytes zeroed), the data
// left alone.
func TestFormatReproducible(t *testing.T) {
	size := int64(DataOffset + 1<<20)
	var sums [2]string
	for i := range sums {
		dev := mem(bytes.Repeat([]byte{0xaa}, int(size)))
		tok, err := NewToken(tpmToken{Type: "bulkhead-tpm2", Keyslots: []string{"0"}, Blob: []byte{1, 2, 3}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := Format(dev, size, FormatOptions{Passphrase: []byte("p"), Tokens: []Token{tok}, Rand: seeded(9)}); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(dev[:DataOffset], []byte{0xaa, 0xaa, 0xaa, 0xaa}) || !bytes.Equal(dev[DataOffset:], bytes.Repeat([]byte{0xaa}, 1<<20)) {
			t.Error("Format left old bytes in the header region or changed the data")
		}
		s := sha256.Sum256(dev)
		sums[i] = hex.EncodeToString(s[:])
	}
	if sums[0] != sums[1] {
		t.Errorf("two formats with one random stream differ: %s, %s", sums[0], sums[1])
	}
	if sums[0] != goldenFormatSum {
		t.Errorf("Format wrote %s, golden %s", sums[0], goldenFormatSum)
	}
}

// goldenFormatSum is the sha256 of the 17 MiB TestFormatReproducible
// formats.
const goldenFormatSum = "34f5c21f8ce608d15188c5284b6f57be26564c847c33b23de372817dad1e1599"

func TestFormatRefuses(t *testing.T) {
	for _, c := range []struct {
		size int64
		o    FormatOptions
		want string
	}{
		{64 << 20, FormatOptions{}, "no passphrase"},
		{DataOffset, FormatOptions{Passphrase: []byte("p")}, "smaller"},
		{64 << 20, FormatOptions{Passphrase: []byte("p"), Tokens: []Token{{JSON: json.RawMessage(`{"type":"x","keyslots":["1"]}`)}}}, `no keyslot "1"`},
		{64 << 20, FormatOptions{Passphrase: []byte("p"), Tokens: []Token{{JSON: json.RawMessage(`{"keyslots":["0"]}`)}}}, "no type"},
		{64 << 20, FormatOptions{Passphrase: []byte("p"), Tokens: []Token{{JSON: json.RawMessage(`{"type":"x","keyslots":["0"],"big":"` + strings.Repeat("x", 12<<10) + `"}`)}}}, "JSON area"},
	} {
		dev := mem(make([]byte, 32<<20))
		_, _, err := Format(dev, c.size, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Format(%d bytes, %+v): %v, want %q", c.size, c.o.Tokens, err, c.want)
		}
	}
}

func TestCryptTarget(t *testing.T) {
	dev := mem(make([]byte, DataOffset+SectorSize))
	h, key, err := Format(dev, int64(len(dev)), FormatOptions{Passphrase: []byte("p"), Rand: seeded(10)})
	if err != nil {
		t.Fatal(err)
	}
	sectors := uint64(64<<20)/512 + 3 // not a whole number of 4 KiB sectors
	tg, err := CryptTarget(h, key, "/dev/vdb", sectors)
	if err != nil {
		t.Fatal(err)
	}
	want := "aes-xts-plain64 " + hex.EncodeToString(key) + " 0 /dev/vdb 32768 1 sector_size:4096"
	if tg.Type != "crypt" || tg.Start != 0 || tg.Length != (64<<20-DataOffset)/512 || tg.Params != want {
		t.Errorf("CryptTarget = %+v, want length %d params %q", tg, (64<<20-DataOffset)/512, want)
	}
	for _, c := range []struct {
		key     []byte
		dev     string
		sectors uint64
		want    string
	}{
		{key, "/dev/vdb", DataOffset/512 + 7, "no data"},
		{key[:32], "/dev/vdb", sectors, "volume key"},
		{key, "/dev/vdb 0", sectors, "device name"},
	} {
		if _, err := CryptTarget(h, c.key, c.dev, c.sectors); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CryptTarget(%s, %d): %v, want %q", c.dev, c.sectors, err, c.want)
		}
	}
}
