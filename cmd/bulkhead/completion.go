package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The shell completions and the manual page are generated from the same
// place as --help: the command table and each verb's flag set, so they
// cannot say something --help does not.

func completionCommand() command {
	return command{
		name:    "completion",
		summary: "print shell completion: bulkhead completion bash|zsh|fish",
		subs:    []string{"bash", "zsh", "fish"},
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			fs := newFlags("completion", "bash|zsh|fish", stderr)
			if err := parseArgs(fs, args); err != nil {
				return err
			}
			if fs.NArg() != 1 {
				fs.Usage()
				return fmt.Errorf("%w: name one shell: bash, zsh or fish", errUsage)
			}
			verbs := verbTree(ctx)
			switch fs.Arg(0) {
			case "bash":
				return writeBashCompletion(stdout, verbs)
			case "zsh":
				fmt.Fprint(stdout, "#compdef bulkhead\nautoload -U +X bashcompinit && bashcompinit\n")
				return writeBashCompletion(stdout, verbs)
			case "fish":
				return writeFishCompletion(stdout, verbs)
			}
			return fmt.Errorf("%w: unknown shell %q (want bash, zsh or fish)", errUsage, fs.Arg(0))
		},
	}
}

// verb is a command or subcommand with what its --help says.
type verb struct {
	path    []string // "image", "ls"
	summary string
	help    string
	flags   []helpFlag
	subs    []verb
}

type helpFlag struct{ name, usage string }

// verbTree lists every command and subcommand with its help and flags.
func verbTree(ctx context.Context) []verb {
	var out []verb
	for _, c := range commands() {
		v := helpOf(ctx, []string{c.name})
		v.summary = c.summary
		for _, s := range c.subs {
			if c.name == "host" || c.name == "completion" {
				v.subs = append(v.subs, verb{path: []string{c.name, s}})
				continue // verbs of one flag set, not commands of their own
			}
			v.subs = append(v.subs, helpOf(ctx, []string{c.name, s}))
		}
		out = append(out, v)
	}
	return out
}

var flagLineRE = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9.-]*)`)

// helpOf runs `bulkhead PATH --help` and reads its flags.
func helpOf(ctx context.Context, path []string) verb {
	var b bytes.Buffer
	run(ctx, append(append([]string{}, path...), "--help"), &b, &b)
	v := verb{path: path, help: b.String()}
	lines := strings.Split(v.help, "\n")
	for i, l := range lines {
		m := flagLineRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		usage := ""
		if i+1 < len(lines) {
			usage = strings.TrimSpace(lines[i+1])
		}
		v.flags = append(v.flags, helpFlag{m[1], usage})
	}
	return v
}

func names(vs []verb) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.path[len(v.path)-1])
	}
	return strings.Join(out, " ")
}

func flagWords(fl []helpFlag) string {
	var out []string
	for _, f := range fl {
		out = append(out, "--"+f.name)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func writeBashCompletion(w io.Writer, verbs []verb) error {
	var b strings.Builder
	b.WriteString("# bash completion for bulkhead (bulkhead completion bash)\n_bulkhead() {\n")
	b.WriteString("  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} sub=${COMP_WORDS[2]} words=\"\" flags=\"\"\n")
	fmt.Fprintf(&b, "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    COMPREPLY=($(compgen -W \"%s --help --version\" -- \"$cur\"))\n    return\n  fi\n", names(verbs))
	b.WriteString("  case \"$cmd\" in\n")
	for _, v := range verbs {
		fmt.Fprintf(&b, "  %s)\n", v.path[0])
		if len(v.subs) > 0 {
			fmt.Fprintf(&b, "    if [ \"$COMP_CWORD\" -eq 2 ]; then words=\"%s\"; fi\n", names(v.subs))
			b.WriteString("    case \"$sub\" in\n")
			for _, s := range v.subs {
				fmt.Fprintf(&b, "    %s) flags=\"%s\" ;;\n", s.path[1], flagWords(append(append([]helpFlag{}, v.flags...), s.flags...)))
			}
			b.WriteString("    esac\n")
		}
		if len(v.flags) > 0 {
			fmt.Fprintf(&b, "    [ -z \"$flags\" ] && flags=\"%s\"\n", flagWords(v.flags))
		}
		b.WriteString("    ;;\n")
	}
	b.WriteString("  esac\n")
	b.WriteString("  if [[ $cur == -* ]]; then\n    COMPREPLY=($(compgen -W \"$flags --help\" -- \"$cur\"))\n")
	b.WriteString("  elif [ -n \"$words\" ]; then\n    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n  fi\n}\n")
	b.WriteString("complete -o default -F _bulkhead bulkhead\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFishCompletion(w io.Writer, verbs []verb) error {
	var b strings.Builder
	b.WriteString("# fish completion for bulkhead (bulkhead completion fish)\n")
	for _, v := range verbs {
		fmt.Fprintf(&b, "complete -c bulkhead -n __fish_use_subcommand -a %s -d %s\n", v.path[0], fishQuote(v.summary))
		for _, f := range v.flags {
			fmt.Fprintf(&b, "complete -c bulkhead -n '__fish_seen_subcommand_from %s' -l %s -d %s\n", v.path[0], f.name, fishQuote(f.usage))
		}
		for _, s := range v.subs {
			fmt.Fprintf(&b, "complete -c bulkhead -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s\n", v.path[0], names(v.subs), s.path[1])
			for _, f := range s.flags {
				fmt.Fprintf(&b, "complete -c bulkhead -n '__fish_seen_subcommand_from %s' -l %s -d %s\n", s.path[1], f.name, fishQuote(f.usage))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func manCommand() command {
	return command{
		name:    "man",
		summary: "print the manual page (troff), generated from every command's --help",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			fs := newFlags("man", "", stderr)
			if err := parseArgs(fs, args); err != nil {
				return err
			}
			if fs.NArg() != 0 {
				return fmt.Errorf("%w: man takes no arguments", errUsage)
			}
			var top bytes.Buffer
			usage(&top)
			return writeMan(stdout, top.String(), verbTree(ctx))
		},
	}
}

// writeMan renders the manual: NAME, SYNOPSIS, the top-level help, then
// one section per command holding its --help (and its subcommands').
func writeMan(w io.Writer, top string, verbs []verb) error {
	var b strings.Builder
	// The date is the epoch's, not the clock's: the page is reproducible.
	date := time.Unix(0, 0).UTC().Format("2006-01-02")
	fmt.Fprintf(&b, ".TH BULKHEAD 1 %s \"bulkhead %s\" \"bulkhead manual\"\n", date, bulkheadVersion())
	b.WriteString(".SH NAME\nbulkhead \\- build minimal, immutable container-host operating systems from a YAML spec\n")
	b.WriteString(".SH SYNOPSIS\n.B bulkhead\n.I command\n[\n.I flags\n] [\n.I arguments\n]\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(manText(top))
	b.WriteString(".SH COMMANDS\n")
	for _, v := range verbs {
		fmt.Fprintf(&b, ".SS %s\n", manEscape(strings.Join(v.path, " ")))
		b.WriteString(manText(v.help))
		for _, s := range v.subs {
			if s.help == "" {
				continue
			}
			fmt.Fprintf(&b, ".SS %s\n", manEscape(strings.Join(s.path, " ")))
			b.WriteString(manText(s.help))
		}
	}
	b.WriteString(".SH ENVIRONMENT\n.TP\n.B BULKHEAD_STORE\nthe image store directory\n.TP\n.B SOURCE_DATE_EPOCH\nthe time every artifact's timestamps are clamped to (default 0)\n.TP\n.B BULKHEAD_ACCEL\nqemu's accelerator for run qemu: auto, kvm or tcg\n")
	b.WriteString(".SH SEE ALSO\nThe README, and docs/spec.md for every key of a spec.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// manText sets help text as it is printed: no filling, no adjusting.
func manText(s string) string {
	return ".PP\n.nf\n" + manEscape(strings.TrimRight(s, "\n")) + "\n.fi\n"
}

// manEscape keeps troff from reading text as requests or escapes.
func manEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.ReplaceAll(strings.Join(lines, "\n"), "-", `\-`)
}
