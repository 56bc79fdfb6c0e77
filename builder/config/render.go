package config

import (
	"bytes"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// JSON renders the spec as indented JSON, what `files: metadata: json`
// writes. The output is deterministic: fields in declaration order, map keys
// sorted.
func (s *Spec) JSON() ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rendering spec as JSON: %w", err)
	}
	return append(data, '\n'), nil
}

// YAML renders the spec as YAML, what `files: metadata: yaml` writes. It has
// the same keys and order as JSON.
func (s *Spec) YAML() ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("rendering spec as YAML: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("rendering spec as YAML: %w", err)
	}
	plain(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("rendering spec as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rendering spec as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// plain drops the JSON flow and quoting styles so the encoder picks block
// style and quotes only where needed.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}
