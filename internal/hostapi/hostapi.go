// Package hostapi is the host API: what an operator reaches a running host
// through instead of a shell. The init serves it over TLS 1.3 and accepts
// only clients whose certificate the operator CA baked into the root has
// signed; the CLI (bulkhead host ...) is its client. This package holds
// both ends' shared parts: the routes and the JSON they carry, the server
// (around a Backend the init implements) and the client. It imports only
// the standard library and the host's attempt record.
package hostapi

import (
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/host/attempts"
)

// DefaultPort is where the API listens unless the spec says otherwise.
const DefaultPort = 7443

// Routes.
const (
	PathStatus   = "/v1/status"
	PathUpdate   = "/v1/update"
	PathReboot   = "/v1/reboot"
	PathRollback = "/v1/rollback"
	PathLogs     = "/v1/logs"
)

// Paths in the root and on /var.
const (
	// CAPath is the operator CA, baked into the verified root.
	CAPath = "/etc/bulkhead/api/ca.pem"
	// ListenPath holds the address to listen on, baked into the root.
	ListenPath = "/etc/bulkhead/api/listen"
	// IdentityDir keeps the host's own key and certificate (made on first
	// boot, never in the image).
	IdentityDir = "/var/lib/bulkhead/api"
)

// Status is what GET /v1/status answers.
type Status struct {
	Hostname string             `json:"hostname"`
	Version  string             `json:"version"` // the running version
	Floor    string             `json:"floor,omitempty"`
	Uptime   Duration           `json:"uptime"`
	Entries  []Entry            `json:"entries"`
	Services []Service          `json:"services"`
	Attempts []attempts.Attempt `json:"attempts,omitempty"`
}

// Entry is one boot entry on the ESP.
type Entry struct {
	File      string `json:"file"`
	Version   string `json:"version"`
	Blessed   bool   `json:"blessed"`
	TriesLeft int    `json:"tries_left,omitempty"`
	TriesDone int    `json:"tries_done,omitempty"`
	Running   bool   `json:"running"`
}

// Service is one service's state.
type Service struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	// Healthy is nil for a service without a health check.
	Healthy *bool  `json:"healthy,omitempty"`
	Error   string `json:"error,omitempty"`
}

// UpdateResult is what POST /v1/update answers once the update is
// committed (the host boots it on the next reboot).
type UpdateResult struct {
	Version string `json:"version"`
	Entry   string `json:"entry"`
	KeyID   string `json:"key_id"`
	Reboot  bool   `json:"reboot"` // the host reboots now
	// Fetched is what a pull (update?ref=) read from the registry.
	Fetched int64 `json:"fetched,omitempty"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

// Duration is a time.Duration written as a Go duration string.
type Duration time.Duration

// MarshalText writes d as "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}
