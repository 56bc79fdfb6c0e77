package tpmseal

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/bulkhead-dev/bulkhead/builder/uki"
)

// keys are the spec's PCR signing key and another one.
var keys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

var secret = []byte("0123456789abcdef0123456789abcdef-the-LUKS2-key-of-var")

// sigFor is the .pcrsig a UKI signed by key carries when it leaves PCR 11
// at pcr (made by the builder's code, as bulkhead build makes it).
func sigFor(t testing.TB, pcr []byte, key *rsa.PrivateKey) []byte {
	t.Helper()
	sig, err := uki.PCRSig(pcr, key)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// boot extends PCR 11 as systemd-stub does for a UKI: a measurement
// that stands for one OS version.
func boot(t testing.TB, tpm transport.TPM, os string) []byte {
	t.Helper()
	d := sha256.Sum256([]byte(os))
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(11), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d[:]}}},
	}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	return pcr11Now(t, tpm)
}

func pcr11Now(t testing.TB, tpm transport.TPM) []byte {
	t.Helper()
	pcr, err := ReadPCR11(tpm)
	if err != nil {
		t.Fatal(err)
	}
	return pcr
}

func seal(t testing.TB, tpm transport.TPM, key *rsa.PrivateKey) *Sealed {
	t.Helper()
	s, err := Seal(tpm, uki.PCRPKey(&key.PublicKey), secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustUnseal(t *testing.T, tpm transport.TPM, s *Sealed, key *rsa.PrivateKey, sig []byte) {
	t.Helper()
	got, err := Unseal(tpm, s, uki.PCRPKey(&key.PublicKey), sig)
	if err != nil {
		t.Fatalf("unseal: %v", err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("unsealed %q, sealed %q", got, secret)
	}
}

// refused checks that err is an error whose text has want.
// refusedByTPM is refused, where the TPM itself said no with rc.
func refusedByTPM(t *testing.T, err error, want string, rc tpm2.TPMRC) {
	t.Helper()
	refused(t, err, want)
	if !errors.Is(err, rc) {
		t.Fatalf("%v: want %v", err, rc)
	}
}

func refused(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error with %q", want)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q; want one with %q", err, want)
	}
}

// TestSealUnseal: sealed under the key, the secret unseals with the
// .pcrsig of the PCR 11 the TPM holds, after a trip through JSON.
func TestSealUnseal(t *testing.T) {
	key, _ := keys()
	tpm := newSWTPM(t).tpm()
	pcr := boot(t, tpm, "bulkhead 1.0")
	s := seal(t, tpm, key)
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSealed(js)
	if err != nil {
		t.Fatal(err)
	}
	mustUnseal(t, tpm, back, key, sigFor(t, pcr, key))
	// Again: every handle was flushed (the TPM holds only 3 objects).
	for i := 0; i < 4; i++ {
		mustUnseal(t, tpm, back, key, sigFor(t, pcr, key))
	}
	assertNoHandles(t, tpm)
}

// TestSealedObject: the object only the policy opens, bound to this TPM.
func TestSealedObject(t *testing.T) {
	key, _ := keys()
	tpm := newSWTPM(t).tpm()
	s := seal(t, tpm, key)
	b, err := tpm2.Unmarshal[tpm2.TPM2BPublic](s.Public)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := b.Contents()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := PolicyDigest(uki.PCRPKey(&key.PublicKey))
	a := pub.ObjectAttributes
	if pub.Type != tpm2.TPMAlgKeyedHash || !bytes.Equal(pub.AuthPolicy.Buffer, want) ||
		a.UserWithAuth || !a.FixedTPM || !a.FixedParent || a.SensitiveDataOrigin {
		t.Fatalf("sealed object %+v, policy %x; want a keyedhash data object, policy %x only", a, pub.AuthPolicy.Buffer, want)
	}
	fp := sha256.Sum256(x509.MarshalPKCS1PublicKey(&key.PublicKey))
	if s.PKFP != hex.EncodeToString(fp[:]) || s.Bank != "sha256" || len(s.PCRs) != 1 || s.PCRs[0] != 11 {
		t.Fatalf("sealed %+v", s)
	}
}

// TestPolicyDigestsMatchTheTPM: the digests computed here are the ones
// the TPM computes in a trial session, and PCRPolicy is the builder's
// PolicyPCR11 (what .pcrsig signs).
func TestPolicyDigestsMatchTheTPM(t *testing.T) {
	key, _ := keys()
	tpm := newSWTPM(t).tpm()
	pcr := boot(t, tpm, "bulkhead 1.0")
	if got, want := PCRPolicy(pcr), uki.PolicyPCR11(pcr); !bytes.Equal(got, want) {
		t.Fatalf("PCRPolicy %x, builder's PolicyPCR11 %x", got, want)
	}
	trial := func(run func(h tpm2.TPMHandle)) []byte {
		sess, done, err := tpm2.PolicySession(tpm, tpm2.TPMAlgSHA256, 16, tpm2.Trial())
		if err != nil {
			t.Fatal(err)
		}
		defer done()
		run(sess.Handle())
		d, err := tpm2.PolicyGetDigest{PolicySession: sess.Handle()}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		return d.PolicyDigest.Buffer
	}
	got := trial(func(h tpm2.TPMHandle) {
		if _, err := (tpm2.PolicyPCR{PolicySession: h, Pcrs: pcr11}).Execute(tpm); err != nil {
			t.Fatal(err)
		}
	})
	if want := PCRPolicy(pcr); !bytes.Equal(got, want) {
		t.Fatalf("the TPM's PolicyPCR digest %x, PCRPolicy %x", got, want)
	}
	ext, err := tpm2.LoadExternal{InPublic: tpm2.New2B(keyPublic(&key.PublicKey)), Hierarchy: tpm2.TPMRHOwner}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	defer flush(tpm, ext.ObjectHandle)
	pubPEM := uki.PCRPKey(&key.PublicKey)
	if name, _ := KeyName(pubPEM); !bytes.Equal(name, ext.Name.Buffer) {
		t.Fatalf("KeyName %x, the TPM's name %x", name, ext.Name.Buffer)
	}
	got = trial(func(h tpm2.TPMHandle) {
		_, err := tpm2.PolicyAuthorize{PolicySession: h, KeySign: ext.Name,
			CheckTicket: tpm2.TPMTTKVerified{Tag: tpm2.TPMSTVerified, Hierarchy: tpm2.TPMRHOwner}}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
	})
	if want, _ := PolicyDigest(pubPEM); !bytes.Equal(got, want) {
		t.Fatalf("the TPM's PolicyAuthorize digest %x, PolicyDigest %x", got, want)
	}
}

// TestUpdateUnsealsWithoutResealing: another OS (PCR 11 changes) signed
// by the same key unseals with its own .pcrsig; the old one no longer
// does.
func TestUpdateUnsealsWithoutResealing(t *testing.T) {
	key, _ := keys()
	sw := newSWTPM(t)
	tpm := sw.tpm()
	old := boot(t, tpm, "bulkhead 1.0")
	s := seal(t, tpm, key)
	mustUnseal(t, tpm, s, key, sigFor(t, old, key))
	sw.restart(t)
	tpm = sw.tpm()
	pcr := boot(t, tpm, "bulkhead 1.1")
	_, err := Unseal(tpm, s, uki.PCRPKey(&key.PublicKey), sigFor(t, old, key))
	refused(t, err, "not a value the UKI's .pcrsig covers")
	mustUnseal(t, tpm, s, key, sigFor(t, pcr, key))
	// A .pcrsig that signs several policies (one per boot phase, as
	// later systemd writes them): the one for this PCR 11 is picked.
	mustUnseal(t, tpm, s, key, mergeSigs(t, sigFor(t, old, key), sigFor(t, pcr, key)))
}

// mergeSigs joins the sha256 entries of .pcrsig files.
func mergeSigs(t *testing.T, sigs ...[]byte) []byte {
	var all []sigEntry
	for _, sig := range sigs {
		var e struct{ SHA256 []sigEntry }
		if err := json.Unmarshal(sig, &e); err != nil {
			t.Fatal(err)
		}
		all = append(all, e.SHA256...)
	}
	js, _ := json.Marshal(map[string][]sigEntry{"sha256": all})
	return js
}

// TestOtherKeyRefused: a .pcrsig by another key, or a UKI that carries
// another key, does not open /var; nor does the TPM if asked anyway.
func TestOtherKeyRefused(t *testing.T) {
	key, other := keys()
	tpm := newSWTPM(t).tpm()
	pcr := boot(t, tpm, "bulkhead 1.0")
	s := seal(t, tpm, key)
	_, err := Unseal(tpm, s, uki.PCRPKey(&key.PublicKey), sigFor(t, pcr, other))
	refused(t, err, "the .pcrsig is not signed by the key /var is sealed to")
	_, err = Unseal(tpm, s, uki.PCRPKey(&other.PublicKey), sigFor(t, pcr, other))
	refused(t, err, "is not the key /var is sealed to")

	// The TPM itself: other's policy signature verifies, PolicyAuthorize
	// names other, and the sealed object wants key.
	var e struct{ SHA256 []sigEntry }
	json.Unmarshal(sigFor(t, pcr, other), &e)
	_, err = unseal(tpm, s, &other.PublicKey, PCRPolicy(pcr), e.SHA256[0].Sig)
	refusedByTPM(t, err, "the TPM refused to unseal", tpm2.TPMRCPolicyFail)
	// A signature that is not the key's: the TPM refuses it.
	json.Unmarshal(sigFor(t, pcr, key), &e)
	bad := e.SHA256[0]
	bad.Sig[7] ^= 1
	js, _ := json.Marshal(map[string][]sigEntry{"sha256": {bad}})
	_, err = Unseal(tpm, s, uki.PCRPKey(&key.PublicKey), js)
	refusedByTPM(t, err, "the TPM refused the .pcrsig", tpm2.TPMRCSignature)
	assertNoHandles(t, tpm)
}

// TestOtherPCRValueRefused: a .pcrsig by the key for another PCR 11 is
// refused, by this package and by the TPM.
func TestOtherPCRValueRefused(t *testing.T) {
	key, _ := keys()
	tpm := newSWTPM(t).tpm()
	boot(t, tpm, "evil 6.6")
	s := seal(t, tpm, key)
	good := sha256.Sum256([]byte("bulkhead 1.0 was booted, not this"))
	_, err := Unseal(tpm, s, uki.PCRPKey(&key.PublicKey), sigFor(t, good[:], key))
	refused(t, err, "not a value the UKI's .pcrsig covers")

	var e struct{ SHA256 []sigEntry }
	json.Unmarshal(sigFor(t, good[:], key), &e)
	_, err = unseal(tpm, s, &key.PublicKey, PCRPolicy(good[:]), e.SHA256[0].Sig)
	refusedByTPM(t, err, "the TPM refused the PCR policy: PCR 11 is not the value the UKI's signature covers", tpm2.TPMRCValue)
	assertNoHandles(t, tpm)
}

// TestLock: once locked, PCR 11 moves by the documented marker and the
// secret no longer unseals in this boot, not even by the TPM alone.
func TestLock(t *testing.T) {
	key, _ := keys()
	tpm := newSWTPM(t).tpm()
	pcr := boot(t, tpm, "bulkhead 1.0")
	s := seal(t, tpm, key)
	sig := sigFor(t, pcr, key)
	mustUnseal(t, tpm, s, key, sig)
	if err := Lock(tpm); err != nil {
		t.Fatal(err)
	}
	if got, want := pcr11Now(t, tpm), AfterLock(pcr); !bytes.Equal(got, want) {
		t.Fatalf("PCR 11 after Lock %x, AfterLock says %x", got, want)
	}
	_, err := Unseal(tpm, s, uki.PCRPKey(&key.PublicKey), sig)
	refused(t, err, "or /var was opened already in this boot")
	var e struct{ SHA256 []sigEntry }
	json.Unmarshal(sig, &e)
	_, err = unseal(tpm, s, &key.PublicKey, PCRPolicy(pcr), e.SHA256[0].Sig)
	refused(t, err, "the TPM refused the PCR policy")
}

// TestPowerCycle: after a power cycle (swtpm restarted on its state:
// PCRs reset, seeds kept) the SRK is derived again and the same boot
// unseals with the same signature.
func TestPowerCycle(t *testing.T) {
	key, _ := keys()
	sw := newSWTPM(t)
	tpm := sw.tpm()
	pcr := boot(t, tpm, "bulkhead 1.0")
	s := seal(t, tpm, key)
	if err := Lock(tpm); err != nil {
		t.Fatal(err)
	}
	sw.restart(t)
	tpm = sw.tpm()
	if got := pcr11Now(t, tpm); !bytes.Equal(got, make([]byte, 32)) {
		t.Fatalf("PCR 11 after power-on %x, want zeros", got)
	}
	if again := boot(t, tpm, "bulkhead 1.0"); !bytes.Equal(again, pcr) {
		t.Fatalf("PCR 11 %x, first boot %x", again, pcr)
	}
	mustUnseal(t, tpm, s, key, sigFor(t, pcr, key))
}

// TestTamperedSealedRefused: a changed blob, or one from another TPM,
// does not load.
func TestTamperedSealedRefused(t *testing.T) {
	key, _ := keys()
	tpm := newSWTPM(t).tpm()
	pcr := boot(t, tpm, "bulkhead 1.0")
	s := seal(t, tpm, key)
	sig := sigFor(t, pcr, key)
	pubPEM := uki.PCRPKey(&key.PublicKey)
	for name, change := range map[string]func(s *Sealed){
		"private": func(s *Sealed) { s.Private[len(s.Private)/2] ^= 1 },
		"policy":  func(s *Sealed) { s.Public[20] ^= 1 }, // in authPolicy (bytes 12 to 43)
		"unique":  func(s *Sealed) { s.Public[len(s.Public)-5] ^= 1 },
		// userWithAuth set: an empty password would do.
		"userWithAuth": func(s *Sealed) { s.Public[9] |= 0x40 },
	} {
		c := *s
		c.Public, c.Private = bytes.Clone(s.Public), bytes.Clone(s.Private)
		change(&c)
		_, err := Unseal(tpm, &c, pubPEM, sig)
		if err == nil || !strings.Contains(err.Error(), "refused to load the sealed key") {
			t.Errorf("%s changed: %v; want the TPM to refuse to load it", name, err)
		}
	}
	// Sealed by another TPM.
	other := newSWTPM(t).tpm()
	boot(t, other, "bulkhead 1.0")
	_, err := Unseal(other, s, pubPEM, sig)
	refused(t, err, "the TPM refused to load the sealed key")
	mustUnseal(t, tpm, s, key, sig)
}

// TestSecretNeverInClear: the secret crosses the bus encrypted, both
// ways (sessions salted with the SRK).
func TestSecretNeverInClear(t *testing.T) {
	key, _ := keys()
	tap := &tapTPM{TPM: newSWTPM(t).tpm()}
	pcr := boot(t, tap, "bulkhead 1.0")
	s := seal(t, tap, key)
	mustUnseal(t, tap, s, key, sigFor(t, pcr, key))
	if n := bytes.Count(tap.seen.Bytes(), secret[:16]); n != 0 {
		t.Fatalf("the secret went over the bus in clear %d times", n)
	}
	if tap.seen.Len() < 1000 {
		t.Fatalf("the tap saw %d bytes only", tap.seen.Len())
	}
}

// tapTPM records every command and response.
type tapTPM struct {
	transport.TPM
	seen bytes.Buffer
}

func (t *tapTPM) Send(cmd []byte) ([]byte, error) {
	t.seen.Write(cmd)
	rsp, err := t.TPM.Send(cmd)
	t.seen.Write(rsp)
	return rsp, err
}

// assertNoHandles: no transient object or session is left in the TPM.
func assertNoHandles(t *testing.T, tpm transport.TPM) {
	t.Helper()
	for _, first := range []tpm2.TPMHandle{0x80000000, 0x02000000, 0x03000000} { // transient, HMAC/loaded and policy sessions
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(first), PropertyCount: 64}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := rsp.CapabilityData.Data.Handles()
		if h != nil && len(h.Handle) > 0 {
			t.Fatalf("handles left in the TPM: %v", h.Handle)
		}
	}
}

// TestBadInputRefused: outside input out of bounds is refused before the
// TPM is asked.
func TestBadInputRefused(t *testing.T) {
	key, _ := keys()
	tpm := newSWTPM(t).tpm()
	pcr := boot(t, tpm, "bulkhead 1.0")
	s := seal(t, tpm, key)
	pubPEM := uki.PCRPKey(&key.PublicKey)
	js, _ := json.Marshal(s)

	_, err := ParseSealed(append(js, bytes.Repeat([]byte(" "), MaxSealedJSON)...))
	refused(t, err, "at most 4096")
	big := *s
	big.Private = make([]byte, 2000)
	js, _ = json.Marshal(big)
	_, err = ParseSealed(js)
	refused(t, err, "must each be 1 to 1024 bytes")
	_, err = ParseSealed([]byte(`{"public":"AA==","private":"AA==","pkfp":"` + strings.Repeat("0", 64) + `","bank":"sha1","pcrs":[11]}`))
	refused(t, err, "only sha256 PCR 11")
	_, err = ParseSealed([]byte(`{"publicc":"AA=="}`))
	refused(t, err, "unknown field")

	sig := sigFor(t, pcr, key)
	var e struct{ SHA256 []sigEntry }
	json.Unmarshal(sig, &e)
	many := make([]sigEntry, 2000)
	for i := range many {
		many[i] = e.SHA256[0]
	}
	huge, _ := json.Marshal(map[string][]sigEntry{"sha256": many})
	_, err = Unseal(tpm, s, pubPEM, huge)
	refused(t, err, "at most 65536")
	few, _ := json.Marshal(map[string][]sigEntry{"sha256": many[:maxSigEntries+1]})
	_, err = Unseal(tpm, s, pubPEM, few)
	refused(t, err, "at most 64")
	_, err = Unseal(tpm, s, pubPEM, []byte("{"))
	refused(t, err, "not systemd's PCR signature JSON")

	_, err = Seal(tpm, pubPEM, make([]byte, MaxSecret+1))
	refused(t, err, "it must be 1 to 64")
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	_, err = Seal(tpm, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), secret)
	refused(t, err, "not RSA")
	_, err = Seal(tpm, []byte("not PEM"), secret)
	refused(t, err, "not a PEM PUBLIC KEY")
	_, err = Unseal(tpm, s, bytes.Repeat(pubPEM, MaxKeyPEM/len(pubPEM)+1), sig)
	refused(t, err, "at most 16384")
	mustUnseal(t, tpm, s, key, sig)
}

// TestOpen: no device is ErrNoTPM; a path that is not a device is another
// error.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	_, err := open([]string{filepath.Join(dir, "tpmrm0"), filepath.Join(dir, "tpm0")})
	if !errors.Is(err, ErrNoTPM) {
		t.Fatalf("no device: %v; want ErrNoTPM", err)
	}
	f := filepath.Join(dir, "tpm0")
	os.WriteFile(f, nil, 0o600)
	_, err = open([]string{filepath.Join(dir, "tpmrm0"), f})
	if err == nil || errors.Is(err, ErrNoTPM) {
		t.Fatalf("a regular file: %v; want an error that is not ErrNoTPM", err)
	}
}

func BenchmarkSeal(b *testing.B) {
	key, _ := keys()
	tpm := newSWTPM(b).tpm()
	pubPEM := uki.PCRPKey(&key.PublicKey)
	for b.Loop() {
		if _, err := Seal(tpm, pubPEM, secret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnseal(b *testing.B) {
	key, _ := keys()
	tpm := newSWTPM(b).tpm()
	pcr := boot(b, tpm, "bulkhead 1.0")
	s := seal(b, tpm, key)
	pubPEM, sig := uki.PCRPKey(&key.PublicKey), sigFor(b, pcr, key)
	for b.Loop() {
		if _, err := Unseal(tpm, s, pubPEM, sig); err != nil {
			b.Fatal(err)
		}
	}
}
