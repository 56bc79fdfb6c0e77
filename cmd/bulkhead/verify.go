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
	Error  string `json:"error,omitempty"`
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "--key PUB [--json] [--strict] DIR", stderr)
	keyPath := fs.String("key", "", "public key (PEM) the outputs must be signed with")
	asJSON := fs.Bool("json", false, "print one object per file as a JSON array")
	strict := fs.Bool("strict", false, "fail when the directory holds files no signature covers")
	if err := parseArgs(fs, args); err != nil {
		return err
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
	if *asJSON {
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
			fmt.Fprintf(w, "ok    %s sha256:%s\n", l.Name, l.SHA256)
		case "fail":
			fmt.Fprintf(w, "FAIL  %s: %s\n", l.Name, l.Error)
		default:
			fmt.Fprintf(w, "unsigned %s: %s\n", l.Name, l.Error)
		}
	}
}
