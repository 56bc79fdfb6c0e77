package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"syscall"
)

// fileDigest is what GET /digest says of a file: never its content.
type fileDigest struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   string `json:"mode,omitempty"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Error  string `json:"error,omitempty"`

	cause error
}

func (d fileDigest) err() error { return d.cause }

// serveDigest answers GET /digest?path=FILE with the SHA-256, mode and
// owner of a file the service can read (-digests: a test of run-time
// secrets asks which secrets reached the service without seeing them),
// or with the error reading it: 404 when it does not exist, 403 when it
// may not be read.
func serveDigest(w http.ResponseWriter, r *http.Request) {
	d := digestOf(r.URL.Query().Get("path"))
	w.Header().Set("Content-Type", "application/json")
	switch {
	case d.Error == "":
	case errors.Is(d.err(), fs.ErrNotExist):
		w.WriteHeader(http.StatusNotFound)
	case errors.Is(d.err(), fs.ErrPermission):
		w.WriteHeader(http.StatusForbidden)
	default:
		w.WriteHeader(http.StatusInternalServerError)
	}
	_ = json.NewEncoder(w).Encode(d)
}

func digestOf(p string) (d fileDigest) {
	d.Path = p
	f, err := os.Open(p)
	if err != nil {
		d.Error, d.cause = err.Error(), err
		return d
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		d.Mode = fi.Mode().Perm().String()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			d.UID, d.GID = st.Uid, st.Gid
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 1<<20)); err != nil {
		d.Error, d.cause = err.Error(), err
		return d
	}
	d.SHA256 = hex.EncodeToString(h.Sum(nil))
	return d
}
