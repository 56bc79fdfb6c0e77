package sign

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/bulkhead-dev/bulkhead/internal/regfile"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The in-toto and SLSA identifiers of the provenance.
const (
	StatementType      = "https://in-toto.io/Statement/v1"
	SLSAProvenanceType = "https://slsa.dev/provenance/v1"
	// BuildType names bulkhead's build: its external parameters are the
	// spec files and the platform, its dependencies the lock file and the
	// resolved images.
	BuildType = "https://github.com/bulkhead-dev/bulkhead/buildtypes/host/v1"
	// DefaultBuilderID identifies the builder when BuildInfo names none.
	DefaultBuilderID = "https://github.com/bulkhead-dev/bulkhead"
)

// BuildInfo is what the provenance says about a build.
type BuildInfo struct {
	// Specs are the spec files, in merge order.
	Specs []Material
	// Lock is the lock file, when the build used one.
	Lock *Material
	// Images are the resolved input images; the provenance lists them
	// sorted by name.
	Images []Material
	// Parameters are other external parameters (platform, formats, ...).
	Parameters map[string]string
	// BuilderID defaults to DefaultBuilderID.
	BuilderID string
	// BuilderVersion is bulkhead's version.
	BuilderVersion string
}

// Material is one input of a build.
type Material struct {
	Name   string  // the spec file name, or the image reference as written
	URI    string  // where it came from: the expanded image name
	Digest v1.Hash // sha256
}

// FileMaterial names a file by its base name and digest.
func FileMaterial(path string) (Material, error) {
	h, _, err := fileDigest(path)
	if err != nil {
		return Material{}, err
	}
	return Material{Name: filepath.Base(path), Digest: h}, nil
}

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     json.RawMessage      `json:"predicate"`
}

// ResourceDescriptor is in-toto's ResourceDescriptor (the fields used here).
type ResourceDescriptor struct {
	Name   string            `json:"name,omitempty"`
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest"`
}

// Provenance is the SLSA Provenance v1 predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is SLSA's buildDefinition.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   map[string]any       `json:"externalParameters"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
}

// RunDetails is SLSA's runDetails.
type RunDetails struct {
	Builder Builder `json:"builder"`
}

// Builder is SLSA's builder.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// statement builds the provenance statement for subjects (name -> sha256
// hex). It carries no time stamps, so it is the same for the same build.
func statement(subjects map[string]string, info BuildInfo) ([]byte, error) {
	specs := make([]string, len(info.Specs))
	var deps []ResourceDescriptor
	for i, m := range info.Specs {
		specs[i] = m.Name
		deps = append(deps, descriptor(m))
	}
	if info.Lock != nil {
		deps = append(deps, descriptor(*info.Lock))
	}
	images := append([]Material(nil), info.Images...)
	sort.SliceStable(images, func(i, j int) bool { return images[i].Name < images[j].Name })
	for _, m := range images {
		deps = append(deps, descriptor(m))
	}
	params := map[string]any{"specs": specs}
	for k, v := range info.Parameters {
		params[k] = v
	}
	b := Builder{ID: info.BuilderID}
	if b.ID == "" {
		b.ID = DefaultBuilderID
	}
	if info.BuilderVersion != "" {
		b.Version = map[string]string{"bulkhead": info.BuilderVersion}
	}
	pred, err := json.Marshal(Provenance{
		BuildDefinition: BuildDefinition{BuildType: BuildType, ExternalParameters: params, ResolvedDependencies: deps},
		RunDetails:      RunDetails{Builder: b},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding provenance: %w", err)
	}
	st := Statement{Type: StatementType, PredicateType: SLSAProvenanceType, Predicate: pred}
	for _, name := range sortedKeys(subjects) {
		st.Subject = append(st.Subject, ResourceDescriptor{Name: name, Digest: map[string]string{"sha256": subjects[name]}})
	}
	out, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding provenance: %w", err)
	}
	return out, nil
}

func descriptor(m Material) ResourceDescriptor {
	return ResourceDescriptor{Name: m.Name, URI: m.URI, Digest: map[string]string{m.Digest.Algorithm: m.Digest.Hex}}
}

// ParseStatement parses an in-toto statement and returns it with its
// subjects as name -> sha256 hex.
func ParseStatement(payload []byte) (*Statement, map[string]string, error) {
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, nil, fmt.Errorf("parsing in-toto statement: %w", err)
	}
	if st.Type != StatementType {
		return nil, nil, fmt.Errorf("parsing in-toto statement: _type %q, want %q", st.Type, StatementType)
	}
	subjects := map[string]string{}
	for _, s := range st.Subject {
		subjects[s.Name] = s.Digest["sha256"]
	}
	return &st, subjects, nil
}

// fileDigest returns a file's sha256 and size, reading it as a stream.
func fileDigest(path string) (v1.Hash, int64, error) {
	sum, n, err := regfile.SHA256(path)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: sum}, n, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sums renders a SHA256SUMS file (sha256sum's format), sorted by name.
func sums(digests map[string]string) []byte {
	var b strings.Builder
	for _, name := range sortedKeys(digests) {
		fmt.Fprintf(&b, "%s  %s\n", digests[name], name)
	}
	return []byte(b.String())
}

// parseSums parses a SHA256SUMS file.
func parseSums(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || name == "" || strings.ContainsAny(name, "/\\") {
			return nil, fmt.Errorf("SHA256SUMS line %d: malformed", i+1)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("SHA256SUMS line %d: malformed", i+1)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("SHA256SUMS line %d: %s listed twice", i+1, name)
		}
		out[name] = sum
	}
	return out, nil
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
