package config

import (
	"strings"
	"testing"
)

func TestLayoutReferencesAsDocumented(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		ref, path, tag, digest string
	}{
		{"oci:img/kernel", "img/kernel", "", ""},
		{"oci:./x", "./x", "", ""},
		{"oci:../x", "../x", "", ""},
		{"oci:x:v1", "x", "v1", ""},
		{"oci:/abs/x:v1.2_3-rc", "/abs/x", "v1.2_3-rc", ""},
		{"oci:../x@" + digest, "../x", "", digest},
		{"oci:a:b/c", "a:b/c", "", ""}, // a colon before the last slash is the path's
	} {
		r, err := ParseLayoutRef(tc.ref)
		got := ""
		if err == nil && r.Digest != nil {
			got = r.Digest.String()
		}
		if err != nil || r.Path != tc.path || r.Tag != tc.tag || got != tc.digest {
			t.Errorf("ParseLayoutRef(%q) = %+v, %v", tc.ref, r, err)
		}
		spec := "init:\n  - " + tc.ref + "\nservices:\n  - name: s\n    image: " + tc.ref + "\n"
		if _, err := Parse("h.yml", []byte(spec)); err != nil {
			t.Errorf("spec using %s: %v", tc.ref, err)
		}
	}
	for ref, want := range map[string]string{
		"oci:":            `h.yml:2:5: invalid init image reference "oci:": no layout path after "oci:"`,
		"oci:x@sha256:zz": `h.yml:2:5: invalid init image reference "oci:x@sha256:zz": digest "sha256:zz"`,
		"oci:x:bad!tag":   `h.yml:2:5: invalid init image reference "oci:x:bad!tag": tag "bad!tag"`,
		"oci::v1":         `h.yml:2:5: invalid init image reference "oci::v1": no layout path`,
	} {
		_, err := Parse("h.yml", []byte("init:\n  - \""+ref+"\"\n"))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want %s", ref, err, want)
		}
	}
}
