// Command benchregistry serves an OCI registry on 127.0.0.1 for the
// side-by-side bench (scripts/bench/linuxkit): it pushes the named images
// from the local store into it, prints its address (host:port) on a line
// of its own, and serves until it is interrupted. Blobs live in a
// directory, not in memory (the bench pushes gigabytes).
//
//	benchregistry BLOBDIR IMAGE...
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-dev/bulkhead/builder/resolve"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchregistry:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 3 {
		return fmt.Errorf("usage: benchregistry BLOBDIR IMAGE...")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(registry.NewDiskBlobHandler(os.Args[1])))
	srv := &http.Server{Handler: reg}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	if err := push(ctx, addr, os.Args[2:]); err != nil {
		return err
	}
	fmt.Println(addr)
	<-ctx.Done()
	return nil
}

// push copies each image from the local store to addr under its own
// repository and tag.
func push(ctx context.Context, addr string, images []string) error {
	dir, err := resolve.DefaultStoreDir()
	if err != nil {
		return err
	}
	store, err := resolve.OpenStore(dir)
	if err != nil {
		return err
	}
	for _, ref := range images {
		digest, ok, err := store.Lookup(ref)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s is not in the store %s", ref, dir)
		}
		img, err := store.Image(digest)
		if err != nil {
			return err
		}
		src, err := name.ParseReference(ref)
		if err != nil {
			return err
		}
		dst, err := name.ParseReference(addr + "/" + src.Context().RepositoryStr() + ":" + src.Identifier())
		if err != nil {
			return err
		}
		if err := remote.Write(dst, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return nil
}
