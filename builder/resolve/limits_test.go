package resolve

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-dev/bulkhead/internal/test/memtest"
)

// zeroLayer is a layer holding one file of size zero bytes, generated as it
// is read: the registry stores it gzip-compressed, a few hundred kilobytes
// for 128 MiB.
func zeroLayer(t *testing.T, name string, size int64) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
			if err == nil {
				_, err = io.CopyN(tw, zeros{}, size)
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func imageOf(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestLayerLimitsWhileDecompressing(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "bomb:1", imageOf(t, zeroLayer(t, "zero", 128<<20)))
	reg.push(t, "two:1", imageOf(t, zeroLayer(t, "a", 3<<20), zeroLayer(t, "b", 3<<20)))
	reg.push(t, "other:1", imageOf(t, zeroLayer(t, "c", 3<<20)))
	for _, tc := range []struct {
		name   string
		limits Limits
		refs   []string
		want   string
		limit  string
	}{
		{"layer", Limits{Layer: 16 << 20}, []string{"bomb:1"},
			`resolving image "HOST/bomb:1": layer 1 (sha256:`, "16 MiB"},
		{"image", Limits{Layer: 4 << 20, Image: 5 << 20}, []string{"two:1"},
			`resolving image "HOST/two:1": layer 2 (sha256:`, "5 MiB"},
		{"host", Limits{Host: 5 << 20}, []string{"other:1", "two:1"},
			`resolving image "HOST/two:1": layer 1 (sha256:`, "5 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			r := newResolver(t, WithStore(store), WithLimits(tc.limits), WithInsecureRegistries(reg.host))
			var refs []string
			for _, ref := range tc.refs {
				refs = append(refs, reg.host+"/"+ref)
			}
			var err error
			alloc := memtest.Allocated(func() {
				for _, ref := range refs { // in order, so the host total is known
					if _, err = r.Resolve(context.Background(), ref); err != nil {
						break
					}
				}
			})
			var le *LimitError
			want := strings.ReplaceAll(tc.want, "HOST", reg.host)
			if !errors.As(err, &le) || le.Limit != tc.name || !strings.HasPrefix(err.Error(), want) ||
				!strings.HasSuffix(err.Error(), "uncompressed size passes the "+tc.name+" limit of "+tc.limit+" (policy.limits."+tc.name+")") {
				t.Fatalf("error %v\nwant %s… %s limit", err, want, tc.name)
			}
			if alloc > 16*memtest.MiB {
				t.Errorf("allocated %d MiB", alloc/memtest.MiB)
			}
			t.Logf("allocated %.1f MiB: %v", float64(alloc)/memtest.MiB, err)
			ents, _ := os.ReadDir(filepath.Join(store.Dir(), "uncompressed", "sha256"))
			for _, e := range ents {
				if fi, _ := e.Info(); fi != nil && fi.Size() > tc.limits.Layer && tc.limits.Layer > 0 {
					t.Errorf("a layer over the limit stayed in the store: %s", e.Name())
				}
				if strings.HasPrefix(e.Name(), ".tmp-") {
					t.Errorf("temporary %s left in the store", e.Name())
				}
			}
		})
	}
}

func TestLimitReaderStopsOneBytePast(t *testing.T) {
	a := allowance{left: 10, over: &LimitError{Limit: "layer", Bytes: 10}}
	n, err := io.Copy(io.Discard, a.reader(bytes.NewReader(make([]byte, 1<<20))))
	if !errors.Is(err, ErrLimit) || n != 11 {
		t.Fatalf("read %d bytes, %v; want 11 and the limit error", n, err)
	}
	n, err = io.Copy(io.Discard, a.reader(bytes.NewReader(make([]byte, 10))))
	if err != nil || n != 10 {
		t.Fatalf("at the limit: %d bytes, %v", n, err)
	}
}

func TestDeclaredLayerSizeRefusedBeforeDownload(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "big:1", imageOf(t, zeroLayer(t, "zero", 8<<20)))
	reg.resetCounts()
	r := newResolver(t, WithStore(newStore(t)), WithLimits(Limits{Layer: 4 << 10}), WithInsecureRegistries(reg.host))
	_, err := r.Resolve(context.Background(), reg.host+"/big:1")
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "layer" || !strings.Contains(err.Error(), "the manifest declares") {
		t.Fatalf("error %v", err)
	}
	if n := reg.count("GET", "/blobs/"); n != 0 {
		t.Errorf("%d blob downloads before refusing", n)
	}
}
