package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/secureboot"
)

func securebootCommand() command {
	return groupCommand("secureboot", "make Secure Boot keys (secureboot keys: PK, KEK, db and the .auth files that enroll them)", []subcommand{
		{"keys", "make PK, KEK and db and the signed .auth files that enroll them", runSecurebootKeys},
	})
}

func runSecurebootKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("secureboot keys", "[--owner NAME] DIR", stderr)
	owner := fs.String("owner", "bulkhead", "the name in the certificates' subjects (\"NAME PK\", \"NAME KEK\", \"NAME db\")")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: give one output directory", errUsage)
	}
	dir := fs.Arg(0)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	ks, err := secureboot.GenerateKeys(*owner, now.Add(-time.Hour))
	if err != nil {
		return err
	}
	auth, err := secureboot.EnrollFiles(ks, now)
	if err != nil {
		return err
	}
	var written []string
	write := func(name string, b []byte, mode os.FileMode) error {
		p := filepath.Join(dir, name)
		if err := writeNew(p, b, mode); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return err
		}
		written = append(written, p)
		return nil
	}
	for _, k := range []*secureboot.Key{ks.PK, ks.KEK, ks.DB} {
		if err := write(k.Name+".key", k.KeyPEM(), 0o600); err != nil {
			return err
		}
		if err := write(k.Name+".crt", k.CertPEM(), 0o644); err != nil {
			return err
		}
		if err := write(k.Name+".auth", auth[k.Name+".auth"], 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "PK, KEK and db in %s: sign with --secureboot-key %s --secureboot-cert %s; enroll with --secureboot-enroll %s\n",
		dir, filepath.Join(dir, "db.key"), filepath.Join(dir, "db.crt"), dir)
	return nil
}
