package vuln

import (
	"fmt"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// DefaultFailOn is the threshold when the policy names none.
const DefaultFailOn = "high"

// Apply sets each finding's Status under policy p (nil: the defaults) at
// time now: allowed by an unexpired allowance naming its id or an alias;
// "expired" when the only allowance ran out; "below-threshold" when rated
// under fail_on; "fail" otherwise. Findings with no rating fail: a
// database that rates nothing (Go's) must not pass silently.
func Apply(findings []Finding, p *config.VulnerabilityPolicy, now time.Time) error {
	failOn := DefaultFailOn
	var allow []config.Allowance
	if p != nil {
		if p.FailOn != "" {
			failOn = p.FailOn
		}
		allow = p.Allow
	}
	threshold := Level(failOn)
	if threshold < 0 {
		return fmt.Errorf("vulnerability policy: fail_on %q: want low, medium, high or critical", failOn)
	}
	for i := range findings {
		f := &findings[i]
		a, err := allowanceFor(f, allow)
		if err != nil {
			return err
		}
		switch {
		case a != nil && Expired(a.Expires, now):
			f.Status, f.Reason, f.Expires = "expired", a.Reason, a.Expires
		case a != nil:
			f.Status, f.Reason, f.Expires = "allowed", a.Reason, a.Expires
		case Level(f.Severity) >= 0 && Level(f.Severity) < threshold:
			f.Status = "below-threshold"
		default:
			f.Status = "fail"
		}
	}
	return nil
}

func allowanceFor(f *Finding, allow []config.Allowance) (*config.Allowance, error) {
	for i := range allow {
		a := &allow[i]
		if a.Expires != "" {
			if _, err := time.Parse(time.DateOnly, a.Expires); err != nil {
				return nil, fmt.Errorf("allowance %q: expires %q: want YYYY-MM-DD", a.ID, a.Expires)
			}
		}
		if a.ID == f.ID {
			return a, nil
		}
		for _, al := range f.Aliases {
			if a.ID == al {
				return a, nil
			}
		}
	}
	return nil, nil
}

// Expired says an allowance expiring on date (YYYY-MM-DD, valid through
// that day, UTC) no longer holds at now. No date never expires.
func Expired(date string, now time.Time) bool {
	if date == "" {
		return false
	}
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return true
	}
	return !now.Before(d.AddDate(0, 0, 1))
}
