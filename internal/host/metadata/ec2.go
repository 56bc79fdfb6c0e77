package metadata

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// EC2 reads the EC2 instance metadata service with IMDSv2 session tokens:
// PUT /latest/api/token, then GET /latest/KEY with the token. Keys are
// paths under /latest/: user-data, meta-data/instance-id,
// meta-data/tags/instance/NAME (with tags in metadata allowed).
type EC2 struct {
	// Endpoint is the service's base URL; default LinkLocal.
	Endpoint string
	// TokenTTL is the session token's lifetime in seconds; default 60.
	TokenTTL int
	client   *http.Client
}

// Fetch gets a fresh token and reads key.
func (e *EC2) Fetch(ctx context.Context, key string) ([]byte, error) {
	tok, err := e.token(ctx)
	if err != nil {
		return nil, fmt.Errorf("getting imdsv2 token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base()+"/latest/"+key, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-aws-ec2-metadata-token", tok)
	return do(e.http(), req)
}

func (e *EC2) token(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, e.base()+"/latest/api/token", nil)
	if err != nil {
		return "", err
	}
	ttl := e.TokenTTL
	if ttl <= 0 {
		ttl = 60
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", fmt.Sprint(ttl))
	b, err := do(e.http(), req)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("empty token")
	}
	return tok, nil
}

func (e *EC2) base() string {
	if e.Endpoint != "" {
		return strings.TrimSuffix(e.Endpoint, "/")
	}
	return LinkLocal
}

func (e *EC2) http() *http.Client {
	if e.client == nil {
		e.client = httpClient()
	}
	return e.client
}
