// Command hello is bulkhead's example service: a static HTTP server that
// answers GET / with "hello from <hostname> (hello <version>)" and
// GET /healthz with "ok". With -crash-after it exits with status 3 after a
// while, so a spec can declare a crashing service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// crashCode is the exit status of a -crash-after exit.
const crashCode = 3

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hello", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":8080", "address to listen on")
	crashAfter := fs.Duration("crash-after", 0, "exit with status 3 after this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "hello: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "hello %s: listening on %s\n", version, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *crashAfter > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, *crashAfter, errCrash)
		defer cancel()
	}
	srv := &http.Server{Handler: handler(host), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "hello: %v\n", err)
		return 1
	}
	if errors.Is(context.Cause(ctx), errCrash) {
		fmt.Fprintf(stderr, "hello: crashing after %s as asked\n", *crashAfter)
		return crashCode
	}
	return 0
}

var errCrash = errors.New("crash-after elapsed")

func handler(host string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s (hello %s)\n", host, version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}
