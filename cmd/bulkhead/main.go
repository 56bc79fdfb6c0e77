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
	setMemoryLimit()
	startMemProfile()
	stopCPU := startCPUProfile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopCPU()
	os.Exit(code)
}

// command is one verb of the CLI. Each lives in its own file.
type command struct {
	name    string
	summary string
	// subs names the subcommands of a command group (for completion and
	// the manual).
	subs []string
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
		initCommand(),
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
		schemaCommand(),
		completionCommand(),
		manCommand(),
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
	case "-h", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		args = append(append([]string{}, args[1:]...), "--help")
	case "--version":
		args = []string{"version"}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		errOut := stderr
		if helpAsked(args[1:]) {
			errOut = stdout // help asked for is the answer, not a complaint
		}
		err := c.run(ctx, args[1:], stdout, errOut)
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
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	fmt.Fprintf(stderr, "bulkhead: unknown command %q%s; run 'bulkhead --help' for the list\n", args[0], didYouMean(args[0], names))
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

// helpAsked reports whether args ask for help (-h or --help before any
// "--").
func helpAsked(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}
