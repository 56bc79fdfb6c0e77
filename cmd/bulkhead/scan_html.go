package main

import (
	"bytes"

	"github.com/bulkhead-dev/bulkhead/builder/scan"
	"github.com/bulkhead-dev/bulkhead/builder/scan/htmlreport"
	"github.com/bulkhead-dev/bulkhead/internal/atomicfile"
)

// writeHTMLReport writes scan --html's page, whole or not at all.
func writeHTMLReport(path string, r *scan.Report) error {
	var b bytes.Buffer
	if err := htmlreport.Write(&b, r); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes(), 0o644)
}
