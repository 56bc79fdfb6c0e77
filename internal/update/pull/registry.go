// Package pull installs an update published with `bulkhead update push`
// from any OCI registry, on the host: a small OCI distribution client on
// the standard library (no registry library, no builder code: the init
// links it), the signature check before anything else is fetched, then
// only the chunks the host lacks. Chunks are found in the running slot,
// in the slot about to be overwritten, in the installed versions' kernels
// and initrds, and in the chunk cache under /var that keeps every chunk
// fetched and verified so far, so a cut connection or a power cut resumes
// without fetching a verified chunk twice. A chunk with a delta against
// the running root (update push --from) is fetched as the delta and
// decoded against that root. Each fetched chunk is checked
// against its digest before it is kept; the root is assembled in the
// inactive slot, its verity tree recomputed (never downloaded) and checked
// against the signed root hash, and the commit is internal/host/apply's.
package pull

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Media types of a published update.
const (
	// ArtifactType is the config media type of an update artifact.
	ArtifactType = "application/vnd.bulkhead.update.v1"
	// PackMediaType is a pack of compressed chunks.
	PackMediaType = "application/vnd.bulkhead.update.pack.v1"
	// SignatureArtifactType and EnvelopeMediaType are the signature
	// artifact's config and its one layer, the DSSE envelope.
	SignatureArtifactType = "application/vnd.bulkhead.update.signature.v1"
	EnvelopeMediaType     = "application/vnd.dsse.envelope.v1+json"
	ociManifest           = "application/vnd.oci.image.manifest.v1+json"
)

// maxManifest bounds a registry manifest.
const maxManifest = 4 << 20

// SignatureTag is the tag, by cosign's convention, of the signature of
// the manifest with digest d ("sha256:<hex>" -> "sha256-<hex>.sig").
func SignatureTag(d string) string { return strings.Replace(d, ":", "-", 1) + ".sig" }

// Ref is a parsed reference: [http://]HOST[:PORT]/REPO(:TAG|@DIGEST).
// Registries are reached over HTTPS unless the reference starts with
// http:// or names localhost or 127.0.0.1.
type Ref struct {
	Scheme, Host, Repo, Tag, Digest string
}

// ParseRef parses s.
func ParseRef(s string) (Ref, error) {
	r := Ref{Scheme: "https"}
	if rest, ok := strings.CutPrefix(s, "http://"); ok {
		r.Scheme, s = "http", rest
	}
	host, path, ok := strings.Cut(s, "/")
	if !ok || host == "" || path == "" {
		return Ref{}, fmt.Errorf("parsing reference %q: want HOST/REPO:TAG or HOST/REPO@sha256:...", s)
	}
	r.Host = host
	if h, _, _ := strings.Cut(host, ":"); h == "localhost" || h == "127.0.0.1" {
		r.Scheme = "http"
	}
	if p, d, ok := strings.Cut(path, "@"); ok {
		r.Repo, r.Digest = p, d
	} else if i := strings.LastIndex(path, ":"); i > 0 {
		r.Repo, r.Tag = path[:i], path[i+1:]
	} else {
		r.Repo, r.Tag = path, "latest"
	}
	if r.Digest != "" && !validDigest(r.Digest) {
		return Ref{}, fmt.Errorf("parsing reference %q: bad digest", s)
	}
	return r, nil
}

func (r Ref) String() string {
	if r.Digest != "" {
		return r.Host + "/" + r.Repo + "@" + r.Digest
	}
	return r.Host + "/" + r.Repo + ":" + r.Tag
}

// Client speaks the OCI distribution API to one repository.
type Client struct {
	ref   Ref
	http  *http.Client
	user  string // basic credentials, if any
	pass  string
	token string // a bearer token once the registry asked for one
}

// NewClient returns a client of ref's repository.
func NewClient(ref Ref, hc *http.Client, user, pass string) *Client {
	return &Client{ref: ref, http: hc, user: user, pass: pass}
}

func (c *Client) url(kind, name string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", c.ref.Scheme, c.ref.Host, c.ref.Repo, kind, name)
}

// do sends a GET, answering one authentication challenge.
func (c *Client) do(ctx context.Context, u string, hdr http.Header) (*http.Response, error) {
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		maps(req.Header, hdr)
		c.authorize(req)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || try > 0 {
			return resp, nil
		}
		chal := resp.Header.Get("WWW-Authenticate")
		resp.Body.Close()
		if err := c.login(ctx, chal); err != nil {
			return nil, err
		}
	}
}

func maps(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

func (c *Client) authorize(req *http.Request) {
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "":
		req.SetBasicAuth(c.user, c.pass)
	}
}

// login answers a Bearer challenge with a token (asked with the basic
// credentials, if any); a Basic challenge needs credentials.
func (c *Client) login(ctx context.Context, chal string) error {
	scheme, params, _ := strings.Cut(chal, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if c.user == "" {
			return errors.New("the registry wants credentials and none are configured")
		}
		return nil
	}
	p := challengeParams(params)
	u, err := url.Parse(p["realm"])
	if err != nil || p["realm"] == "" {
		return fmt.Errorf("registry token realm %q: bad url", p["realm"])
	}
	q := u.Query()
	q.Set("service", p["service"])
	q.Set("scope", "repository:"+c.ref.Repo+":pull")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("asking the registry for a token: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("asking the registry for a token: %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return fmt.Errorf("reading registry token: %w", err)
	}
	c.token = tok.Token
	if c.token == "" {
		c.token = tok.AccessToken
	}
	return nil
}

func challengeParams(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		out[strings.ToLower(k)] = strings.Trim(v, `"`)
	}
	return out
}

// Manifest fetches a manifest by tag or digest and returns it with its
// digest (checked against reference when that is a digest).
func (c *Client) Manifest(ctx context.Context, reference string) ([]byte, string, error) {
	resp, err := c.do(ctx, c.url("manifests", reference), http.Header{"Accept": {ociManifest}})
	if err != nil {
		return nil, "", fmt.Errorf("fetching manifest %s: %w", reference, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("fetching manifest %s: %w", reference, statusError(resp))
	}
	b, err := readLimited(resp.Body, maxManifest)
	if err != nil {
		return nil, "", fmt.Errorf("fetching manifest %s: %w", reference, err)
	}
	d := digestOf(b)
	if validDigest(reference) && d != reference {
		return nil, "", fmt.Errorf("fetching manifest %s: digest %s", reference, d)
	}
	return b, d, nil
}

// Blob fetches a whole small blob and checks its digest.
func (c *Client) Blob(ctx context.Context, digest string, limit int64) ([]byte, error) {
	rc, err := c.BlobRange(ctx, digest, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := readLimited(rc, limit)
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", digest, err)
	}
	if digestOf(b) != digest {
		return nil, fmt.Errorf("fetching blob %s: digest mismatch", digest)
	}
	return b, nil
}

// BlobRange returns n bytes of a blob from off (the rest when n < 0),
// with a Range request; a registry that answers with the whole blob is
// read past off.
func (c *Client) BlobRange(ctx context.Context, digest string, off, n int64) (io.ReadCloser, error) {
	hdr := http.Header{}
	if off > 0 || n >= 0 {
		end := ""
		if n >= 0 {
			end = fmt.Sprint(off + n - 1)
		}
		hdr.Set("Range", fmt.Sprintf("bytes=%d-%s", off, end))
	}
	resp, err := c.do(ctx, c.url("blobs", digest), hdr)
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", digest, err)
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		return resp.Body, nil
	case http.StatusOK:
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("fetching blob %s: %w", digest, err)
		}
		return resp.Body, nil
	}
	defer resp.Body.Close()
	return nil, fmt.Errorf("fetching blob %s: %w", digest, statusError(resp))
}

// errNotFound is a registry's 404: not worth asking again.
var errNotFound = errors.New("not found")

func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err := fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	if resp.StatusCode == http.StatusNotFound {
		err = fmt.Errorf("%w: %w", errNotFound, err)
	}
	return err
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	return b, err
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func validDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	b, err := hex.DecodeString(h)
	return ok && err == nil && len(b) == sha256.Size
}

// ReadCredentials reads the user and password for host from a file in
// the form `docker login` and `crane auth login` write (config.json:
// {"auths": {"HOST": {"auth": base64("USER:PASS")}}}).
func ReadCredentials(path, host string) (user, pass string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("reading registry credentials: %w", err)
	}
	defer f.Close()
	b, err := readLimited(f, 1<<20)
	if err != nil {
		return "", "", fmt.Errorf("reading registry credentials: %w", err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth, Username, Password string
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", "", fmt.Errorf("reading registry credentials %s: %w", path, err)
	}
	a, ok := cfg.Auths[host]
	if !ok {
		return "", "", nil
	}
	if a.Auth == "" {
		return a.Username, a.Password, nil
	}
	dec, err := base64.StdEncoding.DecodeString(a.Auth)
	if err != nil {
		return "", "", fmt.Errorf("reading registry credentials %s: %w", path, err)
	}
	user, pass, _ = strings.Cut(string(dec), ":")
	return user, pass, nil
}
