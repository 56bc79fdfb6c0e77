package vuln

import (
	"slices"
	"sort"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/scan/sbom"
	"github.com/bulkhead-dev/bulkhead/builder/scan/version"
)

// Finding is a vulnerability in one package of the host.
type Finding struct {
	ID        string   `json:"id"`
	Aliases   []string `json:"aliases,omitempty"`
	Summary   string   `json:"summary,omitempty"`
	Severity  string   `json:"severity"` // low, medium, high, critical, or unknown
	Package   string   `json:"package"`
	Ecosystem string   `json:"ecosystem"`
	Installed string   `json:"installed"`
	Fixed     string   `json:"fixed,omitempty"`
	PURL      string   `json:"purl"`
	Locations []string `json:"locations"`
	// Status is what the policy made of it: "fail", "allowed",
	// "expired" (an allowance that ran out: fails), "below-threshold".
	Status string `json:"status"`
	// Reason and Expires are the allowance's, when one applies.
	Reason  string `json:"reason,omitempty"`
	Expires string `json:"expires,omitempty"`
}

// Wants reports whether the DB should keep an ecosystem/name pair for pkgs:
// pass it to Load.
func Wants(pkgs []sbom.Package) func(ecosystem, name string) bool {
	keys := map[string]bool{}
	for i := range pkgs {
		if pkgs[i].Ecosystem != "" {
			keys[dbKey(pkgs[i].Ecosystem, pkgs[i].MatchName())] = true
		}
	}
	return func(eco, name string) bool { return keys[dbKey(eco, name)] }
}

// Match lists the findings for pkgs, sorted by package, then id.
func (db *DB) Match(pkgs []sbom.Package) []Finding {
	var out []Finding
	for i := range pkgs {
		p := &pkgs[i]
		if p.Ecosystem == "" {
			continue
		}
		for _, e := range db.byKey[dbKey(p.Ecosystem, p.MatchName())] {
			if !sameRelease(e.ecosystem, p.Ecosystem) {
				continue
			}
			hit, fixed := isAffected(e.ecosystem, p.MatchVersion(), &e.aff)
			if !hit {
				continue
			}
			sev := e.severity
			if sev == "" {
				sev = "unknown"
			}
			out = append(out, Finding{
				ID: e.id, Aliases: e.aliases, Summary: e.summary, Severity: sev,
				Package: p.Name, Ecosystem: p.Ecosystem, Installed: p.Version, Fixed: fixed,
				PURL: p.PURL(), Locations: p.Locations,
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Installed != b.Installed {
			return a.Installed < b.Installed
		}
		return a.ID < b.ID
	})
	return slices.CompactFunc(out, func(a, b Finding) bool {
		return a.ID == b.ID && a.Package == b.Package && a.Installed == b.Installed && a.Ecosystem == b.Ecosystem
	})
}

// sameRelease says a record for ecosystem rec ("Debian:12") applies to a
// package of ecosystem pkg: the same release, or either names none.
func sameRelease(rec, pkg string) bool {
	rb, rr, rok := strings.Cut(rec, ":")
	pb, pr, pok := strings.Cut(pkg, ":")
	return rb == pb && (!rok || !pok || rr == pr)
}

type event struct {
	kind, v string
}

// isAffected evaluates an affected entry for version v (OSV's algorithm:
// events in version order, introduced opens a range, fixed, last_affected
// and limit close it). fixed is the version that closes v's range, if any.
func isAffected(eco, v string, a *affected) (bool, string) {
	if slices.Contains(a.Versions, v) {
		return true, firstFixedAbove(eco, v, a)
	}
	for _, r := range a.Ranges {
		if r.Type != "SEMVER" && r.Type != "ECOSYSTEM" {
			continue
		}
		if hit, fixed := inRange(eco, v, events(eco, r)); hit {
			return true, fixed
		}
	}
	return false, ""
}

func events(eco string, r osvRange) []event {
	var evs []event
	for _, m := range r.Events {
		for k, val := range m {
			evs = append(evs, event{k, val})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return cmpEvent(eco, evs[i], evs[j]) < 0 })
	return evs
}

func cmpEvent(eco string, a, b event) int {
	az, bz := a.kind == "introduced" && a.v == "0", b.kind == "introduced" && b.v == "0"
	switch {
	case az && bz:
		return 0
	case az:
		return -1
	case bz:
		return 1
	}
	return version.Compare(eco, a.v, b.v)
}

func inRange(eco, v string, evs []event) (bool, string) {
	aff := false
	for _, e := range evs {
		switch e.kind {
		case "introduced":
			if e.v == "0" || version.Compare(eco, v, e.v) >= 0 {
				aff = true
			}
		case "fixed", "limit":
			if version.Compare(eco, v, e.v) >= 0 {
				aff = false
			} else if aff {
				if e.kind == "fixed" {
					return true, e.v
				}
				return true, ""
			}
		case "last_affected":
			if version.Compare(eco, v, e.v) > 0 {
				aff = false
			} else if aff {
				return true, ""
			}
		}
	}
	return aff, ""
}

func firstFixedAbove(eco, v string, a *affected) string {
	best := ""
	for _, r := range a.Ranges {
		for _, m := range r.Events {
			if f, ok := m["fixed"]; ok && version.Compare(eco, f, v) > 0 && (best == "" || version.Compare(eco, f, best) < 0) {
				best = f
			}
		}
	}
	return best
}
