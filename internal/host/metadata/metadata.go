// Package metadata reads values from the places a cloud or a hypervisor
// hands them to a machine: qemu's fw_cfg entries, the EC2 instance
// metadata service (IMDSv2), Google's metadata server, and OpenStack or
// NoCloud config drives. The init uses it for run-time secrets; it never
// logs or keeps what it reads.
package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxSize bounds a value.
const MaxSize = 1 << 20

// ErrNotFound says the provider answered and has no such key.
var ErrNotFound = errors.New("no such key")

// Provider reads one key.
type Provider interface {
	Fetch(ctx context.Context, key string) ([]byte, error)
}

// LinkLocal is where the EC2 and GCP metadata services answer.
const LinkLocal = "http://169.254.169.254"

// httpClient has no proxy and no keep-alive: each fetch is short and rare.
func httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// do sends req and returns its body (at most MaxSize), ErrNotFound on a
// 404, an error naming the status otherwise.
func do(c *http.Client, req *http.Request) ([]byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	return readLimited(resp.Body)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("value larger than %d bytes", MaxSize)
	}
	return b, nil
}
