package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// TestImageStoreVerbs walks the store verbs as a user would: ls with
// sizes (a stale entry hidden), rm, prune, save, load into another store,
// push to a registry on 127.0.0.1 and pull back into a third.
func TestImageStoreVerbs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	store, err := resolve.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	for _, n := range []string{"example.com/web:1", "example.com/db:1", "example.com/broken:1"} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		d, err := store.WriteImage(n, img)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	// broken loses its manifest: a stale entry.
	if err := os.Remove(filepath.Join(dir, "blobs", "sha256", digests[2].Hex)); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI("image", "ls", "--store", dir)
	if code != 0 || !strings.Contains(out, "example.com/web:1") || strings.Contains(out, "broken") ||
		!strings.Contains(errOut, "1 stale entries hidden") || !strings.Contains(out, " KiB ") {
		t.Errorf("image ls: exit %d\n%s%s", code, out, errOut)
	}
	out, _, _ = runCLI("image", "ls", "--store", dir, "--json")
	var ents []resolve.Entry
	if err := json.Unmarshal([]byte(out), &ents); err != nil || len(ents) != 3 || ents[0].Name != "example.com/broken:1" || ents[0].Complete || ents[2].Size < 4096 {
		t.Errorf("image ls --json: %v %+v", err, ents)
	}
	if _, errOut, code := runCLI("image", "ls", "--store", filepath.Join(dir, "nope")); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("image ls of a missing store: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Error("image ls created the missing store")
	}

	tarPath := filepath.Join(t.TempDir(), "web.tar")
	if out, errOut, code := runCLI("image", "save", "--store", dir, "-o", tarPath, "example.com/web:1"); code != 0 {
		t.Fatalf("image save: exit %d %s%s", code, out, errOut)
	}
	if out, errOut, code := runCLI("image", "rm", "example.com/web:1", "--store", dir); code != 0 || out != "removed example.com/web:1\n" {
		t.Errorf("image rm: exit %d %q %q", code, out, errOut)
	}
	// web's manifest, config and 2 layers; broken's config and 2 layers.
	out, errOut, code = runCLI("image", "prune", "--store", dir, "--grace", "0s")
	if code != 0 || !strings.Contains(out, "dropped stale example.com/broken:1") || !strings.Contains(out, "deleted 7 unused files") {
		t.Errorf("image prune: exit %d %q %q", code, out, errOut)
	}
	out, _, _ = runCLI("image", "ls", "--store", dir)
	if strings.Contains(out, "web") || !strings.Contains(out, "example.com/db:1") {
		t.Errorf("image ls after rm and prune:\n%s", out)
	}

	other := filepath.Join(t.TempDir(), "other")
	if out, errOut, code := runCLI("image", "load", tarPath, "--store", other); code != 0 || out != "loaded example.com/web:1\n" {
		t.Fatalf("image load: exit %d %q %q", code, out, errOut)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/fleet/web:1"
	if out, errOut, code := runCLI("image", "push", "--store", other, "example.com/web:1", ref); code != 0 || out != "pushed "+ref+" "+digests[0].String()+"\n" {
		t.Fatalf("image push: exit %d %q %q", code, out, errOut)
	}
	third := filepath.Join(t.TempDir(), "third")
	if out, errOut, code := runCLI("image", "pull", ref, "--store", third); code != 0 || out != "pulled "+ref+" "+digests[0].String()+"\n" {
		t.Fatalf("image pull: exit %d %q %q", code, out, errOut)
	}
}
