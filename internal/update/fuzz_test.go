package update

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader: no input makes the reader panic, or yields payloads other
// than the signed ones (the envelope's JSON may vary; what it signs may
// not).
func FuzzReader(f *testing.F) {
	key := newEd25519Key(&testing.T{})
	good, m := testBundle(&testing.T{}, key, nil)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(append(bytes.Clone(Magic), 0, 0, 0, 2, '{', '}'))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readAll(b, []*PublicKey{key.pub})
		if err != nil {
			return
		}
		for _, p := range m.Payloads {
			if digest(got[p.Name]) != p.SHA256 {
				t.Fatalf("%s: accepted content other than the signed one", p.Name)
			}
		}
		r, err := NewReader(bytes.NewReader(b), []*PublicKey{key.pub})
		if err == nil {
			if err := r.CheckStored(); !errors.Is(err, io.EOF) {
				t.Fatalf("CheckStored of an accepted bundle: %v", err)
			}
		}
	})
}
