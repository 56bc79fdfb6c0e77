// Command bulkhead builds minimal, immutable container-host operating systems
// from a YAML spec. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one verb of the CLI. Each lives in its own file.
type command struct {
	name    string
	summary string
	// run gets the arguments after the verb. It returns errUsage (wrapped or
	// not) for a usage error, which exits 2.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var errUsage = errors.New("usage")

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func commands() []command {
	return []command{
		buildCommand(),
		validateCommand(),
		lockCommand(),
		imageCommand(),
		runCommand(),
		scanCommand(),
		kernelCommand(),
		keygenCommand(),
		securebootCommand(),
		signCommand(),
		verifyCommand(),
		updateCommand(),
		caCommand(),
		hostCommand(),
		versionCommand(),
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `bulkhead turns a YAML host spec into a minimal, immutable container-host OS.

Usage:
  bulkhead <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'bulkhead <command> --help' for a command's flags.\n")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ee exitError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ee):
			return ee.code
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "bulkhead %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "bulkhead %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "bulkhead: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// newFlags returns a flag set for a verb that prints its usage to stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bulkhead "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bulkhead %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}
