package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// parseArgs parses fs's flags wherever they stand among args (flags after
// the positional arguments work, as in most CLIs); "--" ends the flags.
// Afterwards fs.Args() holds the positional arguments. A bad flag is one
// line, not the usage: fs's usage is printed only for -h or --help.
func parseArgs(fs *flag.FlagSet, args []string) error {
	head, tail := args, []string(nil)
	if i := slices.Index(args, "--"); i >= 0 {
		head, tail = args[:i], args[i+1:]
	}
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	var rest []string
	for {
		err := fs.Parse(head)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(out)
			usage()
			return err
		case err != nil:
			return fmt.Errorf("%w: %v (see %s --help)", errUsage, err, fs.Name())
		}
		head = fs.Args()
		if len(head) == 0 {
			break
		}
		rest = append(rest, head[0])
		head = head[1:]
	}
	return fs.Parse(append([]string{"--"}, append(rest, tail...)...))
}

// subcommand is one verb of a command group (image build, kernel check).
type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// groupCommand is a command whose first argument picks a subcommand. It
// answers -h, --help and help [SUB] the way the top level does.
func groupCommand(name, summary string, subs []subcommand) command {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: bulkhead %s <subcommand> [flags] [arguments]\n\nSubcommands:\n", name)
		for _, s := range subs {
			fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'bulkhead %s <subcommand> --help' for its flags.\n", name)
	}
	return command{
		name:    name,
		summary: summary,
		subs:    names,
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			if len(args) == 0 {
				usage(stderr)
				return fmt.Errorf("%w: missing subcommand", errUsage)
			}
			verb := args[0]
			switch verb {
			case "-h", "--help":
				usage(stdout)
				return nil
			case "help":
				if len(args) == 1 {
					usage(stdout)
					return nil
				}
				verb, args = args[1], []string{verb, "--help"}
			}
			for _, s := range subs {
				if s.name == verb {
					return s.run(ctx, args[1:], stdout, stderr)
				}
			}
			return fmt.Errorf("%w: unknown subcommand %q%s (want %s)", errUsage, verb, didYouMean(verb, names), strings.Join(names, ", "))
		},
	}
}

// didYouMean names the closest of names to word, when one is close.
func didYouMean(word string, names []string) string {
	if s := config.Suggest(word, names); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}
