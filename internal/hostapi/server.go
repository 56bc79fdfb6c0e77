package hostapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Backend is what a host offers through the API; the init implements it.
// Every method must leave the host serving when it fails.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	// Update installs the bundle file at path (spooled from the upload) into
	// the inactive slot and commits it; it must refuse a bad bundle without
	// changing the host.
	Update(ctx context.Context, path string) (UpdateResult, error)
	// Reboot reboots the host (asynchronously).
	Reboot()
	// Rollback makes the next boot use the other blessed version and says
	// which.
	Rollback(ctx context.Context) (string, error)
	// Log returns the last lines of the log named name (/run/log/NAME.log).
	Log(name string, lines int) ([]byte, error)
}

// ErrRefused marks a Backend error that is the request's fault (a bundle
// refused, no version to roll back to): the API answers 422, not 500.
var ErrRefused = errors.New("refused")

// Server limits.
const (
	DefaultMaxUpload = 4 << 30
	maxLogLines      = 10000
)

// ServerConfig configures NewServer.
type ServerConfig struct {
	Backend   Backend
	ClientCAs *x509.CertPool  // the operator CA
	Identity  tls.Certificate // the host's certificate
	SpoolDir  string          // where uploads are kept while they are applied (on /var)
	MaxUpload int64           // default DefaultMaxUpload
	Logf      func(format string, args ...any)
}

// NewServer returns the API server on addr: TLS 1.3 only, and only for
// clients whose certificate the operator CA signed. Serve it with
// ListenAndServeTLS("", "").
func NewServer(addr string, cfg ServerConfig) (*http.Server, error) {
	if cfg.Backend == nil || cfg.ClientCAs == nil || len(cfg.Identity.Certificate) == 0 || cfg.SpoolDir == "" {
		return nil, errors.New("host api: backend, client CAs, identity and spool directory are required")
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	h := &handler{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, h.status)
	mux.HandleFunc("POST "+PathUpdate, h.update)
	mux.HandleFunc("POST "+PathReboot, h.reboot)
	mux.HandleFunc("POST "+PathRollback, h.rollback)
	mux.HandleFunc("GET "+PathLogs, h.logs)
	return &http.Server{
		Addr:    addr,
		Handler: mux,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    cfg.ClientCAs,
			Certificates: []tls.Certificate{cfg.Identity},
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}, nil
}

type handler struct {
	cfg      ServerConfig
	updating sync.Mutex
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.cfg.Backend.Status(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// update spools the uploaded bundle to a file (bounded by MaxUpload), has
// the backend apply it, and removes the file. One update at a time.
func (h *handler) update(w http.ResponseWriter, r *http.Request) {
	if !h.updating.TryLock() {
		writeJSON(w, http.StatusConflict, Error{"an update is already running"})
		return
	}
	defer h.updating.Unlock()
	if ref := r.URL.Query().Get("ref"); ref != "" {
		h.pull(w, r, ref)
		return
	}
	if r.ContentLength > h.cfg.MaxUpload {
		writeJSON(w, http.StatusRequestEntityTooLarge, Error{fmt.Sprintf("bundle of %d bytes is over the limit of %d", r.ContentLength, h.cfg.MaxUpload)})
		return
	}
	var path string
	var err error
	if src := r.URL.Query().Get("url"); src != "" {
		path, err = h.spoolURL(r.Context(), src)
	} else {
		path, err = h.spool(r.Body)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer os.Remove(path)
	res, err := h.cfg.Backend.Update(r.Context(), path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res.Reboot = r.URL.Query().Get("reboot") == "1"
	h.cfg.Logf("api: %s installed %s (entry %s)", clientName(r), res.Version, res.Entry)
	writeJSON(w, http.StatusOK, res)
	if res.Reboot {
		h.rebootSoon()
	}
}

var errTooLarge = errors.New("upload too large")

// errFetch marks a bundle URL that could not be fetched (502).
var errFetch = errors.New("fetching bundle")

// fetchTimeout bounds the download of a bundle from a URL.
const fetchTimeout = 30 * time.Minute

// spoolURL downloads the bundle at src (http or https; https checks the
// server against the CA certificates the root carries) into the spool.
func (h *handler) spoolURL(ctx context.Context, src string) (string, error) {
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: %q is not an http:// or https:// URL", ErrRefused, src)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return "", fmt.Errorf("%w %s: %v", errFetch, src, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w %s: %v", errFetch, src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w %s: %s", errFetch, src, resp.Status)
	}
	if resp.ContentLength > h.cfg.MaxUpload {
		return "", fmt.Errorf("%w: %s is %d bytes, over %d", errTooLarge, src, resp.ContentLength, h.cfg.MaxUpload)
	}
	return h.spool(resp.Body)
}

func (h *handler) spool(body io.Reader) (string, error) {
	if err := os.MkdirAll(h.cfg.SpoolDir, 0o700); err != nil {
		return "", fmt.Errorf("spooling upload: %w", err)
	}
	f, err := os.CreateTemp(h.cfg.SpoolDir, ".upload-*.bundle")
	if err != nil {
		return "", fmt.Errorf("spooling upload: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(body, h.cfg.MaxUpload+1))
	if err == nil && n > h.cfg.MaxUpload {
		err = fmt.Errorf("%w: over %d bytes", errTooLarge, h.cfg.MaxUpload)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		if errors.Is(err, errTooLarge) {
			return "", err
		}
		return "", fmt.Errorf("spooling upload: %w", err)
	}
	return f.Name(), nil
}

func (h *handler) reboot(w http.ResponseWriter, r *http.Request) {
	h.cfg.Logf("api: %s asked for a reboot", clientName(r))
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "rebooting"})
	h.rebootSoon()
}

// rebootSoon reboots once the answer had time to leave.
func (h *handler) rebootSoon() {
	time.AfterFunc(500*time.Millisecond, h.cfg.Backend.Reboot)
}

func (h *handler) rollback(w http.ResponseWriter, r *http.Request) {
	to, err := h.cfg.Backend.Rollback(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.cfg.Logf("api: %s rolled back to %s", clientName(r), to)
	writeJSON(w, http.StatusOK, map[string]string{"next_boot": to})
	if r.URL.Query().Get("reboot") == "1" {
		h.rebootSoon()
	}
}

var logName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "init"
	}
	if !logName.MatchString(name) {
		writeJSON(w, http.StatusBadRequest, Error{fmt.Sprintf("invalid log name %q", name)})
		return
	}
	lines := 200
	if s := r.URL.Query().Get("lines"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLogLines {
			writeJSON(w, http.StatusBadRequest, Error{fmt.Sprintf("lines must be 1 to %d", maxLogLines)})
			return
		}
		lines = n
	}
	b, err := h.cfg.Backend.Log(name, lines)
	if errors.Is(err, os.ErrNotExist) {
		writeJSON(w, http.StatusNotFound, Error{fmt.Sprintf("no log named %q", name)})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

// fail answers an error: 413 for an oversized upload, 422 for a refusal,
// 500 otherwise.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, errTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, errFetch):
		code = http.StatusBadGateway
	case errors.Is(err, ErrRefused):
		code = http.StatusUnprocessableEntity
	}
	h.cfg.Logf("api: %s %s from %s: %v", r.Method, r.URL.Path, clientName(r), err)
	writeJSON(w, code, Error{err.Error()})
}

func clientName(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	return r.RemoteAddr
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
