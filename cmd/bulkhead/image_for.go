package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/builder/build"
	"github.com/bulkhead-dev/bulkhead/builder/config"
	"github.com/bulkhead-dev/bulkhead/builder/recipe"
	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/term"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// recipesFor keeps the recipes that build an image the specs use, in the
// given formats (a disk format adds the boot loader), and says what it
// left out on stderr.
func recipesFor(recipes []*recipe.Recipe, specs []string, formats string, stderr io.Writer) ([]*recipe.Recipe, error) {
	spec, err := config.Load(specs...)
	if err != nil {
		return nil, err
	}
	fmts, err := parseFormats(formats)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, r := range build.BuildRefs(spec, fmts) {
		used[canonicalRef(r.Ref)] = true
	}
	var keep, skipped []*recipe.Recipe
	for _, r := range recipes {
		if used[canonicalRef(r.Ref())] {
			keep = append(keep, r)
		} else {
			skipped = append(skipped, r)
		}
	}
	for _, r := range skipped {
		fmt.Fprintf(stderr, "%-28s skipped: not used by %s\n", r.Ref(), strings.Join(specs, " "))
	}
	return keep, nil
}

// canonicalRef expands a reference Docker-style (bulkhead/hello:dev is
// index.docker.io/bulkhead/hello:dev), or returns it as is when it does not
// parse.
func canonicalRef(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	return r.Name()
}

// showProgress, on a terminal, keeps one line saying what is being built
// and for how long, until the returned stop is called; elsewhere it does
// nothing, so logs and CI output stay one line per image.
func showProgress(w io.Writer, what string) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		spin := `|/-\`
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(f, "\r\033[K%c building %s  %s", spin[i%len(spin)], what, time.Since(start).Round(time.Second))
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
