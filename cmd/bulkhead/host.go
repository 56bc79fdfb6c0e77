package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
)

func hostCommand() command {
	return command{
		name:    "host",
		subs:    []string{"status", "update", "rollback", "reboot", "logs"},
		summary: "operate a running host through its API: status, update, rollback, reboot, logs",
		run:     runHost,
	}
}

const hostSynopsis = "status|update BUNDLE|URL|update --ref REF|rollback|reboot|logs [NAME] --host ADDR --cert FILE --key FILE [flags]"

const hostHelp = `
Reaches a host's API (TLS 1.3; the host accepts only client certificates
its spec's operator CA signed: bulkhead ca issue). The host's own
certificate is checked against --fingerprint, else against the known-hosts
file, where it is recorded on first use.

  status          versions, boot entries (blessed or not), services, boot attempts
  update BUNDLE   upload an update bundle; the host checks and installs it
                  into its inactive slot (--reboot: then boot it)
  update URL      the same, the host downloading http(s)://... itself
  update --ref REF  the host pulls the update from a registry instead,
                  fetching only the chunks it lacks (bulkhead update push)
  rollback        make the next boot use the other blessed version (--reboot)
  reboot          reboot the host
  logs [NAME]     the last --lines of /run/log/NAME.log (default init)
`

type hostFlags struct {
	addr, cert, key, fingerprint, known string
	ref                                 string
	json, reboot                        bool
	lines                               int
	timeout                             time.Duration
}

func runHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("host", hostSynopsis, stderr)
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, hostHelp) }
	var f hostFlags
	fs.StringVar(&f.addr, "host", "", "the host's `ADDR`ess, HOST[:PORT] (default port 7443)")
	fs.StringVar(&f.cert, "cert", "", "client certificate `file` (bulkhead ca issue)")
	fs.StringVar(&f.key, "key", "", "client key `file`")
	fs.StringVar(&f.fingerprint, "fingerprint", "", "the host certificate's `sha256:HEX` (overrides the known-hosts file)")
	fs.StringVar(&f.known, "known-hosts", defaultKnownHosts(), "known-hosts `file`")
	fs.BoolVar(&f.json, "json", false, "print the answer as JSON")
	fs.BoolVar(&f.reboot, "reboot", false, "update, rollback: reboot into the result")
	fs.StringVar(&f.ref, "ref", "", "update: have the host pull the update from this registry `REF`erence (bulkhead update push) instead of uploading a bundle")
	fs.IntVar(&f.lines, "lines", 200, "logs: how many lines")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up after this `duration`")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 || f.addr == "" || f.cert == "" || f.key == "" {
		fs.Usage()
		return fmt.Errorf("%w: want a verb, --host, --cert and --key", errUsage)
	}
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return fmt.Errorf("reading client certificate: %w", err)
	}
	c, err := hostapi.NewClient(hostapi.ClientConfig{Addr: f.addr, Cert: cert, Fingerprint: f.fingerprint, KnownHosts: f.known,
		FirstUse: func(addr, fp string) {
			fmt.Fprintf(stderr, "bulkhead host: first contact with %s: recorded its certificate %s in %s\n", addr, fp, f.known)
		}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return hostVerb(ctx, c, f, rest, stdout)
}

func defaultKnownHosts() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "bulkhead", "known_hosts")
}

func hostVerb(ctx context.Context, c *hostapi.Client, f hostFlags, rest []string, stdout io.Writer) error {
	verb, args := rest[0], rest[1:]
	want := map[string]int{"status": 0, "update": 1, "rollback": 0, "reboot": 0, "logs": -1}
	n, ok := want[verb]
	if !ok {
		return fmt.Errorf("%w: unknown verb %q (want status, update, rollback, reboot or logs)", errUsage, verb)
	}
	if verb == "update" && f.ref != "" {
		n = 0
	}
	if (n >= 0 && len(args) != n) || (n < 0 && len(args) > 1) {
		return fmt.Errorf("%w: host %s: wrong number of arguments", errUsage, verb)
	}
	switch verb {
	case "status":
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		return printStatus(stdout, st, f.json)
	case "update":
		if f.ref != "" {
			return hostPull(ctx, c, f, stdout)
		}
		return hostUpdate(ctx, c, args[0], f, stdout)
	case "rollback":
		to, err := c.Rollback(ctx, f.reboot)
		if err != nil {
			return err
		}
		return printResult(stdout, f.json, map[string]string{"next_boot": to}, "next boot: "+to)
	case "reboot":
		if err := c.Reboot(ctx); err != nil {
			return err
		}
		return printResult(stdout, f.json, map[string]string{"status": "rebooting"}, "rebooting")
	}
	name := "init"
	if len(args) == 1 {
		name = args[0]
	}
	b, err := c.Logs(ctx, name, f.lines)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}

func hostUpdate(ctx context.Context, c *hostapi.Client, path string, f hostFlags, stdout io.Writer) error {
	res, err := upload(ctx, c, path, f.reboot)
	if err != nil {
		return fmt.Errorf("updating from %s: %w", path, err)
	}
	line := fmt.Sprintf("installed %s (entry %s, signed by %s)", res.Version, res.Entry, res.KeyID)
	if res.Reboot {
		line += "; rebooting into it"
	}
	return printResult(stdout, f.json, res, line)
}

func printResult(w io.Writer, asJSON bool, v any, line string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func printStatus(w io.Writer, st hostapi.Status, asJSON bool) error {
	if asJSON {
		return printResult(w, true, st, "")
	}
	fmt.Fprintf(w, "host %s, version %s, up %s", st.Hostname, st.Version, time.Duration(st.Uptime).Round(time.Second))
	if st.Floor != "" {
		fmt.Fprintf(w, ", floor %s", st.Floor)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTRY\tVERSION\tSTATE\tRUNNING")
	for _, e := range st.Entries {
		state := "blessed"
		if !e.Blessed {
			state = fmt.Sprintf("%d tries left, %d done", e.TriesLeft, e.TriesDone)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", e.File, e.Version, state, e.Running)
	}
	fmt.Fprintln(tw, "SERVICE\tRUNNING\tHEALTH\t")
	for _, s := range st.Services {
		health := "no check"
		if s.Healthy != nil {
			health = map[bool]string{true: "healthy", false: "unhealthy"}[*s.Healthy]
		}
		if s.Error != "" {
			health += ": " + s.Error
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t\n", s.Name, s.Running, health)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range st.Attempts {
		fmt.Fprintf(w, "attempt %s %s %s %s\n", a.Started.Format(time.RFC3339), a.Entry, a.Outcome, strings.TrimSpace(a.Reason))
	}
	return nil
}

// upload sends the bundle file at path, or has the host fetch an http(s)
// URL itself.
func upload(ctx context.Context, c *hostapi.Client, path string, reboot bool) (hostapi.UpdateResult, error) {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return c.UpdateFrom(ctx, path, reboot)
	}
	file, err := os.Open(path)
	if err != nil {
		return hostapi.UpdateResult{}, err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return hostapi.UpdateResult{}, err
	}
	return c.Update(ctx, file, st.Size(), reboot)
}
