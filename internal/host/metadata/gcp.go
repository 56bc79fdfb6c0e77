package metadata

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// GCP reads Google's metadata server: GET /computeMetadata/v1/KEY with
// Metadata-Flavor: Google, and only an answer carrying the same header
// counts. Keys are paths under /computeMetadata/v1/:
// instance/attributes/NAME, project/attributes/NAME, instance/hostname.
type GCP struct {
	// Endpoint is the server's base URL; default LinkLocal (the address
	// metadata.google.internal names, so no DNS is needed).
	Endpoint string
	client   *http.Client
}

// Fetch reads key.
func (g *GCP) Fetch(ctx context.Context, key string) ([]byte, error) {
	base := LinkLocal
	if g.Endpoint != "" {
		base = strings.TrimSuffix(g.Endpoint, "/")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/computeMetadata/v1/"+key, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	if g.client == nil {
		g.client = httpClient()
		g.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	google := resp.Header.Get("Metadata-Flavor") == "Google"
	switch {
	case google && resp.StatusCode == http.StatusOK:
		return readLimited(resp.Body)
	case google && resp.StatusCode == http.StatusNotFound:
		return nil, ErrNotFound
	case google:
		return nil, fmt.Errorf("GET %s: %s", req.URL.Path, resp.Status)
	}
	return nil, fmt.Errorf("GET %s: %s without Metadata-Flavor: Google (not a GCP metadata server)", req.URL.Path, resp.Status)
}
