// Command init is the bulkhead host's PID 1 (see internal/host/boot), and
// also containerd and its runc shim (see internal/host/ctrdmain): the image links
// /usr/bin/containerd and /usr/bin/containerd-shim-runc-v2 to it, and it
// picks its role from the name it was started under.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bulkhead-dev/bulkhead/internal/host/boot"
	"github.com/bulkhead-dev/bulkhead/internal/host/ctrdmain"
)

func main() {
	switch role(os.Getpid(), os.Args) {
	case "containerd":
		os.Exit(ctrdmain.Containerd())
	case "shim":
		ctrdmain.Shim()
		return
	}
	if err := boot.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bulkhead-init:", err)
		os.Exit(1)
	}
}

// role is "init", "containerd" or "shim". The shim starts its long-running
// half through os.Executable, which names this binary, with arguments that
// begin with -namespace; PID 1 is always the init.
func role(pid int, args []string) string {
	if pid == 1 || len(args) == 0 {
		return "init"
	}
	switch filepath.Base(args[0]) {
	case "containerd":
		return "containerd"
	case "containerd-shim-runc-v2":
		return "shim"
	}
	if len(args) > 1 && args[1] == "-namespace" {
		return "shim"
	}
	return "init"
}
