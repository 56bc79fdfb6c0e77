// Package vuln matches a host's packages against an offline copy of the OSV
// database (a directory or zip of OSV JSON records, as the OSV project
// publishes them per ecosystem) and applies a vulnerability policy: a
// severity threshold and an allowlist with expiry dates.
package vuln

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// record is the part of an OSV record bulkhead reads.
type record struct {
	ID               string     `json:"id"`
	Aliases          []string   `json:"aliases"`
	Summary          string     `json:"summary"`
	Withdrawn        string     `json:"withdrawn"`
	Severity         []severity `json:"severity"`
	Affected         []affected `json:"affected"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
}

type severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Ranges            []osvRange `json:"ranges"`
	Versions          []string   `json:"versions"`
	Severity          []severity `json:"severity"`
	EcosystemSpecific struct {
		Severity string `json:"severity"`
	} `json:"ecosystem_specific"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
}

type osvRange struct {
	Type   string              `json:"type"`
	Events []map[string]string `json:"events"`
}

// entry is one affected package of one record, as the DB keeps it.
type entry struct {
	id        string
	aliases   []string
	summary   string
	ecosystem string
	severity  string // low, medium, high, critical, or "" for unknown
	aff       affected
}

// DB is the part of an OSV database that concerns some packages.
type DB struct {
	byKey map[string][]entry // ecosystem base + "\x00" + name
}

func dbKey(ecosystem, name string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return base + "\x00" + name
}

// Load reads the OSV records at path: a directory (searched recursively
// for .json and .zip files), a .zip, or a single .json record. Only
// affected packages for which want(ecosystem, name) is true are kept, so a
// whole ecosystem's database costs little memory. want may be nil.
func Load(path string, want func(ecosystem, name string) bool) (*DB, error) {
	db := &DB{byKey: map[string][]entry{}}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loading vulnerability database: %w", err)
	}
	if !st.IsDir() {
		err = db.loadFile(path, want)
	} else {
		err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			return db.loadFile(p, want)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("loading vulnerability database: %w", err)
	}
	return db, nil
}

func (db *DB) loadFile(p string, want func(string, string) bool) error {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".zip":
		return db.loadZip(p, want)
	case ".json":
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return db.add(p, f, want)
	}
	return nil
}

func (db *DB) loadZip(p string, want func(string, string) bool) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return err
	}
	defer zr.Close()
	files := zr.File
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	for _, zf := range files {
		if !strings.HasSuffix(zf.Name, ".json") {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", p, zf.Name, err)
		}
		err = db.add(p+":"+zf.Name, rc, want)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) add(name string, r io.Reader, want func(string, string) bool) error {
	var rec record
	if err := json.NewDecoder(r).Decode(&rec); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if rec.ID == "" || rec.Withdrawn != "" {
		return nil
	}
	for _, a := range rec.Affected {
		eco, pkg := a.Package.Ecosystem, a.Package.Name
		if want != nil && !want(eco, pkg) {
			continue
		}
		k := dbKey(eco, pkg)
		db.byKey[k] = append(db.byKey[k], entry{
			id: rec.ID, aliases: rec.Aliases, summary: rec.Summary, ecosystem: eco,
			severity: recordSeverity(&rec, &a), aff: a,
		})
	}
	return nil
}

// Len is the number of affected-package entries loaded.
func (db *DB) Len() int {
	n := 0
	for _, es := range db.byKey {
		n += len(es)
	}
	return n
}
