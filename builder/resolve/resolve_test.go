package resolve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/bulkhead-dev/bulkhead/internal/stamp"
)

func TestPullIntoEmptyStore(t *testing.T) {
	reg := newRegistry(t)
	layers := [][]byte{tarOf(t, "etc/os-release", "ID=test\n"), tarOf(t, "bin/app", "#!/bin/app\n", "etc/app.conf", "x=1\n")}
	img := testImage(t, "amd64", layers...)
	want := reg.push(t, "team/app:v1", img)

	store := newStore(t)
	r := newResolver(t, WithStore(store))
	ref := reg.host + "/team/app:v1"
	got, err := r.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want || got.Index != nil || got.Ref != ref || got.Name != ref {
		t.Fatalf("resolved %+v, want digest %s name %s", got, want, ref)
	}
	if got.Config.Architecture != "amd64" || got.Config.Config.Cmd[0] != "/bin/amd64" {
		t.Fatalf("config not carried: %+v", got.Config)
	}
	diffIDs, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != len(layers) {
		t.Fatalf("%d layers, want %d", len(got.Layers), len(layers))
	}
	for i, l := range got.Layers {
		if l.DiffID != diffIDs.RootFS.DiffIDs[i] {
			t.Errorf("layer %d diff id %s, want %s", i, l.DiffID, diffIDs.RootFS.DiffIDs[i])
		}
		if wantPath := filepath.Join(store.Dir(), "uncompressed", "sha256", l.DiffID.Hex); l.Path != wantPath {
			t.Errorf("layer %d at %s, want %s", i, l.Path, wantPath)
		}
		b, err := os.ReadFile(l.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, layers[i]) || l.Size != int64(len(layers[i])) {
			t.Errorf("layer %d: uncompressed file differs from the pushed tar (size %d)", i, l.Size)
		}
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != l.DiffID.Hex {
			t.Errorf("layer %d: file does not hash to its diff id", i)
		}
		if _, err := os.Stat(filepath.Join(store.Dir(), "blobs", "sha256", l.Digest.Hex)); err != nil {
			t.Errorf("layer %d: compressed blob missing: %v", i, err)
		}
	}
	if h, ok, err := store.Lookup(ref); err != nil || !ok || h != want {
		t.Fatalf("Lookup = %s %v %v, want %s", h, ok, err, want)
	}
	// The store is an OCI layout that go-containerregistry itself reads.
	ii, err := store.Layout().ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[AnnotationRefName] != ref ||
		im.Manifests[0].Annotations[AnnotationSource] != SourceRegistry {
		t.Fatalf("index.json entries: %+v", im.Manifests)
	}
	// The stored image reads back with the same digest and layers.
	stored, err := store.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	if d := digestOf(t, stored); d != want {
		t.Fatalf("stored image digest %s, want %s", d, want)
	}
}

func TestDockerExpansion(t *testing.T) {
	for in, want := range map[string]string{
		"redis":                "docker.io/library/redis:latest",
		"foo/bar":              "docker.io/foo/bar:latest",
		"foo/bar:1.2":          "docker.io/foo/bar:1.2",
		"example.com:5000/a/b": "example.com:5000/a/b:latest",
		"redis@sha256:" + strings.Repeat("a", 64): "docker.io/library/redis@sha256:" + strings.Repeat("a", 64),
	} {
		ref, err := parseRef(in, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ref.name != want {
			t.Errorf("%s expands to %s, want %s", in, ref.name, want)
		}
	}
}

func TestSecondResolveUsesStoreWithoutNetwork(t *testing.T) {
	reg := newRegistry(t)
	want := reg.push(t, "app:v1", testImage(t, "amd64", tarOf(t, "a", "a")))
	store := newStore(t)
	byDigest := reg.host + "/app@" + want.String()
	if _, err := newResolver(t, WithStore(store)).Resolve(context.Background(), byDigest); err != nil {
		t.Fatal(err)
	}
	reg.srv.Close()
	got, err := newResolver(t, WithStore(store)).Resolve(context.Background(), byDigest)
	if err != nil {
		t.Fatalf("resolving again with the registry gone: %v", err)
	}
	if got.Digest != want || got.Name != byDigest {
		t.Fatalf("got %s %s", got.Name, got.Digest)
	}
}

func TestTagFromStoreOfflineAndMovedTagOnline(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.host + "/app:stable"
	d1 := reg.push(t, "app:stable", testImage(t, "amd64", tarOf(t, "v", "1")))
	store := newStore(t)
	ctx := context.Background()
	if _, err := newResolver(t, WithStore(store)).Resolve(ctx, ref); err != nil {
		t.Fatal(err)
	}
	d2 := reg.push(t, "app:stable", testImage(t, "amd64", tarOf(t, "v", "2")))

	// Offline: what the store recorded, no request.
	reg.resetCounts()
	got, err := newResolver(t, WithStore(store), WithOffline(true)).Resolve(ctx, ref)
	if err != nil || got.Digest != d1 {
		t.Fatalf("offline: %v %v, want %s", got, err, d1)
	}
	if n := reg.count("GET", "/v2/"); n != 0 {
		t.Fatalf("offline resolution made %d requests", n)
	}
	// Online: the registry says where the tag is now.
	got, err = newResolver(t, WithStore(store)).Resolve(ctx, ref)
	if err != nil || got.Digest != d2 {
		t.Fatalf("online: %v %v, want %s", got, err, d2)
	}
	if h, _, _ := store.Lookup(ref); h != d2 {
		t.Fatalf("store entry %s after the tag moved, want %s", h, d2)
	}
	// Offline and never seen: a clear error.
	_, err = newResolver(t, WithStore(store), WithOffline(true)).Resolve(ctx, reg.host+"/other:1")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("offline miss: %v", err)
	}
}

func TestLocallyBuiltImageNeverAsksRegistry(t *testing.T) {
	store := newStore(t)
	img := testImage(t, "amd64", tarOf(t, "sbin/init", "init"))
	want, err := store.WriteImage("example.com/bulkhead/init:dev", img)
	if err != nil {
		t.Fatal(err)
	}
	// A transport that fails the test if used.
	r := newResolver(t, WithStore(store), WithTransport(failTransport{t}))
	got, err := r.Resolve(context.Background(), "example.com/bulkhead/init:dev")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want || len(got.Layers) != 1 {
		t.Fatalf("got %+v", got)
	}
	// Writing again under the same name replaces the entry.
	img2 := testImage(t, "amd64", tarOf(t, "sbin/init", "init v2"))
	want2, err := store.WriteImage("example.com/bulkhead/init:dev", img2)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := store.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != want2 || idx.Manifests[0].Annotations[AnnotationSource] != SourceLocal {
		t.Fatalf("index.json after replacing: %+v", idx.Manifests)
	}
}

type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request %s %s", req.Method, req.URL)
	return nil, errors.New("no network in this test")
}

func TestMissingImage(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.host + "/nothere:1.0"
	_, err := newResolver(t, WithStore(newStore(t))).Resolve(context.Background(), ref)
	var rerr *Error
	if !errors.As(err, &rerr) || rerr.Ref != ref {
		t.Fatalf("error %v is not a *Error for %s", err, ref)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("error %v is not ErrNotFound", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, fmt.Sprintf("resolving image %q: ", ref)) || !strings.Contains(msg, "image not found in registry "+reg.host) {
		t.Fatalf("unclear message: %s", msg)
	}
}

func TestUnreachableRegistry(t *testing.T) {
	reg := newRegistry(t)
	reg.srv.Close()
	ref := reg.host + "/app:v1"
	_, err := newResolver(t, WithStore(newStore(t))).Resolve(context.Background(), ref)
	if err == nil {
		t.Fatal("resolved from a closed registry")
	}
	msg := err.Error()
	if !strings.Contains(msg, fmt.Sprintf("resolving image %q", ref)) || !strings.Contains(msg, "registry "+reg.host+" is unreachable") {
		t.Fatalf("unclear message: %s", msg)
	}
}

// flipByte inverts one byte in the middle of a file.
func flipByte(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptStoreIsDetected(t *testing.T) {
	reg := newRegistry(t)
	img := testImage(t, "amd64", tarOf(t, "etc/passwd", strings.Repeat("root:x:0:0::/root:/sbin/nologin\n", 50)))
	want := reg.push(t, "app:v1", img)
	ref := reg.host + "/app@" + want.String()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layerDigest, _ := layers[0].Digest()
	cfgDigest, _ := img.ConfigName()
	diffID, _ := layers[0].DiffID()

	for _, tc := range []struct {
		what, rel string
		blob      v1.Hash
	}{
		{"layer blob", filepath.Join("blobs", "sha256", layerDigest.Hex), layerDigest},
		{"config blob", filepath.Join("blobs", "sha256", cfgDigest.Hex), cfgDigest},
		{"manifest blob", filepath.Join("blobs", "sha256", want.Hex), want},
		{"uncompressed layer", filepath.Join("uncompressed", "sha256", diffID.Hex), diffID},
	} {
		t.Run(tc.what, func(t *testing.T) {
			store := newStore(t)
			if _, err := newResolver(t, WithStore(store)).Resolve(context.Background(), ref); err != nil {
				t.Fatal(err)
			}
			flipByte(t, filepath.Join(store.Dir(), tc.rel))
			_, err := newResolver(t, WithStore(store), WithOffline(true)).Resolve(context.Background(), ref)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("corrupt %s not detected: %v", tc.what, err)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", ref)) || !strings.Contains(msg, tc.blob.String()) {
				t.Fatalf("error does not name the image and the blob: %s", msg)
			}
		})
	}
}

func TestCorruptLayerBeforeUnpacking(t *testing.T) {
	// The compressed blob is corrupted before its uncompressed tar exists:
	// the decompression pass itself must catch it.
	reg := newRegistry(t)
	img := testImage(t, "amd64", tarOf(t, "data", strings.Repeat("0123456789", 1000)))
	want := reg.push(t, "app:v1", img)
	store := newStore(t)
	if _, err := store.putImage(img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	flipByte(t, store.blobPath(d))
	_, err := newResolver(t, WithStore(store), WithOffline(true)).Resolve(context.Background(), reg.host+"/app@"+want.String())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), d.String()) {
		t.Fatalf("corrupt blob not reported: %v", err)
	}
	diffID, _ := layers[0].DiffID()
	if _, err := os.Stat(store.uncompressedPath(diffID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an uncompressed file was kept for a corrupt blob: %v", err)
	}
}

func TestIndexPicksPlatform(t *testing.T) {
	reg := newRegistry(t)
	idx, amd, arm := twoPlatforms(t)
	idxDigest := reg.pushIndex(t, "multi:1", idx)
	ref := reg.host + "/multi:1"
	store := newStore(t)
	ctx := context.Background()

	got, err := newResolver(t, WithStore(store)).Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digestOf(t, amd) || got.Index == nil || *got.Index != idxDigest || got.Config.Architecture != "amd64" {
		t.Fatalf("default platform: got %s (index %v, arch %s)", got.Digest, got.Index, got.Config.Architecture)
	}
	got, err = newResolver(t, WithStore(store), WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"})).Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digestOf(t, arm) || *got.Index != idxDigest || got.Config.Architecture != "arm64" {
		t.Fatalf("arm64: got %s (arch %s)", got.Digest, got.Config.Architecture)
	}
	// Both platforms are now in the store: offline works for each.
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		if _, err := newResolver(t, WithStore(store), WithOffline(true), WithPlatform(p)).Resolve(ctx, ref); err != nil {
			t.Fatalf("offline %s: %v", p, err)
		}
	}
	// A platform the index lacks.
	_, err = newResolver(t, WithStore(store), WithPlatform(v1.Platform{OS: "linux", Architecture: "s390x"})).Resolve(ctx, ref)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no image for linux/s390x") {
		t.Fatalf("missing platform: %v", err)
	}
	// A single-platform image for another architecture is refused.
	reg.push(t, "armonly:1", arm)
	_, err = newResolver(t, WithStore(store)).Resolve(ctx, reg.host+"/armonly:1")
	if err == nil || !strings.Contains(err.Error(), "is for linux/arm64, not linux/amd64") {
		t.Fatalf("wrong-platform image: %v", err)
	}
}

func TestResolveAll(t *testing.T) {
	reg := newRegistry(t)
	var refs []string
	var want []v1.Hash
	for i := range 5 {
		d := reg.push(t, fmt.Sprintf("svc%d:1", i), testImage(t, "amd64", tarOf(t, "id", fmt.Sprint(i))))
		refs = append(refs, fmt.Sprintf("%s/svc%d:1", reg.host, i))
		want = append(want, d)
	}
	// Duplicates, a missing image and one by digest.
	solo := reg.push(t, "svc5:1", testImage(t, "amd64", tarOf(t, "id", "5")))
	refs = append(refs, refs[0], reg.host+"/missing:1", refs[3], reg.host+"/svc5@"+solo.String())
	want = append(want, want[0], v1.Hash{}, want[3], solo)
	reg.resetCounts()

	imgs, err := newResolver(t, WithStore(newStore(t))).ResolveAll(context.Background(), refs)
	var rerr *Error
	if !errors.As(err, &rerr) || rerr.Ref != reg.host+"/missing:1" || strings.Count(err.Error(), "resolving image") != 1 {
		t.Fatalf("want one error for the missing image, got %v", err)
	}
	for i, img := range imgs {
		if want[i] == (v1.Hash{}) {
			if img != nil {
				t.Errorf("%d: image for a missing reference", i)
			}
			continue
		}
		if img == nil || img.Digest != want[i] || img.Ref != refs[i] {
			t.Errorf("%d: got %+v, want %s for %s", i, img, want[i], refs[i])
		}
	}
	for i := range 6 {
		if n := reg.count("GET", fmt.Sprintf("/svc%d/manifests/", i)); n != 1 {
			t.Errorf("svc%d: manifest fetched %d times", i, n)
		}
		if n := reg.count("GET", fmt.Sprintf("/svc%d/blobs/", i)); n != 2 {
			t.Errorf("svc%d: %d blob fetches, want 2 (config and layer)", i, n)
		}
	}
}

func TestLayoutReferences(t *testing.T) {
	dir := t.TempDir()
	specDir := filepath.Join(dir, "spec")
	if err := os.Mkdir(specDir, 0o755); err != nil {
		t.Fatal(err)
	}
	one := testImage(t, "amd64", tarOf(t, "one", "1"))
	two := testImage(t, "amd64", tarOf(t, "two", "2"))
	idx, amd, arm := twoPlatforms(t)
	writeLayout(t, filepath.Join(dir, "single"), "", one)
	writeLayout(t, filepath.Join(dir, "many"), "v1", one, "v2", two, "multi", idx)

	store := newStore(t)
	r := newResolver(t, WithStore(store), WithDir(specDir), WithTransport(failTransport{t}))
	arm64 := newResolver(t, WithStore(store), WithDir(specDir), WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	ctx := context.Background()
	for _, tc := range []struct {
		r    *Resolver
		ref  string
		want v1.Image
	}{
		{r, "oci:../single", one},
		{r, "oci:" + filepath.Join(dir, "single"), one},
		{r, "oci:../many:v2", two},
		{r, "oci:../many@" + digestOf(t, one).String(), one},
		{r, "oci:../many:multi", amd},
		{arm64, "oci:../many:multi", arm},
	} {
		got, err := tc.r.Resolve(ctx, tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if got.Digest != digestOf(t, tc.want) || len(got.Layers) != 1 {
			t.Fatalf("%s: got %s", tc.ref, got.Digest)
		}
		if _, err := os.Stat(got.Layers[0].Path); err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
	}
	for ref, msg := range map[string]string{
		"oci:../many:v3": `no image named "v3"`,
		"oci:../many":    "holds 3 images",
		"oci:../absent":  "opening OCI layout",
	} {
		_, err := r.Resolve(ctx, ref)
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), ref) {
			t.Errorf("%s: error %v, want %q", ref, err, msg)
		}
	}
}

func TestStoreIndexUnderConcurrentWriters(t *testing.T) {
	// Two Store values on one directory stand in for two processes: only
	// the file lock keeps their index.json updates from losing each other.
	dir := t.TempDir()
	a, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t, "amd64", tarOf(t, "x", "x"))
	errs := make(chan error, 40)
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		go func() {
			_, err := s.WriteImage(fmt.Sprintf("example.com/img%02d:1", i), img)
			errs <- err
		}()
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 40 {
		t.Fatalf("index.json has %d entries, want 40", len(idx.Manifests))
	}
	for i, d := range idx.Manifests {
		if n := d.Annotations[AnnotationRefName]; n != fmt.Sprintf("example.com/img%02d:1", i) {
			t.Fatalf("entry %d is %s: entries are not sorted by name", i, n)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestDefaultStoreDir(t *testing.T) {
	t.Setenv("BULKHEAD_STORE", "/x/store")
	if d, _ := DefaultStoreDir(); d != "/x/store" {
		t.Errorf("BULKHEAD_STORE: %s", d)
	}
	t.Setenv("BULKHEAD_STORE", "")
	t.Setenv("XDG_CACHE_HOME", "/cache")
	if d, _ := DefaultStoreDir(); d != "/cache/bulkhead/store" {
		t.Errorf("XDG_CACHE_HOME: %s", d)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, _ := DefaultStoreDir(); d != "/home/u/.cache/bulkhead/store" {
		t.Errorf("HOME: %s", d)
	}
}

// writeLayout writes an OCI layout holding (tag, image or index) pairs; an
// empty tag adds no ref.name annotation.
func writeLayout(t *testing.T, dir string, entries ...any) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(entries); i += 2 {
		var opts []layout.Option
		if tag := entries[i].(string); tag != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{AnnotationRefName: tag}))
		}
		switch e := entries[i+1].(type) {
		case v1.Image:
			err = p.AppendImage(e, opts...)
		case v1.ImageIndex:
			err = p.AppendIndex(e, opts...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestInsecureRegistryAndTransport(t *testing.T) {
	reg := newRegistry(t)
	want := reg.push(t, "app:v1", testImage(t, "amd64", tarOf(t, "a", "a")))
	// A registry name that is not loopback, reached through a transport
	// that dials the test registry: plain HTTP only when allowed.
	dial := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, reg.host)
	}}
	ref := "registry.test:5000/app:v1"
	_, err := newResolver(t, WithStore(newStore(t)), WithTransport(dial)).Resolve(context.Background(), ref)
	if err == nil {
		t.Fatal("reached a non-loopback registry over plain HTTP without being allowed")
	}
	got, err := newResolver(t, WithStore(newStore(t)), WithTransport(dial), WithInsecureRegistries("registry.test:5000")).Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want {
		t.Fatalf("got %s, want %s", got.Digest, want)
	}
}

func TestStampedStoreFilesAreNotHashedAgain(t *testing.T) {
	reg := newRegistry(t)
	img := testImage(t, "amd64", tarOf(t, "etc/passwd", strings.Repeat("root:x:0:0::/root:/sbin/nologin\n", 50)))
	ref := reg.host + "/app@" + reg.push(t, "app:v1", img).String()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layerDigest, _ := layers[0].Digest()
	diffID, _ := layers[0].DiffID()
	ctx := context.Background()
	store := newStore(t)
	// A clock past the settle margin, so what this test writes can be
	// stamped at once.
	book := stamp.Open(store.StampDir(), filepath.Join(t.TempDir(), "stamp.key"),
		stamp.WithClock(func() time.Time { return time.Now().Add(time.Minute) }))
	store.stamps = func() *stamp.Book { return book }
	resolveOffline := func() error {
		_, err := newResolver(t, WithStore(store), WithOffline(true)).Resolve(ctx, ref)
		return err
	}
	if _, err := newResolver(t, WithStore(store)).Resolve(ctx, ref); err != nil {
		t.Fatal(err)
	}
	before := store.hashed.Load()
	if err := resolveOffline(); err != nil {
		t.Fatal(err)
	}
	if n := store.hashed.Load() - before; n != 2 {
		t.Fatalf("the first resolve from the store hashed %d files, want the layer blob and its tar", n)
	}
	before = store.hashed.Load()
	if err := resolveOffline(); err != nil {
		t.Fatal(err)
	}
	if n := store.hashed.Load() - before; n != 0 {
		t.Fatalf("a resolve with every file stamped hashed %d files", n)
	}
	// A changed file loses its stamp and is caught by its digest.
	for _, p := range []string{store.uncompressedPath(diffID), store.blobPath(layerDigest)} {
		flipByte(t, p)
		if err := resolveOffline(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s changed under its stamp: %v", p, err)
		}
		flipByte(t, p)
	}
	if err := resolveOffline(); err != nil {
		t.Fatalf("the files put back: %v", err)
	}
}
