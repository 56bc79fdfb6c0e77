// Command benchimage writes a deterministic image of about SIZE MB of file
// content (bulkhead/bench-data:SIZEm, 50 KiB files; default 100) into the
// local store, for `make bench`: benchimage [SIZE].
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

// fileSize is each file's: 100 MB is 2000 files.
const fileSize = 50 << 10

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchimage:", err)
		os.Exit(1)
	}
}

func run() error {
	mb := 100
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 1 || n > 100_000 {
			return fmt.Errorf("size %q: want megabytes, 1 to 100000", os.Args[1])
		}
		mb = n
	}
	name := fmt.Sprintf("bulkhead/bench-data:%dm", mb)
	files := mb * 20 // 100 MB: 2000 files
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
	if err := writeTar(tmp, files); err != nil {
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
func writeTar(w io.Writer, files int) error {
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
