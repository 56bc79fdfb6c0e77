package ocispec

import (
	"github.com/bulkhead-dev/bulkhead/builder/config"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageLabel returns the settings in the image's org.mobyproject.config
// label, or empty settings when it has none.
func imageLabel(cf *v1.ConfigFile) (*config.ImageConfig, error) {
	if cf == nil || cf.Config.Labels[config.LabelName] == "" {
		return &config.ImageConfig{}, nil
	}
	c, err := config.ParseImageConfigLabel([]byte(cf.Config.Labels[config.LabelName]))
	if err != nil {
		return nil, err
	}
	return &c, nil
}
