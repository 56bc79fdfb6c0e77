// Command oneshot is bulkhead's example onboot job: it prints
// "oneshot: done" and exits, with status 0 unless -exit says otherwise.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oneshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	code := fs.Int("exit", 0, "exit status")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *code != 0 {
		fmt.Fprintf(stdout, "oneshot: failing with status %d as asked\n", *code)
		return *code
	}
	fmt.Fprintln(stdout, "oneshot: done")
	return 0
}
