package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"debug/buildinfo"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/resolve"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
	"github.com/bulkhead-dev/bulkhead/builder/scan/secrets"
)

type tf struct {
	name string
	mode int64
	data []byte
	link string // symlink target
}

func tarOf(t testing.TB, files ...tf) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		case strings.HasSuffix(f.name, "/"):
			h.Typeflag = tar.TypeDir
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(f.data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeLayer(t testing.TB, dir string, data []byte) resolve.Layer {
	t.Helper()
	sum := sha256.Sum256(data)
	h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum)}
	p := filepath.Join(dir, h.Hex+".tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return resolve.Layer{Digest: h, DiffID: h, Path: p, Size: int64(len(data))}
}

func image(t testing.TB, dir, ref string, cfg v1.Config, files ...tf) *resolve.Image {
	t.Helper()
	l := writeLayer(t, dir, tarOf(t, files...))
	return &resolve.Image{
		Ref: ref, Name: ref, Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256([]byte(ref+l.DiffID.Hex)))},
		Config: &v1.ConfigFile{Config: cfg}, Layers: []resolve.Layer{l},
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeBzImage has an x86 boot header naming release.
func fakeBzImage(release string) []byte {
	b := make([]byte, 0x400)
	copy(b, "MZ")
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x20e:], 0x100)
	copy(b[0x300:], release+" (builder@test) #1 SMP\x00")
	return b
}

// Secrets the test host carries.
var (
	testPrivateKey = func() []byte {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}()
	fileToken  = ghToken("F1leT0kenRand0mPart1234567890X")
	envToken   = ghToken("Env1r0nmentT0kenRand0mPart0987")
	awsKeyFile = "[default]\naws_access_key_id = AKIAZ3MSJV6QKQRSTUVW\naws_secret_access_key = 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\n"
)

func ghToken(body string) string { return "ghp_" + body[:30] + secrets.GitHubChecksum(body[:30]) }

const dpkgStatusText = `Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: %s

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5

Package: removed-thing
Status: deinstall ok config-files
Version: 1.0
`

// hostOpts vary the test host.
type hostOpts struct {
	debVersion string // libssl3's version
	policy     string // the spec's policy section
	// layerKey puts a private key into the app image's layer.
	layerKey bool
}

// testSpec is the host: a kernel, an init image carrying a Go binary (this
// test binary) and runc, and a Debian-like service with a shell, an
// unused library, a package database and a token in its environment.
const testSpec = `kernel:
  image: example.org/kernel:1
  cmdline: console=ttyS0
init:
  - example.org/init:1
services:
  - name: app
    image: example.org/app:1
    command: ["/usr/bin/app", "serve"]
files:
  - path: etc/ssl/private/host.key
    source: host.key
  - path: root/.aws/credentials
    source: aws
  - path: etc/app/token
    contents: "token = %s"
%s`

// testHost assembles the test host and returns the scan input for it.
func testHost(t testing.TB, o hostOpts) Input {
	t.Helper()
	dir := t.TempDir()
	goBin := readFile(t, testGoBinary(t))
	kernel := image(t, dir, "example.org/kernel:1", v1.Config{},
		tf{name: "kernel", data: fakeBzImage("6.1.0-test")},
		tf{name: "kernel.config", data: []byte("CONFIG_MODULES=y\n")},
		tf{name: "kernel.tar", data: tarOf(t, tf{name: "lib/modules/6.1.0-test/modules.dep", data: []byte("\n")})},
	)
	initImg := image(t, dir, "example.org/init:1", v1.Config{},
		tf{name: "init", mode: 0o755, data: goBin},
	)
	appFiles := []tf{
		{name: "etc/os-release", data: []byte("ID=debian\nVERSION_ID=\"12\"\n")},
		{name: "var/lib/dpkg/status", data: []byte(fmt.Sprintf(dpkgStatusText, o.debVersion))},
		{name: "bin/sh", mode: 0o755, data: readFile(t, "/bin/dash")},
		{name: "usr/lib/x86_64-linux-gnu/libunused.so.1", data: readFile(t, "/lib/x86_64-linux-gnu/libz.so.1")},
		{name: "usr/bin/app", mode: 0o755, data: []byte("#!/bin/sh\nexec sleep 1\n")},
	}
	if o.layerKey {
		appFiles = append(appFiles, tf{name: "etc/app/deploy.key", data: append([]byte("# deploy\n"), testPrivateKey...)})
	}
	app := image(t, dir, "example.org/app:1", v1.Config{Env: []string{"PATH=/usr/bin:/bin", "GITHUB_TOKEN=" + envToken}}, appFiles...)
	os.WriteFile(filepath.Join(dir, "host.key"), testPrivateKey, 0o600)
	os.WriteFile(filepath.Join(dir, "aws"), []byte(awsKeyFile), 0o600)
	specText := fmt.Sprintf(testSpec, fileToken, o.policy)
	specPath := filepath.Join(dir, "host.yml")
	os.WriteFile(specPath, []byte(specText), 0o644)
	spec, err := config.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]*resolve.Image{kernel.Ref: kernel, initImg.Ref: initImg, app.Ref: app}
	host, err := rootfs.Assemble(context.Background(), spec, images, rootfs.WithEpoch(1700000000))
	if err != nil {
		t.Fatal(err)
	}
	k, err := KernelInfo(host.Kernel, kernel)
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		Name: "host", Tree: host.Tree, Images: []*resolve.Image{app, initImg, kernel}, Kernel: k,
		Cmdline: host.Cmdline, Spec: []byte(specText), SpecName: "host.yml", Policy: spec.Policy,
		Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), Epoch: 1700000000,
	}
}

var (
	goBinOnce sync.Once
	goBinPath string
	goBinErr  error
)

// testGoBinary builds, once, a small Go program that uses
// github.com/klauspost/compress, in a module of its own with this
// repository's requirements, from the module cache only. (Test binaries
// carry no module list, so this test cannot use its own.)
func testGoBinary(t testing.TB) string {
	t.Helper()
	goBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bulkhead-scan-gobin")
		if err != nil {
			goBinErr = err
			return
		}
		repo, _ := filepath.Abs("../..")
		mod := readFile(t, filepath.Join(repo, "go.mod"))
		mod = bytes.Replace(mod, []byte("module github.com/bulkhead-dev/bulkhead"), []byte("module example.org/gobin"), 1)
		os.WriteFile(filepath.Join(dir, "go.mod"), mod, 0o644)
		os.WriteFile(filepath.Join(dir, "go.sum"), readFile(t, filepath.Join(repo, "go.sum")), 0o644)
		os.WriteFile(filepath.Join(dir, "main.go"), []byte(`package main

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

func main() { fmt.Println(zstd.SpeedDefault) }
`), 0o644)
		goBinPath = filepath.Join(dir, "gobin")
		cmd := exec.Command("go", "build", "-trimpath", "-o", goBinPath, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			goBinErr = fmt.Errorf("building test Go binary: %v\n%s", err, out)
		}
	})
	if goBinErr != nil {
		t.Fatal(goBinErr)
	}
	return goBinPath
}

// goDep is a module the test Go binary is built with, and its version.
func goDep(t testing.TB, path string) string {
	t.Helper()
	bi, err := buildinfo.ReadFile(testGoBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	t.Fatalf("test binary has no module %s", path)
	return ""
}

// writeVulnDB writes OSV records: the Go module fixed in goFixed, openssl
// fixed in debFixed.
func writeVulnDB(t testing.TB, goFixed, debFixed string) string {
	t.Helper()
	dir := t.TempDir()
	recs := map[string]string{
		"GO-2099-0001.json": fmt.Sprintf(`{"id":"GO-2099-0001","aliases":["CVE-2099-1111"],"summary":"decompression bomb",
 "affected":[{"package":{"ecosystem":"Go","name":"github.com/klauspost/compress"},
  "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"%s"}]}]}]}`, goFixed),
		"DSA-9999-1.json": fmt.Sprintf(`{"id":"DSA-9999-1","aliases":["CVE-2099-2222"],
 "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N"}],
 "affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"%s"}]}]}]}`, debFixed),
	}
	for name, body := range recs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
