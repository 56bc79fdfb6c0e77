// Package logline turns a stream of output into whole lines, each written
// with a prefix to every sink: how the init puts its own messages and each
// container's output on the console and under /run/log.
package logline

import (
	"bytes"
	"io"
	"sync"
)

// maxLine is the longest line kept in one piece; longer output is cut into
// lines of this length.
const maxLine = 4096

// Writer prefixes every line written to it and copies it to its sinks. A
// partial line is held until its newline arrives (or Flush). Sink errors are
// ignored: a full log file must not silence the console.
type Writer struct {
	prefix string

	mu    sync.Mutex
	sinks []io.Writer
	buf   []byte
}

// New returns a Writer that writes lines prefixed with prefix to sinks.
func New(prefix string, sinks ...io.Writer) *Writer {
	return &Writer{prefix: prefix, sinks: sinks}
}

// SetSinks replaces the sinks, for example once /run/log exists.
func (w *Writer) SetSinks(sinks ...io.Writer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sinks = sinks
}

// Write implements io.Writer; it always reports len(p) written.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxLine {
			break
		}
		if i < 0 || i > maxLine {
			i = maxLine
			w.emit(w.buf[:i])
			w.buf = w.buf[i:]
			continue
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = w.buf[:0:0]
	}
	return len(p), nil
}

// Flush writes a pending partial line, ended with a newline.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

// emit writes one line as a single Write on each sink, so that lines from
// writers sharing a Locked sink never interleave.
func (w *Writer) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	out := make([]byte, 0, len(w.prefix)+len(line)+1)
	out = append(out, w.prefix...)
	out = append(out, line...)
	out = append(out, '\n')
	for _, s := range w.sinks {
		_, _ = s.Write(out)
	}
}

// Locked wraps a sink shared by several Writers (the console) so that each
// Write reaches it whole.
func Locked(w io.Writer) io.Writer {
	return &locked{w: w}
}

type locked struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *locked) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
