package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/internal/hostapi"
)

// hostPull has the host pull and install the update at f.ref.
func hostPull(ctx context.Context, c *hostapi.Client, f hostFlags, stdout io.Writer) error {
	res, err := c.Pull(ctx, f.ref, f.reboot)
	if err != nil {
		return fmt.Errorf("updating from %s: %w", f.ref, err)
	}
	line := fmt.Sprintf("installed %s (entry %s, signed by %s)", res.Version, res.Entry, res.KeyID)
	if res.Fetched > 0 {
		line += fmt.Sprintf("; fetched %d bytes", res.Fetched)
	}
	if res.Reboot {
		line += "; rebooting into it"
	}
	return printResult(stdout, f.json, res, line)
}
