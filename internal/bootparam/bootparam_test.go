package bootparam

import "testing"

func TestValue(t *testing.T) {
	for _, tc := range []struct{ cmdline, key, want string }{
		{"ro bulkhead.data.encrypt=tpm quiet", DataEncrypt, "tpm"},
		{"bulkhead.data.encrypt=tpm bulkhead.data.encrypt=none", DataEncrypt, "none"}, // the last one wins, as in the kernel
		{"bulkhead.data=PARTUUID=x", DataEncrypt, ""},                                 // a prefix is not the key
		{"bulkhead.data.encrypt", DataEncrypt, ""},
		{"", WithoutTPM, ""},
	} {
		if got := Value(tc.cmdline, tc.key); got != tc.want {
			t.Errorf("Value(%q, %q) = %q, want %q", tc.cmdline, tc.key, got, tc.want)
		}
	}
}
