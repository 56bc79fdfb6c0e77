package main

import (
	"context"
	"errors"
	"io"
)

// Placeholder until the image verb lands; replaced by its real file.
func imageCommand() command {
	return command{
		name:    "image",
		summary: "(not yet implemented)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return errors.New("not implemented")
		},
	}
}
