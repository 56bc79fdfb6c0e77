package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

func validateCommand() command {
	return command{
		name:    "validate",
		summary: "check spec files (merged in order) and report every problem",
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
	fs := newFlags("validate", "[--json] FILE...", stderr)
	asJSON := fs.Bool("json", false, "print problems as a JSON array on stdout")
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
	spec, _, err := loadSpecs(files, limits)
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		return err
	}
	var warns config.Errors
	if spec != nil {
		warns = spec.Warnings
		home, _ := os.UserHomeDir()
		if err := config.CheckHost(spec, home); !errors.As(err, &errs) && err != nil {
			return err
		}
	}
	if *asJSON {
		return printProblemsJSON(stdout, errs, warns)
	}
	printWarnings(stderr, warns)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stderr, e.Error())
		}
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

func printProblemsJSON(w io.Writer, errs, warns config.Errors) error {
	problems := make([]validateProblem, 0, len(errs)+len(warns))
	add := func(list config.Errors, severity string) {
		for _, e := range list {
			problems = append(problems, validateProblem{
				File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Severity: severity, Message: e.Msg,
			})
		}
	}
	add(errs, "error")
	add(warns, "warning")
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
