package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/builder/build"
	"github.com/bulkhead-dev/bulkhead/builder/config"
)

func validateCommand() command {
	return command{
		name:    "validate",
		summary: "check spec files (merged in order) as build does, their images too when in the store, and report every problem",
		run:     runValidate,
	}
}

// validateProblem is one problem in --json output: an error (the spec is
// refused) or a warning (accepted, probably not meant).
type validateProblem struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "[--json] [--store DIR] [--format FORMATS] FILE...", stderr)
	asJSON := fs.Bool("json", false, "print problems as a JSON array on stdout")
	store := fs.String("store", "", "image store directory: the images it holds are checked too, none is fetched (default $BULKHEAD_STORE, else $XDG_CACHE_HOME/bulkhead/store)")
	formats := fs.String("format", "kernel+initrd", "the formats a build would write (as build --format): what they need of the spec is checked")
	var limits specLimits
	addSpecLimitFlags(fs, &limits)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no spec files given", errUsage)
	}
	fmts, err := parseFormats(*formats)
	if err != nil {
		return err
	}
	b, err := build.New(files, build.WithStore(*store), build.WithFormats(fmts...), build.WithSpecOptions(limits.options()...))
	if err != nil {
		return err
	}
	v, err := b.Validate(ctx)
	if err != nil {
		return err
	}
	errs := problemsOf(v.Problems)
	var warns config.Errors
	if v.Spec != nil {
		warns = v.Spec.Warnings
	}
	if !*asJSON {
		printWarnings(stderr, warns)
	}
	if len(v.Unchecked) > 0 && len(errs) == 0 {
		fmt.Fprintf(stderr, "bulkhead validate: %d of the images are not in the store (%s first): their contents were not checked; bulkhead build fetches them\n",
			len(v.Unchecked), v.Unchecked[0].Ref)
	}
	if *asJSON {
		return printProblemsJSON(stdout, errs, warns)
	}
	for _, e := range v.Problems {
		if e.Pos == (config.Pos{}) {
			fmt.Fprintln(stderr, e.Msg)
		} else {
			fmt.Fprintf(stderr, "%s: %s\n", e.Pos, e.Msg)
		}
	}
	if len(errs) > 0 {
		return exitError{1}
	}
	for _, f := range files {
		fmt.Fprintf(stdout, "%s: ok\n", f)
	}
	return nil
}

// printWarnings writes a spec's warnings as file:line:col: warning: msg.
func printWarnings(w io.Writer, warns config.Errors) {
	for _, e := range warns {
		fmt.Fprintf(w, "%s: warning: %s\n", e.Pos, e.Msg)
	}
}

func printProblemsJSON(w io.Writer, errs []validateProblem, warns config.Errors) error {
	problems := append(make([]validateProblem, 0, len(errs)+len(warns)), errs...)
	for _, e := range warns {
		problems = append(problems, problemOf(build.Problem{Pos: e.Pos, Msg: e.Msg}, "warning"))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(problems); err != nil {
		return fmt.Errorf("writing problems: %w", err)
	}
	if len(errs) > 0 {
		return exitError{1}
	}
	return nil
}
