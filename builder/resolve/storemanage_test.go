package resolve

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func blobCount(t *testing.T, s *Store) int {
	t.Helper()
	ents, err := os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestEntriesRemovePrune: entries carry their sizes; a removed entry's
// blobs go at prune, a shared one's stay; an entry whose blob went
// missing is stale, hidden as incomplete and dropped by prune.
func TestEntriesRemovePrune(t *testing.T) {
	s := newStore(t)
	shared := tarOf(t, "shared", "shared layer")
	a, b := testImage(t, "amd64", shared, tarOf(t, "a", "a only")), testImage(t, "amd64", shared, tarOf(t, "b", "b only"))
	if _, err := s.WriteImage("example.com/a:1", a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteImage("example.com/b:1", b); err != nil {
		t.Fatal(err)
	}
	ents, err := s.Entries()
	if err != nil || len(ents) != 2 || !ents[0].Complete || ents[0].Size == 0 {
		t.Fatalf("Entries = %+v, %v", ents, err)
	}
	m, _ := a.Manifest()
	var want int64 = m.Config.Size
	for _, l := range m.Layers {
		want += l.Size
	}
	raw, _ := a.RawManifest()
	if want += int64(len(raw)); ents[0].Size != want {
		t.Errorf("size of a = %d, want %d", ents[0].Size, want)
	}
	before := blobCount(t, s)
	if err := s.Remove("example.com/nope:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove of a missing name: %v", err)
	}
	if err := s.Remove("example.com/a:1"); err != nil {
		t.Fatal(err)
	}
	p, err := s.Prune(0, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// a's manifest, config and own layer go; the shared layer stays.
	if p.Files != 3 || blobCount(t, s) != before-3 || len(p.Entries) != 0 {
		t.Errorf("prune after rm: %+v, %d blobs left of %d", p, blobCount(t, s), before)
	}
	if _, err := s.Image(mustDigest(t, b)); err != nil {
		t.Errorf("b after prune: %v", err)
	}
	// A blob of b goes missing: b is stale, and prune drops it.
	bm, _ := b.Manifest()
	if err := os.Remove(s.blobPath(bm.Layers[1].Digest)); err != nil {
		t.Fatal(err)
	}
	if ents, _ := s.Entries(); len(ents) != 1 || ents[0].Complete {
		t.Errorf("entries with a missing blob: %+v", ents)
	}
	if p, err = s.Prune(time.Hour, time.Now()); err != nil || !slices.Equal(p.Entries, []string{"example.com/b:1"}) || p.Files != 0 {
		t.Errorf("prune within the grace: %+v %v (the blobs are new: kept)", p, err)
	}
	if p, err = s.Prune(0, time.Now().Add(time.Second)); err != nil || p.Files != 3 || blobCount(t, s) != 0 {
		t.Errorf("prune: %+v %v, %d blobs left", p, err, blobCount(t, s))
	}
}

// TestPruneLayerCache: a layer's cache directory goes at prune with the
// layer (and one of a layer the store never had), a live layer's stays;
// cached initrd archives and stamps go too.
func TestPruneLayerCache(t *testing.T) {
	s := newStore(t)
	shared := tarOf(t, "shared", "shared layer")
	a, b := testImage(t, "amd64", shared, tarOf(t, "a", "a only")), testImage(t, "amd64", shared, tarOf(t, "b", "b only"))
	for name, img := range map[string]v1.Image{"example.com/a:1": a, "example.com/b:1": b} {
		if _, err := s.WriteImage(name, img); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	sharedID, aID := cfg.RootFS.DiffIDs[0], cfg.RootFS.DiffIDs[1]
	unknown := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	for _, h := range []v1.Hash{sharedID, aID, unknown} {
		d := filepath.Join(s.LayerCacheDir(), h.Hex)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "scan-x"), []byte("entry"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A cached initrd archive belongs to no image: prune deletes it.
	if err := os.MkdirAll(s.ArchiveCacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	// Nor do the record of its last use and the stamps.
	archive := filepath.Join(s.ArchiveCacheDir(), unknown.Hex)
	used := filepath.Join(s.ArchiveCacheDir(), "used", unknown.Hex)
	stampFile := filepath.Join(s.StampDir(), unknown.Hex)
	for _, p := range []string{archive, used, stampFile} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove("example.com/a:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(0, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for h, want := range map[v1.Hash]bool{sharedID: true, aID: false, unknown: false} {
		_, err := os.Stat(filepath.Join(s.LayerCacheDir(), h.Hex, "scan-x"))
		if got := err == nil; got != want {
			t.Errorf("cache of layer %s kept = %v, want %v", h, got, want)
		}
	}
	for _, p := range []string{archive, used, stampFile} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("prune kept %s", p)
		}
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSaveLoadPushPull: a saved tar is an OCI layout go-containerregistry
// reads, the same bytes twice; loading it into another store gives the
// same digests; a push to a registry on 127.0.0.1 and a pull back give the
// image byte for byte.
func TestSaveLoadPushPull(t *testing.T) {
	s := newStore(t)
	img := testImage(t, "amd64", tarOf(t, "hello.txt", "hello"))
	digest, err := s.WriteImage("example.com/hello:dev", img)
	if err != nil {
		t.Fatal(err)
	}
	var tar1, tar2 bytes.Buffer
	if err := s.Save(&tar1, "example.com/hello:dev"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(&tar2, "example.com/hello:dev"); err != nil || !bytes.Equal(tar1.Bytes(), tar2.Bytes()) {
		t.Errorf("two saves differ (%v)", err)
	}
	if err := s.Save(&tar2, "example.com/nope:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("save of a missing name: %v", err)
	}
	// go-containerregistry reads the untarred layout and finds the image whole.
	dir := t.TempDir()
	untar := exec.Command("tar", "-xf", "-", "-C", dir)
	untar.Stdin = bytes.NewReader(tar1.Bytes())
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	lidx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	limg, err := lidx.Image(digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(limg); err != nil {
		t.Errorf("the saved layout's image: %v", err)
	}
	other := newStore(t)
	names, err := other.Load(bytes.NewReader(tar1.Bytes()))
	if err != nil || !slices.Equal(names, []string{"example.com/hello:dev"}) {
		t.Fatalf("Load = %v, %v", names, err)
	}
	if h, ok, _ := other.Lookup("example.com/hello:dev"); !ok || h != digest {
		t.Errorf("loaded digest %v, want %v", h, digest)
	}
	if _, err := other.Image(digest); err != nil {
		t.Errorf("loaded image: %v", err)
	}
	// A flipped byte in a blob is refused, and nothing is recorded.
	bad := bytes.Clone(tar1.Bytes())
	at := bytes.Index(bad, []byte(`"architecture"`))
	if at < 0 {
		t.Fatal("no config in the tar")
	}
	bad[at+2] ^= 1
	third := newStore(t)
	if _, err := third.Load(bytes.NewReader(bad)); err == nil {
		t.Error("a corrupt tar loaded")
	}
	if n, _ := third.Names(); len(n) != 0 {
		t.Errorf("a failed load recorded %v", n)
	}

	reg := newRegistry(t)
	to := reg.host + "/fleet/hello:1"
	if got, err := s.Push(context.Background(), "example.com/hello:dev", to, authn.DefaultKeychain); err != nil || got != digest {
		t.Fatalf("Push = %v, %v", got, err)
	}
	ref, _ := name.ParseReference(to)
	pulled, err := remote.Image(ref)
	if err != nil || mustDigest(t, pulled) != digest {
		t.Fatalf("the registry holds %v (%v), want %s", pulled, err, digest)
	}
	fresh := newStore(t)
	got, err := newResolver(t, WithStore(fresh)).Resolve(context.Background(), to)
	if err != nil || got.Digest != digest {
		t.Fatalf("pull back: %v, %v", got, err)
	}
}

func TestOpenExistingStore(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := OpenExistingStore(missing); err == nil || err.Error() != "image store "+missing+" does not exist (bulkhead image build or bulkhead image pull fills one)" {
		t.Errorf("OpenExistingStore(missing) = %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("OpenExistingStore created the directory")
	}
	if _, err := OpenExistingStore(newStore(t).Dir()); err != nil {
		t.Error(err)
	}
}
