package vuln

import (
	"fmt"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// Severity levels, lowest first. Unknown is a record with no rating.
var levels = []string{"low", "medium", "high", "critical"}

// Level ranks a severity: 0 low … 3 critical, -1 for unknown.
func Level(s string) int {
	for i, l := range levels {
		if l == s {
			return i
		}
	}
	return -1
}

// normalize maps the words databases use onto low, medium, high, critical.
func normalize(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low", "negligible", "unimportant":
		return "low"
	case "medium", "moderate":
		return "medium"
	case "high", "important":
		return "high"
	case "critical":
		return "critical"
	}
	return ""
}

// recordSeverity is the affected entry's or the record's rating: a
// database's own word, else the CVSS base score of the newest CVSS version
// the record carries (OSV's CVSS_V4, CVSS_V3, CVSS_V2).
func recordSeverity(rec *record, a *affected) string {
	for _, s := range []string{a.EcosystemSpecific.Severity, a.DatabaseSpecific.Severity, rec.DatabaseSpecific.Severity} {
		if n := normalize(s); n != "" {
			return n
		}
	}
	all := append(append([]severity{}, a.Severity...), rec.Severity...)
	for _, typ := range []string{"CVSS_V4", "CVSS_V3", "CVSS_V2"} {
		for _, sv := range all {
			if sv.Type != typ {
				continue
			}
			if score, err := CVSS(sv.Score); err == nil {
				return rating(typ, score)
			}
		}
	}
	return ""
}

// rating maps a base score onto a level: the v3 and v4 bands of their
// specifications, and for v2 (which has no "critical") NVD's bands.
func rating(typ string, score float64) string {
	switch {
	case score >= 9 && typ != "CVSS_V2":
		return "critical"
	case score >= 7:
		return "high"
	case score >= 4:
		return "medium"
	case score > 0:
		return "low"
	}
	return ""
}

// CVSS computes the base score of a CVSS v2, v3.0, v3.1 or v4.0 vector
// ("AV:N/AC:L/Au:N/C:P/I:P/A:P", "CVSS:3.1/AV:N/…", "CVSS:4.0/AV:N/…").
func CVSS(vector string) (float64, error) {
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := gocvss40.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("reading CVSS vector %q: %w", vector, err)
		}
		return v.Score(), nil
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := gocvss31.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("reading CVSS vector %q: %w", vector, err)
		}
		return v.BaseScore(), nil
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := gocvss30.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("reading CVSS vector %q: %w", vector, err)
		}
		return v.BaseScore(), nil
	case strings.HasPrefix(vector, "CVSS:"):
		return 0, fmt.Errorf("reading CVSS vector %q: unknown version", vector)
	}
	v, err := gocvss20.ParseVector(vector)
	if err != nil {
		return 0, fmt.Errorf("reading CVSS vector %q: %w", vector, err)
	}
	return v.BaseScore(), nil
}
