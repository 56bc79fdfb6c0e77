package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at link time with -X main.version=...; otherwise the module
// version from the build info is used.
var version = ""

func bulkheadVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func versionCommand() command {
	return command{
		name:    "version",
		summary: "print bulkhead's version",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			fs := newFlags("version", "", stderr)
			if err := fs.Parse(args); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "bulkhead %s\n", bulkheadVersion())
			return nil
		},
	}
}
