package main

import (
	"context"
	"errors"
	"io"
)

// Placeholder until the lock verb lands; replaced by its real file.
func lockCommand() command {
	return command{
		name:    "lock",
		summary: "(not yet implemented)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return errors.New("not implemented")
		},
	}
}
