package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
)

// describeOutput measures a written output file: size and sha256 digest.
func describeOutput(path, format string) (outputSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return outputSummary{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return outputSummary{}, err
	}
	return outputSummary{Path: path, Format: format, Size: n, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}
