package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
)

// printBanner says what is booting, what is published where, and how to
// stop it, before the console starts.
func printBanner(w io.Writer, c qemu.Config, accel string) {
	what := c.Kernel
	switch {
	case c.Disk != "":
		what = c.Disk
		if c.DiskSize > 0 {
			what += fmt.Sprintf(" as a disk of at least %s", regfile.Size(c.DiskSize))
		}
		if c.Snapshot {
			what += " (snapshot: the image stays unchanged)"
		} else {
			what += " (the guest writes to it; --snapshot keeps it unchanged)"
		}
	case c.ISO != "":
		what = c.ISO
	}
	fmt.Fprintf(w, "bulkhead run: booting %s under %s\n", what, accel)
	for _, f := range c.Forwards {
		host := f.HostAddr
		if host == "" {
			host = "127.0.0.1"
		}
		proto := f.Proto
		if proto == "" {
			proto = "tcp"
		}
		fmt.Fprintf(w, "bulkhead run: published %s:%d -> guest port %d/%s\n", host, f.HostPort, f.GuestPort, proto)
	}
	fmt.Fprintln(w, "bulkhead run: Ctrl-C powers the guest off; a second Ctrl-C kills it")
}

// restartAlerts are the restart counts at which a service is named.
var restartAlerts = map[int]bool{3: true, 10: true, 30: true, 100: true}

// The init's console lines about a service (internal/host/supervise).
var (
	restartRE = regexp.MustCompile(`service (\S+) (?:restarting in|not started, retrying in|crashed \d+ times, backing off)`)
	reasonRE  = regexp.MustCompile(`service (\S+) (exited with status \d+|failed to start: .*)`)
)

// serviceWatch reads the console and writes one line to w when a service
// keeps restarting: the console shows each restart, but among a boot's
// lines a crash loop is easy to miss.
type serviceWatch struct {
	mu       sync.Mutex
	w        io.Writer
	partial  []byte
	restarts map[string]int
	reason   map[string]string
}

func newServiceWatch(w io.Writer) *serviceWatch {
	return &serviceWatch{w: w, restarts: map[string]int{}, reason: map[string]string{}}
}

// maxLine bounds the partial line kept between writes.
const maxLine = 4096

func (s *serviceWatch) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(strings.TrimRight(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) > maxLine {
		s.partial = s.partial[len(s.partial)-maxLine:]
	}
	return len(p), nil
}

func (s *serviceWatch) line(l string) {
	if m := reasonRE.FindStringSubmatch(l); m != nil {
		r := m[2]
		if len(r) > 160 {
			r = r[:160] + "..."
		}
		s.reason[m[1]] = r
		return
	}
	m := restartRE.FindStringSubmatch(l)
	if m == nil {
		return
	}
	name := m[1]
	s.restarts[name]++
	if n := s.restarts[name]; restartAlerts[n] {
		fmt.Fprintf(s.w, "bulkhead run: service %s keeps restarting (%d restarts; last: %s)\n", name, n, s.reason[name])
	}
}
