package resolve

import (
	"fmt"
	"strings"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// ShortName is name as a user writes it: without docker.io/library/ or
// docker.io/.
func ShortName(name string) string {
	for _, p := range []string{"docker.io/library/", "docker.io/"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			return rest
		}
	}
	return name
}

// Names are the names the store records, as written in index.json.
func (s *Store) Names() ([]string, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		if n := d.Annotations[AnnotationRefName]; n != "" {
			out = append(out, n)
		}
	}
	return out, nil
}

// notStored explains a failed fetch of an image the store does not have:
// which store was looked in, the stored name it is probably a typo of,
// or that the store is empty and how to fill it.
func (s *Store) notStored(name string, err error) error {
	names, lerr := s.Names()
	if lerr != nil {
		return err
	}
	short := make([]string, len(names))
	for i, n := range names {
		short[i] = ShortName(n)
	}
	switch {
	case len(names) == 0:
		return fmt.Errorf("not in the image store %s, which is empty (build the component images with make images, or bulkhead image build images/*/), and %w", s.dir, err)
	case config.Suggest(ShortName(name), short) != "":
		return fmt.Errorf("not in the image store %s (did you mean %s?), and %w", s.dir, config.Suggest(ShortName(name), short), err)
	}
	return fmt.Errorf("not in the image store %s, and %w", s.dir, err)
}
