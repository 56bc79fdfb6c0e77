// Package healthcheck is the contract between the builder and the host for
// a service's health check (a bulkhead extension of the spec): the check's
// fields and rules, the file the build writes beside the service's
// config.json, and how the init probes it. It imports only the standard
// library, so the on-host init links nothing of the builder.
package healthcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// FileName is the check's file in a service's bundle directory.
const FileName = "health.json"

// maxFile bounds what Read accepts.
const maxFile = 64 << 10

// Defaults for a Check's zero values.
const (
	DefaultInterval = 2 * time.Second
	DefaultTimeout  = time.Second
	DefaultRetries  = 3
)

// Check is one service's health check: exactly one of HTTP, TCP or Exec.
// Durations are Go durations ("2s").
type Check struct {
	// HTTP is a URL (http or https) whose GET must answer 2xx or 3xx.
	HTTP string `json:"http,omitempty" yaml:"http,omitempty"`
	// TCP is a HOST:PORT that must accept a connection.
	TCP string `json:"tcp,omitempty" yaml:"tcp,omitempty"`
	// Exec is a command run inside the container that must exit 0.
	Exec []string `json:"exec,omitempty" yaml:"exec,omitempty"`
	// Interval is the time between probes (default 2s).
	Interval string `json:"interval,omitempty" yaml:"interval,omitempty"`
	// Timeout bounds one probe (default 1s).
	Timeout string `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Retries is how many failures in a row make the service unhealthy
	// (default 3).
	Retries int `json:"retries,omitempty" yaml:"retries,omitempty"`
	// StartPeriod is a grace time after each start in which failures do
	// not count (default 0).
	StartPeriod string `json:"start_period,omitempty" yaml:"start_period,omitempty"`
}

// Problem is one thing wrong with a Check, naming its field.
type Problem struct {
	Field string // "http", "tcp", "exec", "interval", ... or "" for the check as a whole
	Msg   string
}

func (p Problem) Error() string {
	if p.Field == "" {
		return p.Msg
	}
	return p.Field + ": " + p.Msg
}

// Problems lists what is wrong with c; none means it is valid.
func (c Check) Problems() []Problem {
	var ps []Problem
	kinds := 0
	for _, set := range []bool{c.HTTP != "", c.TCP != "", len(c.Exec) > 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		ps = append(ps, Problem{"", "set exactly one of http, tcp and exec"})
	}
	if c.HTTP != "" {
		if u, err := url.Parse(c.HTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps = append(ps, Problem{"http", fmt.Sprintf("%q is not an http:// or https:// URL", c.HTTP)})
		}
	}
	if c.TCP != "" {
		if _, port, err := net.SplitHostPort(c.TCP); err != nil || !validPort(port) {
			ps = append(ps, Problem{"tcp", fmt.Sprintf("%q is not HOST:PORT", c.TCP)})
		}
	}
	for _, f := range []struct{ name, v string }{{"interval", c.Interval}, {"timeout", c.Timeout}, {"start_period", c.StartPeriod}} {
		if d, err := time.ParseDuration(f.v); f.v != "" && (err != nil || d <= 0) {
			ps = append(ps, Problem{f.name, fmt.Sprintf("expected a positive duration such as 2s, got %q", f.v)})
		}
	}
	if c.Retries < 0 {
		ps = append(ps, Problem{"retries", fmt.Sprintf("must not be negative, got %d", c.Retries)})
	}
	return ps
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// Timing is a Check's durations and retries with defaults filled in.
type Timing struct {
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

// Timing returns c's timing; call it on a valid Check.
func (c Check) Timing() Timing {
	t := Timing{Interval: DefaultInterval, Timeout: DefaultTimeout, Retries: DefaultRetries}
	if d, err := time.ParseDuration(c.Interval); err == nil && d > 0 {
		t.Interval = d
	}
	if d, err := time.ParseDuration(c.Timeout); err == nil && d > 0 {
		t.Timeout = d
	}
	if d, err := time.ParseDuration(c.StartPeriod); err == nil && d > 0 {
		t.StartPeriod = d
	}
	if c.Retries > 0 {
		t.Retries = c.Retries
	}
	return t
}

// Marshal returns the file the build writes.
func Marshal(c Check) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("writing health check: %w", err)
	}
	return append(b, '\n'), nil
}

// Read reads dir's health check; nil and no error when it has none.
func Read(dir string) (*Check, error) {
	f, err := os.Open(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading health check: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading health check: %w", err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("reading health check %s: over %d bytes", f.Name(), maxFile)
	}
	var c Check
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading health check %s: %w", f.Name(), err)
	}
	if ps := c.Problems(); len(ps) > 0 {
		return nil, fmt.Errorf("health check %s: %w", f.Name(), ps[0])
	}
	return &c, nil
}

// Dialer opens connections for network probes; the init passes one that
// dials inside the service's network namespace.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// ProbeNetwork runs c's HTTP or TCP probe once, bounded by timeout, with
// dial (nil: the host's network). It returns nil when the service answered
// as it should.
func ProbeNetwork(ctx context.Context, c Check, timeout time.Duration, dial Dialer) error {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case c.TCP != "":
		conn, err := dial(ctx, "tcp", c.TCP)
		if err != nil {
			return fmt.Errorf("tcp %s: %w", c.TCP, err)
		}
		return conn.Close()
	case c.HTTP != "":
		return probeHTTP(ctx, c.HTTP, dial)
	}
	return errors.New("not a network check")
}

func probeHTTP(ctx context.Context, target string, dial Dialer) error {
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("http %s: %w", target, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("http %s: %w", target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("http %s: status %s", target, resp.Status)
	}
	return nil
}
