package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

func verifyCommand() command {
	return command{
		name:    "verify",
		summary: "check signed outputs against a public key",
		run:     runVerify,
	}
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "--key PUB DIR | --secureboot --cert DB.CRT DISK.img", stderr)
	keyPath := fs.String("key", "", "public key (PEM) the outputs must be signed with")
	sb := fs.Bool("secureboot", false, "check a raw-efi disk instead: systemd-boot and every UKI signed for Secure Boot with --cert, and print each UKI's predicted PCR 11")
	sbCert := fs.String("cert", "", "with --secureboot: the db certificate (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sb {
		if *sbCert == "" || fs.NArg() != 1 {
			fs.Usage()
			return fmt.Errorf("%w: --secureboot needs --cert and one disk image", errUsage)
		}
		return verifySecureBoot(fs.Arg(0), *sbCert, stdout)
	}
	if *keyPath == "" || fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: need --key and one directory", errUsage)
	}
	pub, err := sign.LoadPublicKey(*keyPath)
	if err != nil {
		return err
	}
	results, err := sign.Verify(ctx, fs.Arg(0), pub)
	if len(results) == 0 && err != nil {
		return err
	}
	failed := false
	for _, r := range results {
		if r.OK() {
			fmt.Fprintf(stdout, "ok    %s sha256:%s\n", r.Name, r.Digest)
			continue
		}
		failed = true
		fmt.Fprintf(stdout, "FAIL  %s: %v\n", r.Name, r.Err)
	}
	if failed {
		return exitError{1}
	}
	return nil
}
