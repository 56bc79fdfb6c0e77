package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/bulkhead-dev/bulkhead/builder/output"
	"github.com/bulkhead-dev/bulkhead/builder/rootfs"
)

// Report file names, as WriteFiles writes them beside the outputs.
const (
	SPDXFile      = "sbom.spdx.json"
	CycloneDXFile = "sbom.cdx.json"
	JSONFile      = "scan.json"
	TextFile      = "scan.txt"
)

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

// WriteFiles writes sbom.spdx.json, sbom.cdx.json, scan.json and
// scan.txt into dir, each atomically.
func (r *Report) WriteFiles(dir string) error {
	js, err := r.JSON()
	if err != nil {
		return fmt.Errorf("writing scan report: %w", err)
	}
	var txt bytes.Buffer
	r.Summary(&txt)
	for _, f := range []struct {
		name string
		data []byte
	}{{SPDXFile, r.SPDX}, {CycloneDXFile, r.CycloneDX}, {JSONFile, js}, {TextFile, txt.Bytes()}} {
		name, data := f.name, f.data
		if err := output.WriteFile(filepath.Join(dir, name), data); err != nil {
			return fmt.Errorf("writing scan report: %w", err)
		}
	}
	return nil
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
	fmt.Fprintf(w, "%s: %d packages, %d files, %d bytes\n", nameOr(r.Name), len(r.Packages), len(m.Files), m.TotalSize)
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
		fmt.Fprintf(tw, "%d\t%d\t%s\n", c.Size, c.Files, c.Origin)
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
