package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/bulkhead-dev/bulkhead/builder/recipe"
)

// runImageBump moves the Debian pins of recipes to apt's candidates and
// prints each pin, old and new.
func runImageBump(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image bump", "images/<name>...", stderr)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%w: no recipes given", errUsage)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPE\tPACKAGE\tVERSION\tSHA256")
	moved := 0
	for _, p := range fs.Args() {
		pins, err := recipe.Bump(ctx, p, recipe.SystemAptCache)
		if err != nil {
			tw.Flush()
			return err
		}
		for _, pin := range pins {
			pkg, ver, sum := pin.Package, pin.Version, short(pin.SHA256)
			if pin.Changed() {
				moved++
				if pin.OldPackage != pin.Package {
					pkg = pin.OldPackage + " -> " + pin.Package
				}
				if pin.OldVersion != pin.Version {
					ver = pin.OldVersion + " -> " + pin.Version
				}
				if pin.OldSHA256 != pin.SHA256 {
					sum = short(pin.OldSHA256) + " -> " + sum
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", pin.Recipe, pkg, ver, sum)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d pin(s) moved\n", moved)
	return nil
}

// short is the first 12 hex digits of a sha256.
func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
