package build

import (
	"fmt"

	"github.com/bulkhead-dev/bulkhead/builder/config"
)

// Event is a step of a build, or a warning.
type Event struct {
	// Stage is the pipeline stage: "resolve", "assemble", "gates",
	// "root image", "write" or "sign".
	Stage string
	// Message says what happens ("writing raw-efi"), or what is wrong.
	Message string
	// Warning marks a problem that does not stop the build.
	Warning bool
	// Pos is where in a spec a warning points, when it does.
	Pos config.Pos
}

// Progress receives a build's events, in order, from the goroutine that
// called Build.
type Progress interface {
	Event(Event)
}

// ProgressFunc is a Progress that is a function.
type ProgressFunc func(Event)

// Event calls f.
func (f ProgressFunc) Event(e Event) { f(e) }

func (b *Builder) step(stage, format string, args ...any) {
	b.o.progress.Event(Event{Stage: stage, Message: fmt.Sprintf(format, args...)})
}

func (b *Builder) warn(stage string, pos config.Pos, format string, args ...any) {
	b.o.progress.Event(Event{Stage: stage, Message: fmt.Sprintf(format, args...), Warning: true, Pos: pos})
}
