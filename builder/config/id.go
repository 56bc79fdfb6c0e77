package config

import (
	"encoding/json"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// String renders the id as its number or its name.
func (id ID) String() string {
	if id.Num != nil {
		return strconv.FormatUint(uint64(*id.Num), 10)
	}
	return id.Name
}

// MarshalJSON writes a number as a number and a name as a string.
func (id ID) MarshalJSON() ([]byte, error) {
	if id.Num != nil {
		return json.Marshal(*id.Num)
	}
	return json.Marshal(id.Name)
}

// UnmarshalJSON reads a number into Num and a string into Name.
func (id *ID) UnmarshalJSON(data []byte) error {
	var n uint32
	if err := json.Unmarshal(data, &n); err == nil {
		*id = ID{Num: &n}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decoding id: expected a number or a name, got %s", data)
	}
	v, err := idFromString(s)
	if err != nil {
		return fmt.Errorf("decoding id: %w", err)
	}
	*id = v
	return nil
}

// MarshalYAML writes a number as a number and a name as a string.
func (id ID) MarshalYAML() (any, error) {
	if id.Num != nil {
		return *id.Num, nil
	}
	return id.Name, nil
}

// UnmarshalYAML reads a number into Num and a string into Name.
func (id *ID) UnmarshalYAML(n *yaml.Node) error {
	v, err := idFromScalar(resolve(n))
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*id = v
	return nil
}

// MarshalJSON writes a Ref as its plain string.
func (r Ref) MarshalJSON() ([]byte, error) { return json.Marshal(r.Ref) }

// UnmarshalJSON reads a Ref from a plain string.
func (r *Ref) UnmarshalJSON(data []byte) error {
	return json.Unmarshal(data, &r.Ref)
}

// UnmarshalYAML reads a Ref from a plain string, keeping its position
// (without a file name).
func (r *Ref) UnmarshalYAML(n *yaml.Node) error {
	if err := n.Decode(&r.Ref); err != nil {
		return err
	}
	r.Pos = Pos{Line: n.Line, Col: n.Column}
	return nil
}
