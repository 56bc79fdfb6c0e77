package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// LabelName is the image label that carries an image's default runtime
// settings, as JSON with the same field names as a spec entry.
const LabelName = "org.mobyproject.config"

// ParseImageConfigLabel reads the org.mobyproject.config label of an image.
// Problems come back as Errors, positioned in the label's text (file name
// LabelName).
func ParseImageConfigLabel(data []byte) (ImageConfig, error) {
	if !json.Valid(data) {
		return ImageConfig{}, errors.New("parsing " + LabelName + " label: invalid JSON")
	}
	var errs errorList
	d := newDecoder(LabelName, len(data), &errs)
	root, err := parseYAML(data)
	if err != nil {
		return ImageConfig{}, fmt.Errorf("parsing %s label: %w", LabelName, err)
	}
	var img Image
	if root != nil && !isNull(root) {
		m := d.structure(root, reflect.ValueOf(&img).Elem(), "")
		for _, key := range []string{"name", "image"} {
			if m[key] != nil {
				d.errorf(m[key], "%s cannot be set in the %s label", key, LabelName)
			}
		}
		d.checkImageConfig(&img.ImageConfig, m)
	}
	if err := errs.errs.err(); err != nil {
		return ImageConfig{}, err
	}
	return img.ImageConfig, nil
}
