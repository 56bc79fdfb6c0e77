// Command benchimage writes a deterministic image of about 100 MB of file
// content (bulkhead/bench-data:100m) into the local store, for `make bench`.
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

const (
	files    = 2000
	fileSize = 50 << 10 // 2000 x 50 KiB = ~100 MB
	name     = "bulkhead/bench-data:100m"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchimage:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := resolve.DefaultStoreDir()
	if err != nil {
		return err
	}
	store, err := resolve.OpenStore(dir)
	if err != nil {
		return err
	}
	if _, ok, err := store.Lookup(name); err != nil || ok {
		return err
	}
	tmp, err := os.CreateTemp("", "benchimage-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeTar(tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromFile(tmp.Name())
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{Architecture: "amd64", OS: "linux",
		Config: v1.Config{Cmd: []string{"/data/0000"}}, RootFS: mustRootFS(img)})
	if err != nil {
		return err
	}
	d, err := store.WriteImage(name, img)
	if err != nil {
		return err
	}
	fmt.Println(name, d)
	return nil
}

func mustRootFS(img v1.Image) v1.RootFS {
	cf, err := img.ConfigFile()
	if err != nil {
		panic(err)
	}
	return cf.RootFS
}

// writeTar writes files of half-compressible deterministic content.
func writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, fileSize)
	for i := range files {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			if j%16 == 0 {
				v &= 0x0f0f0f0f0f0f0f0f
			}
			for k := 0; k < 8 && j+k < len(buf); k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		hdr := &tar.Header{Name: fmt.Sprintf("data/%04d", i), Mode: 0o644, Size: fileSize, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, bytes.NewReader(buf)); err != nil {
			return err
		}
	}
	return tw.Close()
}
