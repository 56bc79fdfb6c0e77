package vuln

import (
	"math"
	"strings"
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
// database's own word, else the CVSS v3 base score.
func recordSeverity(rec *record, a *affected) string {
	for _, s := range []string{a.EcosystemSpecific.Severity, a.DatabaseSpecific.Severity, rec.DatabaseSpecific.Severity} {
		if n := normalize(s); n != "" {
			return n
		}
	}
	for _, sv := range append(append([]severity{}, a.Severity...), rec.Severity...) {
		if sv.Type == "CVSS_V3" {
			if score, ok := CVSS3(sv.Score); ok {
				return rating(score)
			}
		}
	}
	return ""
}

func rating(score float64) string {
	switch {
	case score >= 9:
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

var cvssWeights = map[string]map[string]float64{
	"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
	"AC": {"L": 0.77, "H": 0.44},
	"UI": {"N": 0.85, "R": 0.62},
	"C":  {"H": 0.56, "L": 0.22, "N": 0},
	"I":  {"H": 0.56, "L": 0.22, "N": 0},
	"A":  {"H": 0.56, "L": 0.22, "N": 0},
}

// CVSS3 computes the base score of a CVSS v3.x vector
// ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").
func CVSS3(vector string) (float64, bool) {
	m := map[string]string{}
	for _, part := range strings.Split(vector, "/") {
		if k, v, ok := strings.Cut(part, ":"); ok {
			m[k] = v
		}
	}
	if !strings.HasPrefix(m["CVSS"], "3") {
		return 0, false
	}
	w := map[string]float64{}
	for k, table := range cvssWeights {
		v, ok := table[m[k]]
		if !ok {
			return 0, false
		}
		w[k] = v
	}
	changed := m["S"] == "C"
	if m["S"] != "C" && m["S"] != "U" {
		return 0, false
	}
	pr, ok := map[string]float64{"N": 0.85, "L": 0.62, "H": 0.27}[m["PR"]]
	if !ok {
		return 0, false
	}
	if changed && m["PR"] == "L" {
		pr = 0.68
	} else if changed && m["PR"] == "H" {
		pr = 0.5
	}
	iss := 1 - (1-w["C"])*(1-w["I"])*(1-w["A"])
	impact := 6.42 * iss
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	}
	expl := 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
	if impact <= 0 {
		return 0, true
	}
	if changed {
		return roundup(math.Min(1.08*(impact+expl), 10)), true
	}
	return roundup(math.Min(impact+expl, 10)), true
}

// roundup is CVSS 3.1's Roundup: the smallest one-decimal number not below x.
func roundup(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}
