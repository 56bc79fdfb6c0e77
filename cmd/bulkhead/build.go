package main

import (
	"context"
	"errors"
	"io"
)

// Placeholder until the build verb lands; replaced by its real file.
func buildCommand() command {
	return command{
		name:    "build",
		summary: "(not yet implemented)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return errors.New("not implemented")
		},
	}
}
