package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvLinuxKitExamples names a directory of LinuxKit specs (LinuxKit's own
// examples, say) that the compat tests load too. Unset, they load only the
// repository's testdata/linuxkit, and TestExternalCompatCorpus says so.
const EnvLinuxKitExamples = "BULKHEAD_LINUXKIT_EXAMPLES"

// ownCompatFiles are the repository's own LinuxKit-format specs; they
// always run.
func ownCompatFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "linuxkit", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found only %d specs in testdata/linuxkit", len(files))
	}
	return files
}

// externalCompatFiles are the specs in $BULKHEAD_LINUXKIT_EXAMPLES, or nil
// when it is unset. A set variable that names no specs fails the test.
func externalCompatFiles(t testing.TB) []string {
	t.Helper()
	dir := os.Getenv(EnvLinuxKitExamples)
	if dir == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("$%s=%s: found only %d *.yml specs", EnvLinuxKitExamples, dir, len(files))
	}
	return files
}

func compatFiles(t testing.TB) []string {
	return append(ownCompatFiles(t), externalCompatFiles(t)...)
}

// TestExternalCompatCorpus says whether the external corpus ran: skipped,
// with the variable to set, when it did not.
func TestExternalCompatCorpus(t *testing.T) {
	files := externalCompatFiles(t)
	if files == nil {
		t.Skipf("$%s is unset: only testdata/linuxkit was loaded", EnvLinuxKitExamples)
	}
	t.Logf("loaded %d external LinuxKit specs from $%s", len(files), EnvLinuxKitExamples)
}

func TestCompatExamplesLoad(t *testing.T) {
	for _, f := range compatFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if s.Kernel.Image == "" || len(s.Onboot)+len(s.Services) == 0 {
				t.Fatalf("spec lost its kernel or containers: %+v", s)
			}
			if !reflect.DeepEqual(s.Sources, []string{f}) {
				t.Errorf("Sources = %v", s.Sources)
			}
			want := mustJSON(t, s)
			// The rendered spec must read back as the same spec.
			y, err := s.YAML()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse("rendered.yml", y)
			if err != nil {
				t.Fatalf("re-parsing YAML rendering: %v\n%s", err, y)
			}
			if got := mustJSON(t, back); !bytes.Equal(got, want) {
				t.Errorf("YAML round trip differs:\n%s\nwant\n%s", got, want)
			}
			back, err = Parse("rendered.json", want)
			if err != nil {
				t.Fatalf("re-parsing JSON rendering: %v", err)
			}
			if got := mustJSON(t, back); !bytes.Equal(got, want) {
				t.Errorf("JSON round trip differs:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func mustJSON(t testing.TB, s *Spec) []byte {
	t.Helper()
	b, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStaticIPCommentInBlock(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "linuxkit", "static-ip.yml"))
	if err != nil {
		t.Fatal(err)
	}
	got := *s.Files[1].Contents
	want := "#      domain test.local\nnameserver 10.10.1.101\nnameserver 10.10.1.100     \n"
	if got != want {
		t.Errorf("resolv.conf contents = %q, want %q", got, want)
	}
}

const head = "kernel:\n  image: linuxkit/kernel:6.6\ninit:\n  - linuxkit/init:v1\n"

// Each case has exactly one problem; lines start after head (line 5).
var badSpecs = []struct {
	name, yaml, want string
}{
	{"unknown top-level key", "sevices: []\n",
		`5:1: unknown field "sevices" (did you mean "services"?)`},
	{"unknown key no suggestion", "frobnicate: 1\n",
		`5:1: unknown field "frobnicate"`},
	{"unknown image key", "services:\n  - name: a\n    image: alpine\n    readonly_: true\n",
		`8:5: unknown field "readonly_" (did you mean "readonly"?)`},
	{"unknown kernel key", "",
		""},
	{"string where list needed", "services:\n  - name: a\n    image: alpine\n    capabilities: CAP_NET_ADMIN\n",
		`8:19: capabilities: expected a list, got "CAP_NET_ADMIN"`},
	{"bad boolean", "services:\n  - name: a\n    image: alpine\n    readonly: maybe\n",
		`8:15: readonly: expected true or false, got "maybe"`},
	{"bad integer", "services:\n  - name: a\n    image: alpine\n    oomScoreAdj: lots\n",
		`8:18: oomScoreAdj: expected an integer, got "lots"`},
	{"section not a list", "services: getty\n",
		`5:11: services: expected a list, got "getty"`},
	{"missing name", "services:\n  - image: alpine\n",
		`6:5: missing required field "name"`},
	{"missing image", "onboot:\n  - name: a\n",
		`6:5: missing required field "image"`},
	{"missing path", "files:\n  - contents: hi\n",
		`6:5: missing required field "path"`},
	{"unknown capability", "services:\n  - name: a\n    image: alpine\n    capabilities: [CAP_NET_ADMN]\n",
		`8:20: unknown capability "CAP_NET_ADMN" (did you mean "CAP_NET_ADMIN"?)`},
	{"capability without prefix", "services:\n  - name: a\n    image: alpine\n    capabilities: [SYS_ADMIN]\n",
		`8:20: unknown capability "SYS_ADMIN" (did you mean "CAP_SYS_ADMIN"?)`},
	{"all mixed with others", "services:\n  - name: a\n    image: alpine\n    capabilities: [CAP_BPF, all]\n",
		`8:29: "all" must be the only capability in its list`},
	{"bad mode", "files:\n  - path: etc/x\n    contents: x\n    mode: \"0988\"\n",
		`8:11: invalid mode "0988": expected an octal number such as "0644"`},
	{"bad rlimit format", "services:\n  - name: a\n    image: alpine\n    rlimits: [\"nofile,10\"]\n",
		`8:15: rlimit "nofile,10": expected name,soft,hard`},
	{"unknown rlimit", "services:\n  - name: a\n    image: alpine\n    rlimits: [\"nofiles,10,10\"]\n",
		`8:15: unknown rlimit "nofiles" (did you mean "RLIMIT_NOFILE"?)`},
	{"rlimit not a number", "services:\n  - name: a\n    image: alpine\n    rlimits: [\"nofile,many,unlimited\"]\n",
		`8:15: rlimit "nofile,many,unlimited": soft limit "many" is not a number or "unlimited"`},
	{"duplicate service", "services:\n  - name: a\n    image: alpine\n  - name: a\n    image: busybox\n",
		`8:5: duplicate container name "a" (first defined at t.yml:6:5)`},
	{"name in onboot and services", "onboot:\n  - name: a\n    image: alpine\nservices:\n  - name: a\n    image: busybox\n",
		`9:5: duplicate container name "a" (first defined at t.yml:6:5)`},
	{"duplicate file path", "files:\n  - path: /etc/x\n    contents: a\n  - path: etc//x\n    contents: b\n",
		`8:5: duplicate file path "etc/x" (first defined at t.yml:6:5)`},
	{"contents and source", "files:\n  - path: etc/x\n    contents: a\n    source: b\n",
		`8:13: "source" cannot be used with "contents"`},
	{"source and metadata", "files:\n  - path: etc/x\n    source: a\n    metadata: yaml\n",
		`8:15: "metadata" cannot be used with "source"`},
	{"directory with contents", "files:\n  - path: etc/x\n    directory: true\n    contents: a\n",
		`8:15: "contents" cannot be used with "directory"`},
	{"bad metadata", "files:\n  - path: etc/x\n    metadata: xml\n",
		`7:15: metadata must be "yaml" or "json", got "xml"`},
	{"bad net", "services:\n  - name: a\n    image: alpine\n    net: bridge\n",
		`8:10: invalid net "bridge": expected host, new, none or an absolute path`},
	{"bad pid none", "services:\n  - name: a\n    image: alpine\n    pid: none\n",
		`8:10: invalid pid "none": expected host, new or an absolute path`},
	{"bind without colon", "services:\n  - name: a\n    image: alpine\n    binds: [/var]\n",
		`8:13: bind "/var": expected src:dst[:options]`},
	{"bind relative destination", "services:\n  - name: a\n    image: alpine\n    binds: [\"/var:var\"]\n",
		`8:13: bind "/var:var": destination "var" is not an absolute path`},
	{"bind unknown volume", "services:\n  - name: a\n    image: alpine\n    binds: [\"blnk:/b\"]\nvolumes:\n  - name: blank\n",
		`8:13: bind "blnk:/b" names unknown volume "blnk" (did you mean "blank"?)`},
	{"bad uid", "services:\n  - name: a\n    image: alpine\n    uid: [1]\n",
		`8:10: uid: expected a number or a name, got a list`},
	{"negative uid", "services:\n  - name: a\n    image: alpine\n    uid: -1\n",
		`8:10: uid: id -1 out of range`},
	{"resources unknown field", "services:\n  - name: a\n    image: alpine\n    resources:\n      memory:\n        limt: 10\n",
		`10:9: resources: unknown field "limt"`},
	{"resources wrong type", "services:\n  - name: a\n    image: alpine\n    resources:\n      memory:\n        limit: lots\n",
		`10:16: resources.memory.limit: expected an integer, got "lots"`},
	{"mount unknown field", "services:\n  - name: a\n    image: alpine\n    mounts:\n      - type: tmpfs\n        dest: /x\n",
		`10:9: mounts[0]: unknown field "dest"`},
	{"uidMappings wrong type", "services:\n  - name: a\n    image: alpine\n    uidMappings:\n      - hostID: x\n",
		`9:17: uidMappings[0].hostID: expected an integer, got "x"`},
	{"duplicate key", "services:\n  - name: a\n    name: b\n    image: alpine\n",
		`7:5: field "name" already set at t.yml:6:11`},
	{"duplicate volume", "volumes:\n  - name: v\n  - name: v\n",
		`7:5: duplicate volume name "v" (first defined at t.yml:6:5)`},
	{"bad volume name", "volumes:\n  - name: Data\n",
		`6:11: invalid volume name "Data": use lowercase letters, digits, '_' and '-'`},
	{"bad image reference", "services:\n  - name: a\n    image: \"Alpine:latest\"\n",
		`7:12: invalid image reference "Alpine:latest"`},
	{"bad container name", "services:\n  - name: ../x\n    image: alpine\n",
		`6:11: invalid container name "../x": use letters, digits, '.', '_' and '-'`},
	{"tmpfs relative", "services:\n  - name: a\n    image: alpine\n    tmpfs: [\"tmp:size=1m\"]\n",
		`8:13: tmpfs "tmp:size=1m": destination "tmp" is not an absolute path`},
	{"device all of a bad type", "services:\n  - name: a\n    image: alpine\n    devices:\n      - path: all\n        type: u\n",
		`9:9: device "all": type must be b or c, got "u"`},
	{"bad cgroupns", "services:\n  - name: a\n    image: alpine\n    cgroupns: private\n",
		`8:15: invalid cgroupns "private": expected host, new or an absolute path`},
	{"invalid yaml", "services:\n  - name: a\n   image: x\n",
		`7:4: invalid YAML: did not find expected '-' indicator (check this line's indentation against the lines above)`},
	{"trust wrong type", "trust:\n  org: linuxkit\n",
		`6:8: org: expected a list, got "linuxkit"`},
}

func TestBadSpecs(t *testing.T) {
	for _, tc := range badSpecs {
		if tc.want == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yml", []byte(head+tc.yaml))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error = %v, want Errors", err)
			}
			if got, want := err.Error(), "t.yml:"+tc.want; got != want {
				t.Errorf("error\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestKernelUnknownField(t *testing.T) {
	_, err := Parse("k.yml", []byte("kernel:\n  image: linuxkit/kernel:6.6\n  cmdlin: quiet\n"))
	if err == nil || err.Error() != `k.yml:3:3: unknown field "cmdlin" (did you mean "cmdline"?)` {
		t.Errorf("error = %v", err)
	}
}

func TestAllErrorsSorted(t *testing.T) {
	spec := head + "services:\n  - name: a\n    image: alpine\n    readonly: maybe\n    net: bridge\nsevices: []\nfiles:\n  - mode: \"9\"\n"
	_, err := Parse("t.yml", []byte(spec))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error = %v", err)
	}
	want := []string{
		`t.yml:8:15: readonly: expected true or false, got "maybe"`,
		`t.yml:9:10: invalid net "bridge": expected host, new, none or an absolute path`,
		`t.yml:10:1: unknown field "sevices" (did you mean "services"?)`,
		`t.yml:12:5: missing required field "path"`,
		`t.yml:12:11: invalid mode "9": expected an octal number such as "0644"`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPositions(t *testing.T) {
	spec := head + "services:\n  - name: a\n    image: alpine\nfiles:\n  - path: etc/x\n    contents: x\nvolumes:\n  - name: v\n    image: alpine:3\n"
	s, err := Parse("p.yml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got Pos, line, col int) {
		t.Helper()
		if want := (Pos{File: "p.yml", Line: line, Col: col}); got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("Kernel.Pos", s.Kernel.Pos, 2, 10)
	check("Init[0].Pos", s.Init[0].Pos, 4, 5)
	check("Image.Pos", s.Services[0].Pos, 6, 5)
	check("Image.ImagePos", s.Services[0].ImagePos, 7, 12)
	check("File.Pos", s.Files[0].Pos, 9, 5)
	check("Volume.Pos", s.Volumes[0].Pos, 12, 5)
	check("Volume.ImagePos", s.Volumes[0].ImagePos, 13, 12)
}

func TestValuesDecoded(t *testing.T) {
	spec := head + `services:
  - name: a
    image: alpine
    capabilities: [all]
    uid: 1000
    gid: wheel
    additionalGids: [10, "20", video]
    net: new
    sysctl:
      net.ipv4.ip_forward: 1
    rlimits: ["NOFILE, 1024, unlimited", "RLIMIT_CORE,0,0"]
    resources:
      memory:
        limit: 1048576
    uidMappings:
      - {hostID: 100000, containerID: 0, size: 65536}
    runtime:
      mkdir: [/var/lib/a]
      interfaces:
        - name: eth1
          add: veth
          peer: veth1
      bindNS:
        net: /run/netns/a
files:
  - path: /etc/x
    contents: "hi"
    mode: "0644"
    uid: 0
    gid: root
`
	s, err := Parse("v.yml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Services[0].ImageConfig
	if *c.UID.Num != 1000 || c.GID.Name != "wheel" {
		t.Errorf("uid/gid = %v/%v", c.UID, c.GID)
	}
	ids := *c.AdditionalGids
	if *ids[0].Num != 10 || *ids[1].Num != 20 || ids[2].Name != "video" {
		t.Errorf("additionalGids = %v", ids)
	}
	if (*c.Sysctl)["net.ipv4.ip_forward"] != "1" {
		t.Errorf("sysctl = %v", *c.Sysctl)
	}
	if *c.Resources.Memory.Limit != 1048576 || (*c.UIDMappings)[0].HostID != 100000 {
		t.Errorf("resources/mappings = %+v %+v", c.Resources, c.UIDMappings)
	}
	if *c.Runtime.BindNS.Net != "/run/netns/a" || (*c.Runtime.Interfaces)[0].Peer != "veth1" {
		t.Errorf("runtime = %+v", c.Runtime)
	}
	rl, err := ParseRlimit((*c.Rlimits)[0])
	if err != nil || rl.Type != "RLIMIT_NOFILE" || rl.Soft != 1024 || rl.Hard != ^uint64(0) {
		t.Errorf("rlimit = %+v, %v", rl, err)
	}
	if f := s.Files[0]; *f.UID.Num != 0 || f.GID.Name != "root" || CleanPath(f.Path) != "etc/x" {
		t.Errorf("file = %+v", f)
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadMerges(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yml", `kernel:
  image: linuxkit/kernel:6.6
  cmdline: console=ttyS0
init:
  - linuxkit/init:v1
services:
  - name: getty
    image: linuxkit/getty:v1
    binds: ["data:/data"]
files:
  - path: etc/a
    contents: a
`)
	b := writeFile(t, dir, "b.yml", `kernel:
  image: linuxkit/kernel:6.12
  tar: none
init:
  - linuxkit/runc:v1
onboot:
  - name: dhcpcd
    image: linuxkit/dhcpcd:v1
services:
  - name: sshd
    image: linuxkit/sshd:v1
files:
  - path: etc/b
    contents: b
volumes:
  - name: data
`)
	s, err := Load(a, b)
	if err != nil {
		t.Fatal(err)
	}
	k := s.Kernel
	if k.Image != "linuxkit/kernel:6.12" || k.Cmdline != "console=ttyS0" || k.Tar == nil || *k.Tar != "none" {
		t.Errorf("kernel = %+v", k)
	}
	if k.Pos.File != b || k.Pos.Line != 2 {
		t.Errorf("kernel pos = %v", k.Pos)
	}
	var inits, services, files []string
	for _, r := range s.Init {
		inits = append(inits, r.Ref)
	}
	for _, i := range s.Services {
		services = append(services, i.Name)
	}
	for _, f := range s.Files {
		files = append(files, f.Path)
	}
	if !reflect.DeepEqual(inits, []string{"linuxkit/init:v1", "linuxkit/runc:v1"}) ||
		!reflect.DeepEqual(services, []string{"getty", "sshd"}) ||
		!reflect.DeepEqual(files, []string{"etc/a", "etc/b"}) ||
		len(s.Onboot) != 1 || len(s.Volumes) != 1 {
		t.Errorf("merged lists: init %v services %v files %v onboot %d volumes %d",
			inits, services, files, len(s.Onboot), len(s.Volumes))
	}
	if !reflect.DeepEqual(s.Sources, []string{a, b}) {
		t.Errorf("Sources = %v", s.Sources)
	}
	// The bind in a.yml names a volume declared in b.yml: fine merged, an
	// error alone.
	if _, err := Load(a); err == nil || !strings.Contains(err.Error(), `names unknown volume "data"`) {
		t.Errorf("Load(a) error = %v", err)
	}
}

func TestLoadDuplicateAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yml", "services:\n  - name: getty\n    image: linuxkit/getty:v1\n")
	b := writeFile(t, dir, "b.yml", "onboot:\n  - name: x\n    image: alpine\n    readonly: perhaps\nservices:\n  - name: getty\n    image: linuxkit/getty:v2\n")
	_, err := Load(a, b)
	want := b + `:4:15: readonly: expected true or false, got "perhaps"` + "\n" +
		b + `:6:5: duplicate container name "getty" (first defined at ` + a + `:2:5)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.yml")); err == nil || errors.As(err, new(Errors)) {
		t.Errorf("missing file error = %v", err)
	}
}

func TestParseImageConfigLabel(t *testing.T) {
	c, err := ParseImageConfigLabel([]byte(`{"capabilities":["CAP_NET_ADMIN"],"binds":["/var:/var"],"net":"host","uid":100,"readonly":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if (*c.Capabilities)[0] != "CAP_NET_ADMIN" || c.Net != "host" || *c.UID.Num != 100 || !*c.Readonly {
		t.Errorf("label config = %+v", c)
	}
	_, err = ParseImageConfigLabel([]byte("{\n\t\"name\": \"x\",\n\t\"capabilities\": [\"CAP_FOO\"]\n}"))
	want := LabelName + `:2:10: name cannot be set in the org.mobyproject.config label` + "\n" +
		LabelName + `:3:19: unknown capability "CAP_FOO"`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	if _, err := ParseImageConfigLabel([]byte(`{"net": `)); err == nil {
		t.Error("truncated JSON accepted")
	}
}

func TestIDMarshal(t *testing.T) {
	var got []ID
	if err := json.Unmarshal([]byte(`[0, "42", "daemon"]`), &got); err != nil {
		t.Fatal(err)
	}
	if *got[0].Num != 0 || *got[1].Num != 42 || got[2].Name != "daemon" {
		t.Fatalf("ids = %v", got)
	}
	out, err := json.Marshal(got)
	if err != nil || string(out) != `[0,42,"daemon"]` {
		t.Errorf("marshal = %s, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`[true]`), &got); err == nil {
		t.Error("bool id accepted")
	}
}

func TestRenderDeterministic(t *testing.T) {
	spec := head + "services:\n  - name: a\n    image: alpine\n    net: new\n    sysctl: {net.b: \"1\", net.a: \"2\", net.c: \"3\"}\n    annotations: {z: y, x: w}\n"
	s, err := Parse("r.yml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := s.YAML()
		if !bytes.Equal(first, again) {
			t.Fatal("YAML rendering is not deterministic")
		}
	}
	if !bytes.Contains(first, []byte("sysctl:\n      net.a: \"2\"\n      net.b: \"1\"\n      net.c: \"3\"\n")) {
		t.Errorf("map keys not sorted:\n%s", first)
	}
}

func TestParseRlimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"nofile,1,2", ""},
		{"RLIMIT_nproc, unlimited, UNLIMITED", ""},
		{"nofile,3,2", `rlimit "nofile,3,2": soft limit exceeds hard limit`},
		{"nofile,-1,2", `rlimit "nofile,-1,2": soft limit "-1" is not a number or "unlimited"`},
		{"bogus,1,2", `unknown rlimit "bogus"`},
	} {
		_, err := ParseRlimit(tc.in)
		if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
			t.Errorf("ParseRlimit(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range compatFiles(f) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range badSpecs {
		f.Add([]byte(head + tc.yaml))
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("services:\n  - <<: {name: a, image: b}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				panic(fmt.Sprintf("Parse took over 5s on %q", data))
			}
		}()
		s, err := Parse("f.yml", data)
		if err == nil {
			if _, err := s.YAML(); err != nil {
				t.Fatalf("rendering a valid spec: %v", err)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not Errors: %v", err)
		}
		for _, e := range errs {
			if e.Pos.File != "f.yml" || e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Fatalf("error without position: %q at %+v", e.Msg, e.Pos)
			}
		}
	})
}

// billionLaughs builds a spec whose aliases (or merge keys) expand 2^depth times.
func billionLaughs(depth int, merge bool) []byte {
	var b strings.Builder
	b.WriteString("x0: &x0 {name: a, image: alpine, resources: {memory: {limit: 1}}}\n")
	for i := 1; i <= depth; i++ {
		if merge {
			b.WriteString("x" + itoa(i) + ": &x" + itoa(i) + " {<<: [*x" + itoa(i-1) + ", *x" + itoa(i-1) + "]}\n")
		} else {
			b.WriteString("x" + itoa(i) + ": &x" + itoa(i) + " [*x" + itoa(i-1) + ", *x" + itoa(i-1) + "]\n")
		}
	}
	if merge {
		b.WriteString("services: [*x" + itoa(depth) + "]\n")
	} else {
		b.WriteString("services: *x" + itoa(depth) + "\n")
	}
	return []byte(b.String())
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestAliasBombBounded(t *testing.T) {
	start := time.Now()
	if _, err := Parse("bomb.yml", billionLaughs(40, false)); err == nil {
		t.Error("alias bomb accepted")
	}
	_, err := Parse("bomb.yml", billionLaughs(40, true))
	if err == nil || !strings.Contains(err.Error(), "bomb.yml:20:17: spec expands to more than the limit of 32 MiB") {
		t.Errorf("merge bomb: error = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("alias bombs took %v", d)
	}
}

// TestCompatMerge merges a second file onto a spec the way LinuxKit does:
// kernel fields replaced where set, the lists appended in file order, and
// anchors and merge keys resolved within each file.
func TestCompatMerge(t *testing.T) {
	dir := filepath.Join("testdata", "linuxkit")
	s, err := Load(filepath.Join(dir, "web.yml"), filepath.Join(dir, "overlay", "web.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Kernel.Image != "linuxkit/kernel:6.6.71" || s.Kernel.Cmdline != "console=ttyS0 debug" {
		t.Errorf("kernel = %+v: want the first image and the second command line", s.Kernel)
	}
	names := func(imgs []*Image) (n []string) {
		for _, i := range imgs {
			n = append(n, i.Name)
		}
		return n
	}
	if got := names(s.Services); !reflect.DeepEqual(got, []string{"web", "web-canary", "metrics", "ntpd"}) {
		t.Errorf("services = %v", got)
	}
	if got := names(s.Onboot); !reflect.DeepEqual(got, []string{"dhcpcd", "sysctl"}) {
		t.Errorf("onboot = %v", got)
	}
	if len(s.Init) != 4 || len(s.Files) != 3 || s.Files[2].Path != "etc/motd" {
		t.Errorf("init %d, files %+v", len(s.Init), s.Files)
	}
	canary := s.Services[1]
	if canary.Image != "nginx:1.25-alpine" || !reflect.DeepEqual(*canary.Env, []string{"PORT=8080"}) ||
		!reflect.DeepEqual(*canary.Capabilities, []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}) {
		t.Errorf("merge key: web-canary = %+v", canary)
	}
	if !reflect.DeepEqual(*s.Services[2].Capabilities, *s.Services[0].Capabilities) {
		t.Errorf("alias: metrics capabilities %v", *s.Services[2].Capabilities)
	}
	if !reflect.DeepEqual(s.Sources, []string{filepath.Join(dir, "web.yml"), filepath.Join(dir, "overlay", "web.yml")}) {
		t.Errorf("Sources = %v", s.Sources)
	}
}

// TestWarnings: LinuxKit forms that runc accepts but a reader may not mean
// are accepted with a warning at their position.
func TestWarnings(t *testing.T) {
	s, err := Parse("t.yml", []byte(head+"services:\n  - name: a\n    image: alpine\n    mounts:\n"+
		"      - type: tmpfs\n        destination: var/./cache\n    devices:\n      - path: all\n        type: c\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := `t.yml:9:9: mount destination "var/./cache" is not absolute: resolved inside the container as "/var/cache", as runc does`
	if len(s.Warnings) != 1 || s.Warnings[0].Error() != want {
		t.Fatalf("warnings = %v, want %s", s.Warnings, want)
	}
}

func TestAPISection(t *testing.T) {
	s, err := Parse("t.yml", []byte(head+"api:\n  ca: ca/ca.pem\n  listen: \":8443\"\n"))
	if err != nil || s.API == nil || s.API.CA != "ca/ca.pem" || s.API.CAPos.Line != 6 {
		t.Fatalf("api = %+v, %v", s.API, err)
	}
	for body, want := range map[string]string{
		"api:\n  listen: \":1\"\n":            `t.yml:6:3: api: missing required field "ca"`,
		"api:\n  ca: x.pem\n  listen: nope\n": `t.yml:7:11: listen: expected [HOST]:PORT, got "nope"`,
		"api:\n  ca: x.pem\n  port: 1\n":      `t.yml:7:3: unknown field "port"`,
	} {
		if _, err := Parse("t.yml", []byte(head+body)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %s", body, err, want)
		}
	}
}
