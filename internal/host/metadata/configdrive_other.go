//go:build !linux

package metadata

import (
	"context"
	"errors"
)

// Fetch needs Linux.
func (ConfigDrive) Fetch(context.Context, string) ([]byte, error) {
	return nil, errors.New("config drives are read on Linux only")
}
