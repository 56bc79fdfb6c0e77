// Package attempts keeps the host's record of boot attempts on /var: which
// boot entry (version) started when, and how its assessment ended
// (blessed, bad, or never finished: a power cut, a hang, a panic). The
// record makes a fallback loop visible; it is bounded to the last Keep
// attempts and rewritten atomically.
package attempts

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"time"
)

// DefaultPath is where the host keeps the record.
const DefaultPath = "/var/lib/bulkhead/boot-attempts.json"

// Keep is how many attempts the record holds.
const Keep = 32

// maxFile bounds what Load reads.
const maxFile = 1 << 20

// Outcomes of an attempt.
const (
	Started = "started" // assessment under way, or the boot never finished it
	Blessed = "blessed"
	Bad     = "bad"
)

// Attempt is one boot of one entry.
type Attempt struct {
	Entry   string    `json:"entry"`             // boot entry file, as the boot loader named it
	Version string    `json:"version,omitempty"` // host version from the entry name
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
}

// Load reads the record at path; a missing file is an empty record.
func Load(path string) ([]Attempt, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading boot attempts: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading boot attempts: %w", err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("reading boot attempts: %s is over %d bytes", path, maxFile)
	}
	var list []Attempt
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("reading boot attempts %s: %w", path, err)
	}
	return list, nil
}

// Update loads the record, lets change edit it, keeps the last Keep
// attempts and writes it back under a temporary name, synced, then
// renamed.
func Update(path string, change func([]Attempt) []Attempt) error {
	list, err := Load(path)
	if err != nil {
		list = nil // a damaged record is replaced, not a reason to stop
	}
	list = change(list)
	if len(list) > Keep {
		list = list[len(list)-Keep:]
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("writing boot attempts: %w", err)
	}
	return writeAtomic(path, append(b, '\n'))
}

// Begin records that entry started booting at t.
func Begin(path, entry, version string, t time.Time) error {
	return Update(path, func(l []Attempt) []Attempt {
		return append(l, Attempt{Entry: entry, Version: version, Outcome: Started, Started: t})
	})
}

// End records how the latest attempt of entry ended.
func End(path, entry, outcome, reason string, t time.Time) error {
	return Update(path, func(l []Attempt) []Attempt {
		for i := len(l) - 1; i >= 0; i-- {
			if l[i].Entry == entry && l[i].Outcome == Started {
				l[i].Outcome, l[i].Reason, l[i].Ended = outcome, reason, t
				break
			}
		}
		return l
	})
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing boot attempts: %w", err)
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing boot attempts: %w", err)
	}
	return nil
}
