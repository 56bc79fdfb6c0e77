// Command init is the bulkhead host's PID 1 (see internal/init/boot).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/bulkhead-dev/bulkhead/internal/init/boot"
)

func main() {
	if err := boot.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bulkhead-init:", err)
		os.Exit(1)
	}
}
