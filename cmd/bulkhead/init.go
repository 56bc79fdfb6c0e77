package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulkhead-dev/bulkhead/docs"
	"github.com/bulkhead-dev/bulkhead/examples"
	"github.com/bulkhead-dev/bulkhead/internal/atomicfile"
)

// schemaFile is the name bulkhead init gives the JSON Schema beside the
// spec, and the spec's yaml-language-server line points to.
const schemaFile = "bulkhead.schema.json"

func initCommand() command {
	return command{
		name:    "init",
		summary: "write a starting spec (an example) and the spec's JSON Schema for editors",
		run:     runInit,
	}
}

func schemaCommand() command {
	return command{
		name:    "schema",
		summary: "print the JSON Schema of host specs (for yaml-language-server and other editors)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			fs := newFlags("schema", "", stderr)
			if err := parseArgs(fs, args); err != nil {
				return err
			}
			if fs.NArg() != 0 {
				return fmt.Errorf("%w: schema takes no arguments", errUsage)
			}
			_, err := stdout.Write(docs.Schema)
			return err
		},
	}
}

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", "[--example NAME] [FILE]", stderr)
	example := fs.String("example", "minimal", "the example to start from: "+strings.Join(examples.Names(), ", "))
	force := fs.Bool("force", false, "replace FILE if it exists")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: init takes at most one FILE", errUsage)
	}
	path := "host.yml"
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	text, ok := examples.Spec(*example)
	if !ok {
		return fmt.Errorf("%w: no example %q%s (want %s)", errUsage, *example, didYouMean(*example, examples.Names()), strings.Join(examples.Names(), ", "))
	}
	if _, err := os.Lstat(path); err == nil && !*force {
		return fmt.Errorf("%s exists: pick another name, or --force to replace it", path)
	} else if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	schema := filepath.Join(filepath.Dir(path), schemaFile)
	head := "# yaml-language-server: $schema=" + schemaFile + "\n"
	if err := atomicfile.WriteFile(path, append([]byte(head), text...), 0o644); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(schema, docs.Schema, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (from the %s example) and %s\nnext: bulkhead validate %s, then bulkhead build -o out %s\n",
		path, *example, schema, path, path)
	return nil
}
