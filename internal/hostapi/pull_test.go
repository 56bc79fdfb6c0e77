package hostapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// pullingBackend is a backend that pulls from registries.
type pullingBackend struct {
	*backend
	refs []string
}

func (b *pullingBackend) Pull(_ context.Context, ref string) (UpdateResult, error) {
	b.refs = append(b.refs, ref)
	if strings.Contains(ref, "unsigned") {
		return UpdateResult{}, ErrRefused
	}
	return UpdateResult{Version: "2.0", Entry: "e", Fetched: 1234}, nil
}

func postPull(h *handler, ref string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.update(w, httptest.NewRequest(http.MethodPost, PathUpdate+"?"+url.Values{"ref": {ref}}.Encode(), nil))
	return w
}

// TestUpdatePull: update?ref= reaches a backend that pulls, with the
// reference, and answers its result; a refusal is 422; a backend that
// cannot pull says so.
func TestUpdatePull(t *testing.T) {
	cfg := ServerConfig{Backend: &backend{}, SpoolDir: t.TempDir(), MaxUpload: 1 << 20, Logf: func(string, ...any) {}}
	if w := postPull(&handler{cfg: cfg}, "127.0.0.1:5000/hosts/x:2.0"); w.Code == http.StatusOK || !strings.Contains(w.Body.String(), "cannot pull") {
		t.Fatalf("pull from a backend without Pull: %d %s", w.Code, w.Body)
	}
	pb := &pullingBackend{backend: &backend{}}
	cfg.Backend = pb
	h := &handler{cfg: cfg}
	w := postPull(h, "127.0.0.1:5000/hosts/x:2.0")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"fetched": 1234`) || len(pb.refs) != 1 || pb.refs[0] != "127.0.0.1:5000/hosts/x:2.0" {
		t.Fatalf("pull: %d %s (refs %v)", w.Code, w.Body, pb.refs)
	}
	if w := postPull(h, "127.0.0.1:5000/hosts/unsigned:2.0"); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("refused pull: %d %s", w.Code, w.Body)
	}
}
