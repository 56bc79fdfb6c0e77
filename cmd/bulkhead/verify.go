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

// verifyLine is one file of verify's --json array.
type verifyLine struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, fail, or unsigned (no signature covers it)
	SHA256 string `json:"sha256,omitempty"`
	PCR11  string `json:"pcr11,omitempty"`  // --secureboot: the UKI's predicted PCR 11 (sha256 bank)
	PCRSig bool   `json:"pcrsig,omitempty"` // --secureboot: the UKI's .pcrsig holds a valid signed policy for it
	Error  string `json:"error,omitempty"`
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "--key PUB [--json] [--strict] DIR | --secureboot --cert DB.CRT [--json] DISK.img", stderr)
	keyPath := fs.String("key", "", "public key (PEM) the outputs must be signed with")
	asJSON := fs.Bool("json", false, "print one object per file as a JSON array")
	strict := fs.Bool("strict", false, "fail when the directory holds files no signature covers")
	sb := fs.Bool("secureboot", false, "check a raw-efi disk instead: systemd-boot and every UKI signed for Secure Boot with --cert, and print each UKI's predicted PCR 11")
	sbCert := fs.String("cert", "", "with --secureboot: the db certificate (PEM)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if *sb {
		if *sbCert == "" || fs.NArg() != 1 {
			fs.Usage()
			return fmt.Errorf("%w: --secureboot needs --cert and one disk image", errUsage)
		}
		lines, failed, err := verifySecureBoot(fs.Arg(0), *sbCert)
		if err != nil {
			return err
		}
		return finishVerify(stdout, lines, failed, *asJSON)
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
	unsigned, err := sign.Unsigned(fs.Arg(0))
	if err != nil {
		return err
	}
	lines, failed := verifyLines(results, unsigned, *strict)
	return finishVerify(stdout, lines, failed, *asJSON)
}

// finishVerify prints the lines, as JSON or text, and fails when any did.
func finishVerify(stdout io.Writer, lines []verifyLine, failed, asJSON bool) error {
	if asJSON {
		if err := writeJSON(stdout, lines); err != nil {
			return err
		}
	} else {
		printVerifyLines(stdout, lines)
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// verifyLines turns the results into lines, and says whether any failed.
func verifyLines(results []sign.Result, unsigned []string, strict bool) ([]verifyLine, bool) {
	lines := make([]verifyLine, 0, len(results)+len(unsigned))
	failed := false
	for _, r := range results {
		l := verifyLine{Name: r.Name, Status: "ok", SHA256: r.Digest}
		if !r.OK() {
			l.Status, l.Error, failed = "fail", r.Err.Error(), true
		}
		lines = append(lines, l)
	}
	for _, n := range unsigned {
		lines = append(lines, verifyLine{Name: n, Status: "unsigned", Error: "no signature covers it (not in " + sign.SumsFile + ")"})
		failed = failed || strict
	}
	return lines, failed
}

func printVerifyLines(w io.Writer, lines []verifyLine) {
	for _, l := range lines {
		switch l.Status {
		case "ok":
			line := "ok    " + l.Name
			if l.SHA256 != "" {
				line += " sha256:" + l.SHA256
			}
			if l.PCR11 != "" {
				line += " pcr11 sha256:" + l.PCR11
			}
			if l.PCRSig {
				line += " pcrsig ok"
			}
			fmt.Fprintln(w, line)
		case "fail":
			fmt.Fprintf(w, "FAIL  %s: %s\n", l.Name, l.Error)
		default:
			fmt.Fprintf(w, "unsigned %s: %s\n", l.Name, l.Error)
		}
	}
}
