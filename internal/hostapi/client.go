package hostapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
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
	"strings"
	"sync"
)

// ClientConfig configures NewClient.
type ClientConfig struct {
	// Addr is the host's HOST[:PORT] (default port DefaultPort).
	Addr string
	// Cert is the operator's client certificate and key.
	Cert tls.Certificate
	// Fingerprint pins the host's certificate (sha256:HEX). Without it the
	// client trusts the fingerprint recorded in KnownHosts, and records it
	// there on first use.
	Fingerprint string
	// KnownHosts is the file of "ADDR sha256:HEX" lines.
	KnownHosts string
	// FirstUse is told when a host's fingerprint is recorded.
	FirstUse func(addr, fingerprint string)
}

// Client talks to one host's API.
type Client struct {
	base string
	http *http.Client
}

// ErrHostKeyChanged means the host presented another certificate than the
// one pinned or recorded for it.
var ErrHostKeyChanged = errors.New("host certificate changed")

// NewClient returns a client for cfg.Addr.
func NewClient(cfg ClientConfig) (*Client, error) {
	addr := cfg.Addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(DefaultPort))
	}
	pin := &pinner{addr: addr, cfg: cfg}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cfg.Cert},
			// The host's certificate is self-signed: it is checked by its
			// fingerprint in VerifyConnection, not against a CA.
			InsecureSkipVerify: true,
			VerifyConnection:   pin.verify,
		},
		ForceAttemptHTTP2: false,
	}
	return &Client{base: "https://" + addr, http: &http.Client{Transport: tr}}, nil
}

// pinner checks the host's certificate against the pinned or recorded
// fingerprint.
type pinner struct {
	addr string
	cfg  ClientConfig
	mu   sync.Mutex
}

func (p *pinner) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the host sent no certificate")
	}
	got := Fingerprint(cs.PeerCertificates[0].Raw)
	if p.cfg.Fingerprint != "" {
		if !strings.EqualFold(got, p.cfg.Fingerprint) {
			return fmt.Errorf("%w: %s presented %s, pinned %s", ErrHostKeyChanged, p.addr, got, p.cfg.Fingerprint)
		}
		return nil
	}
	if p.cfg.KnownHosts == "" {
		return fmt.Errorf("no fingerprint pinned for %s and no known-hosts file", p.addr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	known, err := lookupKnown(p.cfg.KnownHosts, p.addr)
	if err != nil {
		return err
	}
	switch {
	case known == "":
		if err := appendKnown(p.cfg.KnownHosts, p.addr, got); err != nil {
			return err
		}
		if p.cfg.FirstUse != nil {
			p.cfg.FirstUse(p.addr, got)
		}
		return nil
	case !strings.EqualFold(known, got):
		return fmt.Errorf("%w: %s presented %s, but %s records %s (remove that line if the host was re-imaged)",
			ErrHostKeyChanged, p.addr, got, p.cfg.KnownHosts, known)
	}
	return nil
}

func lookupKnown(path, addr string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading known hosts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == addr {
			return fields[1], nil
		}
	}
	return "", sc.Err()
}

func appendKnown(path, addr, fp string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("recording known host: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("recording known host: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s %s\n", addr, fp)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("recording known host: %w", err)
	}
	return nil
}

// Status asks for the host's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, PathStatus, nil, -1, &st)
	return st, err
}

// Update uploads a bundle of size bytes; with reboot the host reboots into
// it once committed.
func (c *Client) Update(ctx context.Context, bundle io.Reader, size int64, reboot bool) (UpdateResult, error) {
	var res UpdateResult
	err := c.do(ctx, http.MethodPost, PathUpdate+query("reboot", reboot), bundle, size, &res)
	return res, err
}

// UpdateFrom has the host download the bundle at url (http or https)
// itself and install it as Update does.
func (c *Client) UpdateFrom(ctx context.Context, bundleURL string, reboot bool) (UpdateResult, error) {
	var res UpdateResult
	q := url.Values{"url": {bundleURL}}
	if reboot {
		q.Set("reboot", "1")
	}
	err := c.do(ctx, http.MethodPost, PathUpdate+"?"+q.Encode(), nil, 0, &res)
	return res, err
}

// Reboot asks the host to reboot.
func (c *Client) Reboot(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathReboot, nil, 0, nil)
}

// Rollback makes the host's next boot use its other blessed version.
func (c *Client) Rollback(ctx context.Context, reboot bool) (string, error) {
	var res struct {
		NextBoot string `json:"next_boot"`
	}
	err := c.do(ctx, http.MethodPost, PathRollback+query("reboot", reboot), nil, 0, &res)
	return res.NextBoot, err
}

// Logs returns the last lines of the host's log name.
func (c *Client) Logs(ctx context.Context, name string, lines int) ([]byte, error) {
	var out bytes.Buffer
	q := url.Values{"name": {name}, "lines": {strconv.Itoa(lines)}}
	err := c.do(ctx, http.MethodGet, PathLogs+"?"+q.Encode(), nil, -1, &out)
	return out.Bytes(), err
}

func query(key string, on bool) string {
	if on {
		return "?" + key + "=1"
	}
	return ""
}

// maxAnswer bounds what the client reads of an answer.
const maxAnswer = 64 << 20

// do sends a request and decodes a JSON answer into out (or copies a
// text answer into a *bytes.Buffer); an error answer becomes an error with
// the host's message.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, size int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("host answered %s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("host answered %s", resp.Status)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *bytes.Buffer:
		o.Write(b)
		return nil
	default:
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
		}
		return nil
	}
}
