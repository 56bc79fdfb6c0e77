package hostapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Puller is a Backend that can also pull an update from a registry
// (POST /v1/update?ref=REF, no body): it fetches, checks and installs the
// update published at ref, with the same refusals as Update.
type Puller interface {
	Pull(ctx context.Context, ref string) (UpdateResult, error)
}

// pull serves POST /v1/update?ref=REF.
func (h *handler) pull(w http.ResponseWriter, r *http.Request, ref string) {
	p, ok := h.cfg.Backend.(Puller)
	if !ok {
		h.fail(w, r, errors.New("this host cannot pull updates from a registry"))
		return
	}
	res, err := p.Pull(r.Context(), ref)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res.Reboot = r.URL.Query().Get("reboot") == "1"
	h.cfg.Logf("api: %s installed %s from %s (entry %s, %d bytes fetched)", clientName(r), res.Version, ref, res.Entry, res.Fetched)
	writeJSON(w, http.StatusOK, res)
	if res.Reboot {
		h.rebootSoon()
	}
}

// Pull asks the host to pull, check and install the update at ref.
func (c *Client) Pull(ctx context.Context, ref string, reboot bool) (UpdateResult, error) {
	q := url.Values{"ref": {ref}}
	if reboot {
		q.Set("reboot", "1")
	}
	var res UpdateResult
	err := c.do(ctx, http.MethodPost, PathUpdate+"?"+q.Encode(), nil, 0, &res)
	return res, err
}
