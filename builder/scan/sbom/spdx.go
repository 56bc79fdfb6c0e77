package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// The SPDX 2.3 JSON document, the fields bulkhead fills.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	SourceInfo            string            `json:"sourceInfo,omitempty"`
	Comment               string            `json:"comment,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// Namespace is where bulkhead's SPDX document namespaces start.
const Namespace = "https://bulkhead.dev/spdx/"

// SPDX renders d as an SPDX 2.3 JSON document. The document namespace
// derives from the content, so it is the same for the same host.
func SPDX(d *Document) ([]byte, error) {
	doc := spdxDocument{
		SPDXVersion:  "SPDX-2.3",
		DataLicense:  "CC0-1.0",
		SPDXID:       "SPDXRef-DOCUMENT",
		Name:         d.Name,
		CreationInfo: spdxCreationInfo{Created: d.created(), Creators: []string{"Tool: bulkhead"}},
		Packages:     []spdxPackage{{SPDXID: "SPDXRef-host", Name: d.Name, DownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "OPERATING-SYSTEM"}},
		Relationships: []spdxRelationship{{
			SPDXElementID: "SPDXRef-DOCUMENT", RelationshipType: "DESCRIBES", RelatedSPDXElement: "SPDXRef-host",
		}},
	}
	for i := range d.Packages {
		p := &d.Packages[i]
		id := fmt.Sprintf("SPDXRef-%s-%d", p.Kind, i+1)
		doc.Packages = append(doc.Packages, spdxPkg(p, id))
		doc.Relationships = append(doc.Relationships, spdxRelationship{
			SPDXElementID: "SPDXRef-host", RelationshipType: "CONTAINS", RelatedSPDXElement: id,
		})
	}
	doc.DocumentNamespace = Namespace + spdxName(d.Name) + "-" + contentID(d)
	return marshal(doc)
}

func spdxPkg(p *Package, id string) spdxPackage {
	sp := spdxPackage{
		SPDXID: id, Name: p.Name, VersionInfo: p.Version, DownloadLocation: "NOASSERTION",
		PrimaryPackagePurpose: spdxPurpose(p.Kind),
	}
	if purl := p.PURL(); purl != "" {
		sp.ExternalRefs = []spdxExternalRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: purl}}
	}
	if algo, hexsum, ok := strings.Cut(p.Digest, ":"); ok && algo == "sha256" {
		sp.Checksums = []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: hexsum}}
	}
	if p.Source != "" {
		sp.SourceInfo = "built from source package " + p.Source + " " + p.MatchVersion()
	}
	var notes []string
	if p.ConfigDigest != "" {
		notes = append(notes, "kernel config "+p.ConfigDigest)
	}
	for _, l := range p.Locations {
		notes = append(notes, "found at "+l)
	}
	sp.Comment = strings.Join(notes, "\n")
	return sp
}

func spdxPurpose(k Kind) string {
	switch k {
	case KindKernel:
		return "OPERATING-SYSTEM"
	case KindImage:
		return "CONTAINER"
	}
	return "LIBRARY"
}

// spdxName keeps the characters a URI path segment takes as they are.
func spdxName(s string) string {
	if s == "" {
		return "host"
	}
	return escape(s)
}

// contentID is a digest of everything the document says.
func contentID(d *Document) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", d.Name, d.created())
	for i := range d.Packages {
		p := &d.Packages[i]
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%q\n",
			p.Kind, p.Name, p.Version, p.PURL(), p.Source, p.MatchVersion(), p.ConfigDigest, p.Locations)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// MaxSPDX bounds an SPDX document read back from an artifact.
const MaxSPDX = 64 << 20

// SPDXImages reads back the images an SPDX document of bulkhead's lists
// (the packages whose purpose is CONTAINER): what a built host carries of
// the images it was built from, which its files alone no longer tell.
func SPDXImages(data []byte) ([]Package, error) {
	if len(data) > MaxSPDX {
		return nil, fmt.Errorf("SPDX document of %d bytes is larger than the limit of %d", len(data), MaxSPDX)
	}
	var doc spdxDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("reading SPDX document: %w", err)
	}
	var out []Package
	for _, sp := range doc.Packages {
		if sp.PrimaryPackagePurpose != "CONTAINER" {
			continue
		}
		p := Package{Kind: KindImage, Name: sp.Name, Version: sp.VersionInfo, Locations: []string{}}
		for _, c := range sp.Checksums {
			if c.Algorithm == "SHA256" {
				p.Digest = "sha256:" + c.ChecksumValue
			}
		}
		for _, r := range sp.ExternalRefs {
			if r.ReferenceType != "purl" {
				continue
			}
			if _, q, ok := strings.Cut(r.ReferenceLocator, "?"); ok {
				for _, kv := range strings.Split(q, "&") {
					if v, ok := strings.CutPrefix(kv, "repository_url="); ok {
						p.Repository = unescape(v)
					}
				}
			}
		}
		for _, l := range strings.Split(sp.Comment, "\n") {
			if loc, ok := strings.CutPrefix(l, "found at "); ok {
				p.Locations = append(p.Locations, loc)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// unescape undoes escape; a malformed escape stays as it is.
func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
