package main

import (
	"context"
	"errors"
	"io"
)

// Placeholder until the run verb lands; replaced by its real file.
func runCommand() command {
	return command{
		name:    "run",
		summary: "(not yet implemented)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return errors.New("not implemented")
		},
	}
}
