package config

import "fmt"

// PosError is an error about what a spec writes at Pos, found after
// loading (resolving, assembling, checking images); it wraps its cause.
type PosError struct {
	Pos Pos
	Err error
}

func (e *PosError) Error() string { return e.Pos.String() + ": " + e.Err.Error() }
func (e *PosError) Unwrap() error { return e.Err }

// Errorf is a PosError at pos of fmt.Errorf(format, args...).
func Errorf(pos Pos, format string, args ...any) error {
	return &PosError{Pos: pos, Err: fmt.Errorf(format, args...)}
}
