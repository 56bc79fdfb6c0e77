// Package metadatatest serves an EC2 instance metadata service (IMDSv2
// only: a session token is required) and a GCP metadata server for tests,
// as http.Handlers on 127.0.0.1. Values can be set, changed and removed
// while a test runs, and the services can be made unavailable, to show
// what a host does when its metadata is missing or slow.
package metadatatest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Server holds the values and the state of both services.
type Server struct {
	mu     sync.Mutex
	values map[string][]byte // by path: /latest/KEY or /computeMetadata/v1/KEY
	tokens map[string]bool
	down   bool
	hits   map[string]int
}

// New returns an empty, available server.
func New() *Server {
	return &Server{values: map[string][]byte{}, tokens: map[string]bool{}, hits: map[string]int{}}
}

// SetEC2 sets the value at /latest/KEY.
func (s *Server) SetEC2(key string, v []byte) { s.set("/latest/"+key, v) }

// SetGCP sets the value at /computeMetadata/v1/KEY.
func (s *Server) SetGCP(key string, v []byte) { s.set("/computeMetadata/v1/"+key, v) }

func (s *Server) set(p string, v []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v == nil {
		delete(s.values, p)
		return
	}
	s.values[p] = append([]byte(nil), v...)
}

// SetDown makes every request fail with 503 (down) or be served again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Hits says how many requests asked for a path.
func (s *Server) Hits(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[p]
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits[r.URL.Path]++
	switch {
	case s.down:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case strings.HasPrefix(r.URL.Path, "/latest/"):
		s.ec2(w, r)
	case strings.HasPrefix(r.URL.Path, "/computeMetadata/v1/"):
		s.gcp(w, r)
	default:
		http.NotFound(w, r)
	}
}

// ec2 is IMDSv2: PUT /latest/api/token with a TTL gives a token that every
// GET must carry; a proxied request (X-Forwarded-For) is refused, as EC2
// does.
func (s *Server) ec2(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if r.URL.Path == "/latest/api/token" {
		ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		if r.Method != http.MethodPut || err != nil || ttl < 1 || ttl > 21600 {
			http.Error(w, "bad token request", http.StatusBadRequest)
			return
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		tok := hex.EncodeToString(b)
		s.tokens[tok] = true
		w.Write([]byte(tok))
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	if !s.tokens[r.Header.Get("X-aws-ec2-metadata-token")] {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	s.value(w, r)
}

func (s *Server) gcp(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Metadata-Flavor", "Google")
	if r.Header.Get("Metadata-Flavor") != "Google" || r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
		return
	}
	s.value(w, r)
}

func (s *Server) value(w http.ResponseWriter, r *http.Request) {
	v, ok := s.values[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(v)
}
