package recipe

import (
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top-level key", "name: x\ntag: dev\nfiels: []\n",
			[]string{`r.yml:3:1: unknown field "fiels" (did you mean "files"?)`}},
		{"unknown nested key", "name: x\ntag: dev\ngo:\n  - package: ./a\n    output: /a\n    ldflag: -X a=b\n",
			[]string{`r.yml:6:5: unknown field "ldflag" (did you mean "ldflags"?)`}},
		{"bad name and tag", "name: X Y\ntag: ':'\nfiles: [{path: /a, contents: x}]\n",
			[]string{`r.yml:1:7: name "X Y"`, `r.yml:2:6: tag ":"`}},
		{"local package without ./", "name: x\ntag: dev\ngo:\n  - package: cmd/a\n    output: /a\n",
			[]string{`r.yml:4:14: package "cmd/a": a package of this module starts with ./`}},
		{"module without version", "name: x\ntag: dev\ngo:\n  - module: example.com/m\n    package: ./cmd/a\n    output: /a\n",
			[]string{`r.yml:4:13: module example.com/m needs a version`}},
		{"relative output", "name: x\ntag: dev\ngo:\n  - package: ./a\n    output: a\n",
			[]string{`r.yml:5:13: path "a" must be absolute`}},
		{"two file kinds", "name: x\ntag: dev\nfiles:\n  - path: /a\n    contents: x\n    symlink: b\n",
			[]string{`r.yml:4:5: exactly one of contents, source, directory and symlink`}},
		{"bad mode", "name: x\ntag: dev\nfiles:\n  - {path: /a, contents: x, mode: '0999'}\n",
			[]string{`r.yml:4:35: mode "0999" is not an octal file mode`}},
		{"source outside the recipe", "name: x\ntag: dev\nfiles:\n  - {path: /a, source: ../b}\n",
			[]string{`source "../b" must be a path inside the recipe directory`}},
		{"empty", "name: x\ntag: dev\n", []string{`r.yml:1:1: recipe builds nothing`}},
		{"bad module name", "name: x\ntag: dev\nkernel:\n  package: linux-image-cloud-amd64\n  modules: [virtio, 'a/b']\n",
			[]string{`r.yml:5:21: "a/b" is not a module name`}},
		{"sha256 without version", "name: x\ntag: dev\ndebian:\n  - {package: netbase, sha256: " + strings.Repeat("a", 64) + ", paths: [/etc/protocols]}\n",
			[]string{`r.yml:4:32: sha256 pins a version: set version too`}},
		{"bad sha256", "name: x\ntag: dev\ndebian:\n  - {package: netbase, version: '6.4', sha256: ABC, paths: [/etc/protocols]}\n",
			[]string{`sha256 "ABC" is not 64 lower-case hex digits`}},
		{"follows a metapackage pin", "name: x\ntag: dev\nkernel:\n  follows: linux-image-cloud-amd64\n  package: linux-image-cloud-amd64\n  version: '1'\n",
			[]string{`follows needs package pinned to a linux-image-<version> package`}},
		{"sha256 of a metapackage", "name: x\ntag: dev\nkernel:\n  package: linux-image-cloud-amd64\n  version: '1'\n  sha256: " + strings.Repeat("a", 64) + "\n",
			[]string{`sha256 pins a linux-image-<version> package, not the metapackage`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("r.yml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	r, err := Parse("r.yml", []byte(`
name: containerd
tag: v2.4.2
go:
  - module: github.com/containerd/containerd/v2
    version: v2.4.2
    package: ./cmd/containerd
    output: /usr/bin/containerd
    tags: [no_cri]
files:
  - {path: /etc/x, contents: "hi\n", mode: "0600"}
  - {path: /tmp, directory: true, mode: 1777}
config:
  entrypoint: [/usr/bin/containerd]
  linuxkit: {capabilities: [all]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Ref(); got != "bulkhead/containerd:v2.4.2" {
		t.Errorf("Ref() = %q", got)
	}
	if got := r.Go[0].ImportPath(); got != "github.com/containerd/containerd/v2/cmd/containerd" {
		t.Errorf("ImportPath() = %q", got)
	}
	if *r.Files[0].Mode != 0o600 || *r.Files[1].Mode != 0o1777 {
		t.Errorf("modes = %o, %o", *r.Files[0].Mode, *r.Files[1].Mode)
	}
}

// TestRecipesParse parses the recipes this repository ships.
func TestRecipesParse(t *testing.T) {
	want := map[string]string{
		"init": "bulkhead/init:dev", "runc": "bulkhead/runc:v1.5.3",
		"kernel": "bulkhead/kernel:6.1-cloud", "hello": "bulkhead/hello:dev", "oneshot": "bulkhead/oneshot:dev",
	}
	for dir, ref := range want {
		r, err := Load("../../images/" + dir)
		if err != nil {
			t.Fatal(err)
		}
		if r.Ref() != ref {
			t.Errorf("images/%s builds %s, want %s", dir, r.Ref(), ref)
		}
	}
}
