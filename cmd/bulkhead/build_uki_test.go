package main

import (
	"errors"
	"testing"
)

// TestSecureBootFlags: the key and the certificate go together, and
// enrolling needs a key: usage errors before any spec is read. (The
// checks that need the spec are builder/build's TestSecureBootChecks.)
func TestSecureBootFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    secureBootFlags
		n    int // options wanted, when good
		bad  bool
	}{
		{"key without cert", secureBootFlags{key: "k"}, 0, true},
		{"cert without key", secureBootFlags{cert: "c"}, 0, true},
		{"enroll without key", secureBootFlags{enroll: "d"}, 0, true},
		{"none", secureBootFlags{}, 0, false},
		{"pcr key alone", secureBootFlags{pcrKey: "p"}, 1, false},
		{"all", secureBootFlags{key: "k", cert: "c", enroll: "d", pcrKey: "p"}, 3, false},
	} {
		opts, err := tc.f.options()
		switch {
		case tc.bad && !errors.Is(err, errUsage):
			t.Errorf("%s: %v, want a usage error", tc.name, err)
		case !tc.bad && (err != nil || len(opts) != tc.n):
			t.Errorf("%s: %d options, %v; want %d", tc.name, len(opts), err, tc.n)
		}
	}
}
