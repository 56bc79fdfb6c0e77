package ocispec

import (
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// parseRlimits reads "name,soft,hard" entries (see config.ParseRlimit).
func parseRlimits(entries []string) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, e := range entries {
		r, err := config.ParseRlimit(e)
		if err != nil {
			return nil, fmt.Errorf("parsing rlimits: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}
