package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/bulkhead-dev/bulkhead/builder/sign"
)

func keygenCommand() command {
	return command{
		name:    "keygen",
		summary: "make a signing key pair (PREFIX.key, PREFIX.pub)",
		run:     runKeygen,
	}
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "[--alg ecdsa-p256|ed25519] [PREFIX]", stderr)
	alg := fs.String("alg", string(sign.ECDSAP256), "key algorithm: ecdsa-p256 or ed25519")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	prefix := "bulkhead"
	switch fs.NArg() {
	case 0:
	case 1:
		prefix = fs.Arg(0)
	default:
		fs.Usage()
		return fmt.Errorf("%w: one PREFIX at most", errUsage)
	}
	priv, pub, err := sign.GenerateKey(sign.Algorithm(*alg))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	k, err := sign.ParsePrivateKey(priv)
	if err != nil {
		return err
	}
	if err := writeNew(prefix+".key", priv, 0o600); err != nil {
		return err
	}
	if err := writeNew(prefix+".pub", pub, 0o644); err != nil {
		os.Remove(prefix + ".key")
		return err
	}
	fmt.Fprintf(stdout, "private key %s.key, public key %s.pub, key id %s\n", prefix, prefix, k.Public().ID())
	return nil
}

// writeNew writes a file that must not exist yet, so keygen never replaces
// a key.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; not replacing a key", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
