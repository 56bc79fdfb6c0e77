package main

import (
	"context"
	"errors"
	"io"
)

// Placeholder until the validate verb lands; replaced by its real file.
func validateCommand() command {
	return command{
		name:    "validate",
		summary: "(not yet implemented)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return errors.New("not implemented")
		},
	}
}
