package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at link time with -X main.version=...; otherwise the module
// version from the build info is used.
var version = ""

// commit is set at link time (make build: -X main.commit=...) when the Go
// build info carries no VCS revision.
var commit = ""

func bulkheadVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// binaryInfo is what version prints: where this binary came from.
type binaryInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func readBinaryInfo() binaryInfo {
	info := binaryInfo{Version: bulkheadVersion(), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info.Commit = commit
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

func versionCommand() command {
	return command{
		name:    "version",
		summary: "print bulkhead's version, commit, Go version and platform",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			fs := newFlags("version", "[--json]", stderr)
			asJSON := fs.Bool("json", false, "print it as JSON")
			if err := parseArgs(fs, args); err != nil {
				return err
			}
			if fs.NArg() != 0 {
				return fmt.Errorf("%w: version takes no arguments", errUsage)
			}
			info := readBinaryInfo()
			if *asJSON {
				return writeJSON(stdout, info)
			}
			commit := "unknown"
			if info.Commit != "" {
				commit = info.Commit
				if info.Modified {
					commit += " (modified)"
				}
				if info.Time != "" {
					commit += " " + info.Time
				}
			}
			fmt.Fprintf(stdout, "bulkhead %s\ncommit   %s\ngo       %s\nplatform %s\n", info.Version, commit, info.Go, info.Platform)
			return nil
		},
	}
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}
