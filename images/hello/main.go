// Command hello is bulkhead's example service: a static HTTP server that
// answers GET / with "hello from <hostname> (hello <version>)" and
// GET /healthz with "ok". With -crash-after it exits with status 3 after a
// while, so a spec can declare a crashing service. With -digests it also
// answers GET /digest?path=FILE with a file's SHA-256, mode and owner
// (never its content), and logs SIGHUP instead of dying of it: tests of
// run-time secrets use both.
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
	digests := fs.Bool("digests", false, "answer GET /digest?path=FILE with the file's SHA-256, mode and owner; log SIGHUP")
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
	h := handler(host)
	if *digests {
		h = withDigests(h, stdout)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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

// withDigests adds GET /digest to h and logs each SIGHUP (the signal a
// service gets when a secret it reads changes).
func withDigests(h http.Handler, stdout io.Writer) http.Handler {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			fmt.Fprintln(stdout, "hello: SIGHUP: secrets changed")
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /digest", serveDigest)
	mux.Handle("/", h)
	return mux
}
