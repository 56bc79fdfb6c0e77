package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// Report file names, as WriteFiles writes them beside the outputs, each
// after the host's name and a dash (FileName): two hosts built into one
// directory keep their own reports.
const (
	SPDXFile      = "sbom.spdx.json"
	CycloneDXFile = "sbom.cdx.json"
	JSONFile      = "scan.json"
	TextFile      = "scan.txt"
)

// FileName is the report file of host name: NAME-file ("host-" when the
// name is empty).
func FileName(name, file string) string { return nameOr(name) + "-" + file }

// EmbedPath is where a host carries its own SBOM (SPDX).
const EmbedPath = "usr/share/bulkhead/sbom.spdx.json"

// JSON is the report for CI: packages, findings with their verdicts,
// the minimality report and the failures.
func (r *Report) JSON() ([]byte, error) {
	v := struct {
		*Report
		Failed []string `json:"failed"`
	}{r, r.Failed()}
	if v.Failed == nil {
		v.Failed = []string{}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// WriteFiles writes NAME-sbom.spdx.json, NAME-sbom.cdx.json,
// NAME-scan.json and NAME-scan.txt into dir, each atomically, and returns
// their paths in that order.
func (r *Report) WriteFiles(dir string) ([]string, error) {
	js, err := r.JSON()
	if err != nil {
		return nil, fmt.Errorf("writing scan report: %w", err)
	}
	var txt bytes.Buffer
	r.Summary(&txt)
	var paths []string
	for _, f := range []struct {
		name string
		data []byte
	}{{SPDXFile, r.SPDX}, {CycloneDXFile, r.CycloneDX}, {JSONFile, js}, {TextFile, txt.Bytes()}} {
		p := filepath.Join(dir, FileName(r.Name, f.name))
		if err := output.WriteFile(p, f.data); err != nil {
			return nil, fmt.Errorf("writing scan report: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// Entry is the SPDX SBOM as a file of the root to add at EmbedPath, owned
// by root, mode 0644, with modification time epoch.
func (r *Report) Entry(epoch int64) *rootfs.Entry {
	return &rootfs.Entry{
		Path: EmbedPath, Kind: rootfs.KindFile, Mode: 0o644, Size: int64(len(r.SPDX)),
		ModTime: epoch, Content: rootfs.Content{Data: r.SPDX}, Origin: rootfs.OriginBulkhead,
	}
}

// Summary writes the report for a terminal: counts, the findings as
// tables, and the verdict.
func (r *Report) Summary(w io.Writer) {
	m := r.Minimality
	fmt.Fprintf(w, "%s: %d packages, %d files, %s\n", nameOr(r.Name), len(r.Packages), len(m.Files), humanize.Bytes(uint64(m.TotalSize)))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if !r.VulnDB {
		fmt.Fprintln(w, "\nvulnerabilities: not checked (no vulnerability database)")
	} else if len(r.Vulnerabilities) == 0 {
		fmt.Fprintln(w, "\nvulnerabilities: none")
	} else {
		fmt.Fprintf(w, "\nvulnerabilities: %d\n", len(r.Vulnerabilities))
		fmt.Fprintln(tw, "STATUS\tID\tSEVERITY\tPACKAGE\tINSTALLED\tFIXED\tWHERE")
		for _, v := range r.Vulnerabilities {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Status, v.ID, v.Severity, v.Package, v.Installed, dash(v.Fixed), strings.Join(v.Locations, ", "))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nsecrets: %d\n", len(r.Secrets))
	if len(r.Secrets) > 0 {
		fmt.Fprintln(tw, "STATUS\tRULE\tWHERE\tEXCERPT\tFINGERPRINT")
		for _, s := range r.Secrets {
			where := s.Where
			if s.Line > 0 {
				where = fmt.Sprintf("%s:%d", where, s.Line)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Status, s.Rule, where, s.Excerpt, s.Fingerprint)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nminimality: %d flagged, %d vestigial\n", len(m.Flagged)+countFlagged(r), len(m.Vestigial))
	fmt.Fprintln(tw, "SIZE\tFILES\tCOMPONENT")
	for _, c := range m.Components {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", humanize.Bytes(uint64(c.Size)), c.Files, ShortDigests(c.Origin))
	}
	tw.Flush()
	for _, f := range m.Files {
		if len(f.Flags) > 0 {
			fmt.Fprintf(w, "  /%s: %s\n", f.Path, strings.Join(f.Flags, ", "))
		}
	}
	for _, f := range m.Flagged {
		fmt.Fprintf(w, "  /%s: %s\n", f.Path, strings.Join(f.Flags, ", "))
	}
	if len(r.OutsideFiles) > 0 {
		fmt.Fprintf(w, "\nfiles from outside the spec's directory: %d\n", len(r.OutsideFiles))
		for _, f := range r.OutsideFiles {
			fmt.Fprintf(w, "  /%s: %s (%s)\n", f.Path, f.Source, f.Spec)
		}
	}
	failed := r.Failed()
	if len(failed) == 0 {
		fmt.Fprintln(w, "\nresult: pass")
		return
	}
	fmt.Fprintf(w, "\nresult: FAIL (%d)\n", len(failed))
	for _, f := range failed {
		fmt.Fprintln(w, "  "+f)
	}
}

// ShortDigests shortens every sha256 digest in s to its first 12 hex
// digits and an ellipsis ("img@sha256:fd6bd79076d4…"), so that report
// lines stay narrow; the JSON reports keep them whole.
func ShortDigests(s string) string {
	const prefix, keep, full = "sha256:", 12, 64
	var b strings.Builder
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(prefix)
		n := 0
		for n < full && j+n < len(s) && isHex(s[j+n]) {
			n++
		}
		if n == full {
			b.WriteString(s[:j+keep])
			b.WriteString("…")
		} else {
			b.WriteString(s[:j+n])
		}
		s = s[j+n:]
	}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

func countFlagged(r *Report) int {
	n := 0
	for _, f := range r.Minimality.Files {
		if len(f.Flags) > 0 {
			n++
		}
	}
	return n
}

func nameOr(s string) string {
	if s == "" {
		return "host"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
