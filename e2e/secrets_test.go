package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/metadata/metadatatest"
	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// secretsSpec is the minimal host with two services: web reads a secret
// from qemu's fw_cfg, one from EC2's metadata service (refreshed every 3s,
// SIGHUP when it changes), one from GCP's and one from a NoCloud config
// drive, whose meta-data and user-data also name the host and give it
// its user data; nosy reads none, and binds the host's secrets tmpfs as if
// misconfigured.
const secretsSpec = `kernel:
  image: bulkhead/kernel:6.1-cloud
  cmdline: "console=ttyS0 panic=-1"
init:
  - bulkhead/init:dev
  - bulkhead/runc:v1.5.3
services:
  - name: web
    image: bulkhead/hello:dev
    net: host
    readonly: true
    uid: 1000
    gid: 1000
    command: ["/hello", "-listen", ":8080", "-digests"]
    secrets:
      - fw-token
      - name: imds-token
        path: /etc/web/imds-token
        signal: SIGHUP
      - gcp-token
      - drive-token
  - name: nosy
    image: bulkhead/hello:dev
    net: host
    uid: 1001
    command: ["/hello", "-listen", ":8081", "-digests"]
    # a service that binds the host's secrets tmpfs still cannot read it
    binds: ["/run/bulkhead/secrets:/host-secrets:ro"]
secrets:
  - name: fw-token
    source: fw_cfg:opt/bulkhead/fw-token
  - name: imds-token
    source: ec2:meta-data/tags/instance/imds-token
    refresh: 3s
    timeout: 2s
  - name: gcp-token
    source: gcp:instance/attributes/gcp-token
  - name: drive-token
    source: configdrive:secrets/drive-token
metadata:
  provider: configdrive
  userdata: true
files:
  - path: etc/hostname
    contents: "secrets"
`

// TestRuntimeSecrets boots a raw-efi host whose EC2 metadata service (an
// IMDSv2 emulator on 127.0.0.1, reached by the guest at 169.254.169.254
// through qemu's guestfwd; it also answers as GCP's) is down at first: the
// host boots, nosy starts, web waits and the console names the secret and
// its source. Once the service answers, web starts with its four secrets
// (fw_cfg, IMDSv2, GCP and a vfat config drive labelled cidata), each 0400
// and its own; nosy sees none at the paths web sees them (mount
// namespace), and through its bind of the host's tmpfs (root's, 0700) may
// not read them (permission). A changed value reaches web by the refresh
// timer, with a SIGHUP. After power off, no value is on the disk (ESP,
// roots, data partition) or the console, byte by byte.
func TestRuntimeSecrets(t *testing.T) {
	fwValue, imdsValue, imdsValue2 := randomValue(t, "fw"), randomValue(t, "imds"), randomValue(t, "imds2")
	gcpValue, driveValue, userData := randomValue(t, "gcp"), randomValue(t, "drive"), randomValue(t, "userdata")
	md := metadatatest.New()
	md.SetGCP("instance/attributes/gcp-token", []byte(gcpValue))
	md.SetDown(true)
	mdAddr := serveLoopback(t, md)

	dir := t.TempDir()
	specPath := filepath.Join(dir, "secrets.yml")
	if err := os.WriteFile(specPath, []byte(secretsSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bulkhead, "build", "--json", "--format", "raw-efi", "-o", dir, specPath).Output()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dev := copyImage(t, filepath.Join(dir, "secrets.img"))
	webPort, nosyPort := freePort(t), freePort(t)
	nic := "user,model=virtio-net-pci,restrict=on,net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,dhcpstart=169.254.169.15" +
		fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:8080,hostfwd=tcp:127.0.0.1:%d-:8081", webPort, nosyPort) +
		",guestfwd=tcp:169.254.169.254:80-cmd:" + guestfwd(t) + " " + mdAddr
	vm, _ := start(t, qemu.Config{
		Disk: dev, UEFI: true, MemoryMB: 1024, CPUs: 1, Timeout: 10 * time.Minute,
		ExtraArgs: []string{"-nic", nic, "-fw_cfg", "name=opt/bulkhead/fw-token,string=" + fwValue,
			"-drive", "file=" + cidata(t, map[string]string{
				"secrets/drive-token": driveValue,
				"meta-data":           "instance-id: i-1\nlocal-hostname: cidata-host\n",
				"user-data":           "#cloud-config\n# " + userData + "\n",
			}) + ",if=virtio,format=raw,readonly=on"},
	})

	// The metadata service is down: the host boots, web waits, nosy runs.
	seen(t, vm, "secret fw-token: fetched from fw_cfg:opt/bulkhead/fw-token", 4*time.Minute)
	seen(t, vm, "secret drive-token: fetched from configdrive:secrets/drive-token", time.Minute)
	seen(t, vm, "secret imds-token: ec2:meta-data/tags/instance/imds-token: getting imdsv2 token: PUT /latest/api/token: 503 Service Unavailable; retrying in", time.Minute)
	seen(t, vm, "service web failed to start: waiting for secret imds-token from ec2:meta-data/tags/instance/imds-token", time.Minute)
	seen(t, vm, "service nosy started", time.Minute)
	if strings.Contains(vm.Console(), "service web started") {
		t.Fatal("web started without its secret")
	}

	md.SetEC2("meta-data/tags/instance/imds-token", []byte(imdsValue))
	md.SetDown(false)
	seen(t, vm, "secret imds-token: fetched from ec2:meta-data/tags/instance/imds-token", 2*time.Minute)
	seen(t, vm, "secret gcp-token: fetched from gcp:instance/attributes/gcp-token", time.Minute)
	seen(t, vm, "service web started", 2*time.Minute)
	// The config drive also named the host and gave its user data.
	seen(t, vm, "metadata: host name cidata-host from configdrive:meta-data", time.Second)
	seen(t, vm, "metadata: user data from configdrive:user-data in /run/config/userdata", time.Second)
	if body := get(t, webPort, time.Minute); !strings.Contains(body, "hello from cidata-host") {
		t.Fatalf("web answered %q", body)
	}

	// web reads both, each 0400 and owned by its uid.
	wantFile(t, webPort, "/run/secrets/fw-token", fwValue, 1000)
	wantFile(t, webPort, "/etc/web/imds-token", imdsValue, 1000)
	wantFile(t, webPort, "/run/secrets/gcp-token", gcpValue, 1000)
	wantFile(t, webPort, "/run/secrets/drive-token", driveValue, 1000)
	// nosy has no mount of them, and no way to the host's tmpfs.
	for _, p := range []string{"/run/secrets/fw-token", "/etc/web/imds-token", "/run/secrets/drive-token", "/run/bulkhead/secrets/web/0/fw-token", "/run/bulkhead/secrets"} {
		if code, d := digest(t, nosyPort, p); code != http.StatusNotFound {
			t.Errorf("nosy reads %s: %d %+v", p, code, d)
		}
	}
	for _, p := range []string{"/host-secrets/web/0/fw-token", "/host-secrets/web/1/imds-token"} {
		if code, d := digest(t, nosyPort, p); code != http.StatusForbidden {
			t.Errorf("nosy reads %s through its bind: %d %+v, want 403", p, code, d)
		}
	}

	// Rotation: the refresh timer fetches the new value, replaces web's
	// copy and sends web SIGHUP.
	md.SetEC2("meta-data/tags/instance/imds-token", []byte(imdsValue2))
	seen(t, vm, "secret imds-token: changed at ec2:meta-data/tags/instance/imds-token; replacing it for 1 service(s)", time.Minute)
	seen(t, vm, "service web: sent hangup for a changed secret", 30*time.Second)
	seen(t, vm, "[web] hello: SIGHUP: secrets changed", 30*time.Second)
	wantFile(t, webPort, "/etc/web/imds-token", imdsValue2, 1000)
	powerOff(t, vm)

	for _, v := range []string{fwValue, imdsValue, imdsValue2, gcpValue, driveValue, userData} {
		if strings.Contains(vm.Console(), v) {
			t.Errorf("a secret value is on the console")
		}
		if off := findInFile(t, dev, []byte(v)); off >= 0 {
			t.Errorf("a secret value is on the disk at byte %d", off)
		}
	}
}

// seen waits until the console holds s, anywhere: the lines of concurrent
// fetches and services come in any order.
func seen(t *testing.T, vm *qemu.VM, s string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(vm.Console(), s); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %q", timeout, s)
		}
	}
}

func randomValue(t *testing.T, prefix string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	p, err := qemu.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serveLoopback serves h on a 127.0.0.1 port until the test ends.
func serveLoopback(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// guestfwd builds testdata/guestfwd, the program qemu runs per guest
// connection.
func guestfwd(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "guestfwd")
	if out, err := exec.Command("go", "build", "-o", p, "./testdata/guestfwd").CombinedOutput(); err != nil {
		t.Fatalf("building guestfwd: %v\n%s", err, out)
	}
	return p
}

type serviceDigest struct {
	SHA256 string `json:"sha256"`
	Mode   string `json:"mode"`
	UID    uint32 `json:"uid"`
	Error  string `json:"error"`
}

func digest(t *testing.T, port int, p string) (int, serviceDigest) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/digest?path=%s", port, p))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d serviceDigest
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("digest of %s: %v", p, err)
	}
	return resp.StatusCode, d
}

func wantFile(t *testing.T, port int, p, value string, uid uint32) {
	t.Helper()
	sum := sha256.Sum256([]byte(value))
	code, d := digest(t, port, p)
	if code != http.StatusOK || d.SHA256 != hex.EncodeToString(sum[:]) || d.Mode != "-r--------" || d.UID != uid {
		t.Fatalf("%s: %d %+v, want the value's digest, -r-------- and uid %d", p, code, d, uid)
	}
}

// findInFile returns the offset of the first s in the file, or -1.
func findInFile(t *testing.T, p string, s []byte) int64 {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	keep := len(s) - 1
	var base int64
	n := 0
	for {
		m, err := io.ReadFull(f, buf[n:])
		if i := bytes.Index(buf[:n+m], s); i >= 0 {
			return base + int64(i)
		}
		if err != nil {
			return -1
		}
		copy(buf, buf[n+m-keep:n+m])
		base += int64(n + m - keep)
		n = keep
	}
}

// cidata makes a NoCloud config drive (vfat labelled CIDATA) holding the
// files, with mkfs.vfat and mcopy.
func cidata(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "cidata.img")
	cmds := [][]string{{"truncate", "-s", "8M", img}, {"mkfs.vfat", "-n", "CIDATA", img}}
	for name, value := range files {
		src := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(src, []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
		if d := filepath.Dir(name); d != "." {
			cmds = append(cmds, []string{"mmd", "-D", "s", "-i", img, "::" + d})
		}
		cmds = append(cmds, []string{"mcopy", "-i", img, src, "::" + name})
	}
	for _, args := range cmds {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return img
}
