package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
)

func caCommand() command {
	return groupCommand("ca", "make the operator CA (ca init) and client certificates for the host API (ca issue)", []subcommand{
		{"init", "make the operator CA: DIR/ca.pem and DIR/ca.key", func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			return runCAInit(args, stdout, stderr)
		}},
		{"issue", "issue a client certificate NAME.pem and key NAME.key, signed by the CA", func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			return runCAIssue(args, stdout, stderr)
		}},
	})
}

const caHelp = `
The operator CA signs the client certificates the host API accepts: name
its certificate in the spec (api: ca: DIR/ca.pem) and it is baked into the
verified root. Keep ca.key offline; hosts never see it.
`

func runCAInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca init", "[--dir DIR] [--name NAME]", stderr)
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, caHelp) }
	dir := fs.String("dir", "ca", "directory to write ca.pem and ca.key into")
	name := fs.String("name", "bulkhead operators", "the CA's common name")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	cert, key, err := hostapi.NewCA(*name, time.Now())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	if err := writeNew(filepath.Join(*dir, "ca.key"), key, 0o600); err != nil {
		return err
	}
	if err := writeNew(filepath.Join(*dir, "ca.pem"), cert, 0o644); err != nil {
		os.Remove(filepath.Join(*dir, "ca.key"))
		return err
	}
	fmt.Fprintf(stdout, "%s\n%s\n", filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca.key"))
	return nil
}

var certName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func runCAIssue(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca issue", "[--dir DIR] [--days N] NAME", stderr)
	dir := fs.String("dir", "ca", "directory holding ca.pem and ca.key; NAME.pem and NAME.key go there too")
	days := fs.Int("days", 365, "validity in days")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || !certName.MatchString(rest[0]) {
		fs.Usage()
		return fmt.Errorf("%w: give one NAME of letters, digits, '.', '_' and '-'", errUsage)
	}
	if *days < 1 {
		return fmt.Errorf("%w: --days must be positive", errUsage)
	}
	caCert, err := os.ReadFile(filepath.Join(*dir, "ca.pem"))
	if err != nil {
		return fmt.Errorf("reading CA (run bulkhead ca init first): %w", err)
	}
	caKey, err := os.ReadFile(filepath.Join(*dir, "ca.key"))
	if err != nil {
		return fmt.Errorf("reading CA key: %w", err)
	}
	cert, key, err := hostapi.IssueClient(caCert, caKey, rest[0], time.Duration(*days)*24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	keyPath, certPath := filepath.Join(*dir, rest[0]+".key"), filepath.Join(*dir, rest[0]+".pem")
	if err := writeNew(keyPath, key, 0o600); err != nil {
		return err
	}
	if err := writeNew(certPath, cert, 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	fmt.Fprintf(stdout, "%s\n%s\n", certPath, keyPath)
	return nil
}
