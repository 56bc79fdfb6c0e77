package kernelcheck

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the report for people: one aligned table per category
// and the verdict v.
func (rep *Report) WriteText(w io.Writer, v Verdict) error {
	for _, c := range rep.Categories {
		if !c.Checked {
			fmt.Fprintf(w, "%s: %s: not checked (%d rules; %s unknown)\n\n", c.Name, c.Title, len(c.Rows), unknownInput(c))
			continue
		}
		fmt.Fprintf(w, "%s: %s: %d%%\n", c.Name, c.Title, c.Score)
		if err := writeCategoryTable(w, c); err != nil {
			return err
		}
		// Conflict notes go below the table, so they do not break its columns.
		for _, row := range c.Rows {
			if row.Checked && !row.OK && row.Conflict != "" {
				fmt.Fprintf(w, "  %s (KSPP vs container host): %s\n", row.Rule, row.Conflict)
			}
		}
		fmt.Fprintln(w)
	}
	verdict := "passes"
	if !v.Pass {
		verdict = "fails"
	}
	notChecked := 0
	for _, c := range rep.Categories {
		if !c.Checked {
			notChecked += len(c.Rows)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d not checked\n", rep.Passed, rep.Failed, notChecked)
	fmt.Fprintf(w, "score %d%% (%s: min %d%%)\n", rep.Score, verdict, v.MinScore)
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "  %s\n", r)
	}
	return nil
}

// writeCategoryTable aligns a category's rows: mark, rule, expected, actual
// and, for failures, why the rule exists. Every row ends its actual cell
// with a tab so the column spans the whole table; the padding this leaves
// at line ends is trimmed.
func writeCategoryTable(w io.Writer, c CategoryResult) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	why := ""
	if c.Score < 100 {
		why = "WHY"
	}
	fmt.Fprintf(tw, "\tRULE\tEXPECTED\tACTUAL\t%s\n", why)
	for _, row := range c.Rows {
		mark, why := "OK", ""
		if !row.OK {
			mark, why = "FAIL", row.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, row.Rule, row.Expected, row.Actual, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if _, err := io.WriteString(w, strings.TrimRight(line, " ")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func unknownInput(c CategoryResult) string {
	if len(c.Rows) > 0 && c.Rows[0].Kind == KindSysctl {
		return "sysctls"
	}
	if len(c.Rows) > 0 && c.Rows[0].Kind == KindCmdline {
		return "command line"
	}
	return "input"
}
