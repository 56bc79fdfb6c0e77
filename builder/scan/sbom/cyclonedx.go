package sbom

import (
	"fmt"
	"strings"
)

// The CycloneDX 1.5 JSON document, the fields bulkhead fills.
type cdxDocument struct {
	BOMFormat    string         `json:"bomFormat"`
	SpecVersion  string         `json:"specVersion"`
	SerialNumber string         `json:"serialNumber"`
	Version      int            `json:"version"`
	Metadata     cdxMetadata    `json:"metadata"`
	Components   []cdxComponent `json:"components"`
	Dependencies []cdxDep       `json:"dependencies"`
}

type cdxMetadata struct {
	Timestamp string       `json:"timestamp"`
	Tools     cdxTools     `json:"tools"`
	Component cdxComponent `json:"component"`
}

type cdxTools struct {
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	BOMRef     string        `json:"bom-ref,omitempty"`
	Type       string        `json:"type"`
	Name       string        `json:"name"`
	Version    string        `json:"version,omitempty"`
	PURL       string        `json:"purl,omitempty"`
	Hashes     []cdxHash     `json:"hashes,omitempty"`
	Properties []cdxProperty `json:"properties,omitempty"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDep struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

// CycloneDX renders d as a CycloneDX 1.5 JSON document. Its serial number
// derives from the content, so it is the same for the same host.
func CycloneDX(d *Document) ([]byte, error) {
	id := contentID(d)
	host := cdxComponent{BOMRef: "host", Type: "operating-system", Name: spdxNameOr(d.Name)}
	doc := cdxDocument{
		BOMFormat:    "CycloneDX",
		SpecVersion:  "1.5",
		SerialNumber: fmt.Sprintf("urn:uuid:%s-%s-5%s-8%s-%s", id[0:8], id[8:12], id[13:16], id[17:20], id[20:32]),
		Version:      1,
		Metadata: cdxMetadata{
			Timestamp: d.created(),
			Tools:     cdxTools{Components: []cdxComponent{{Type: "application", Name: "bulkhead"}}},
			Component: host,
		},
		Components: []cdxComponent{},
	}
	dep := cdxDep{Ref: "host", DependsOn: []string{}}
	for i := range d.Packages {
		p := &d.Packages[i]
		c := cdxComp(p, fmt.Sprintf("%s-%d", p.Kind, i+1))
		doc.Components = append(doc.Components, c)
		dep.DependsOn = append(dep.DependsOn, c.BOMRef)
	}
	doc.Dependencies = []cdxDep{dep}
	return marshal(doc)
}

func spdxNameOr(s string) string {
	if s == "" {
		return "host"
	}
	return s
}

func cdxComp(p *Package, ref string) cdxComponent {
	c := cdxComponent{BOMRef: ref, Type: cdxType(p.Kind), Name: p.Name, Version: p.Version, PURL: p.PURL()}
	if algo, hexsum, ok := strings.Cut(p.Digest, ":"); ok && algo == "sha256" {
		c.Hashes = []cdxHash{{Alg: "SHA-256", Content: hexsum}}
	}
	add := func(name, value string) {
		if value != "" {
			c.Properties = append(c.Properties, cdxProperty{Name: "bulkhead:" + name, Value: value})
		}
	}
	add("ecosystem", p.Ecosystem)
	add("source", p.Source)
	add("source-version", p.SourceVersion)
	add("kernel-config-digest", p.ConfigDigest)
	for _, l := range p.Locations {
		add("location", l)
	}
	return c
}

func cdxType(k Kind) string {
	switch k {
	case KindKernel:
		return "operating-system"
	case KindImage:
		return "container"
	}
	return "library"
}
