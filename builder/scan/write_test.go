package scan

import (
	"strings"
	"testing"
)

func TestShortDigests(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"img:1@" + d:                        "img:1@sha256:abababababab…",
		d + " and " + d + "#x":              "sha256:abababababab… and sha256:abababababab…#x",
		"sha256:abc":                        "sha256:abc", // not a whole digest: as is
		"bulkhead":                          "bulkhead",
		"sha256:" + strings.Repeat("A", 64): "sha256:" + strings.Repeat("A", 64),
	} {
		if got := ShortDigests(in); got != want {
			t.Errorf("ShortDigests(%q) = %q, want %q", in, got, want)
		}
	}
}
