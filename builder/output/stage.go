package output

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// StagePrefix starts the name of every staging directory. A directory with
// this prefix that no running build holds is what a killed build left; the
// next build into the same output directory removes it.
const StagePrefix = ".bulkhead-build-"

// Stage is where one build writes all its files: a directory inside the
// output directory (so renames are atomic and scratch space is on the
// output's file system, not in $TMPDIR). Commit moves every file into the
// output directory; Abort removes them all. While a build runs it holds
// an flock on its stage, so another build never removes it; the kernel
// releases the lock when the process dies, however it dies.
type Stage struct {
	out, dir string
	lock     *os.File
	obsolete []string
	done     bool
}

// NewStage creates the output directory out if needed, removes the stages
// of earlier builds that were killed, and starts a new stage.
func NewStage(out string) (*Stage, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	if err := RemoveStale(out); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(out, StagePrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("creating staging directory: %w", err)
	}
	lock, ok, err := tryLock(dir)
	if err != nil || !ok {
		// Another build's RemoveStale took it between MkdirTemp and the lock.
		return nil, fmt.Errorf("locking staging directory %s: %w", dir, firstErr(err, os.ErrExist))
	}
	return &Stage{out: out, dir: dir, lock: lock}, nil
}

// Dir is the staging directory: write every output there, by the name it
// will have in the output directory.
func (s *Stage) Dir() string { return s.dir }

// Final is where a file staged at p (inside Dir) lands on Commit.
func (s *Stage) Final(p string) string {
	if rel, err := filepath.Rel(s.dir, p); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.Join(s.out, rel)
	}
	return p
}

// Obsolete names a file of the output directory that this build does not
// produce and that Commit removes, so a stale one cannot mislead.
func (s *Stage) Obsolete(name string) { s.obsolete = append(s.obsolete, name) }

// Commit renames every staged file into the output directory, removes the
// obsolete ones, flushes the directory and removes the stage.
func (s *Stage) Commit() error {
	if s.done {
		return errors.New("committing outputs: stage already committed or aborted")
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("committing outputs: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue // a writer's scratch directory left behind
		}
		if err := os.Rename(filepath.Join(s.dir, e.Name()), filepath.Join(s.out, e.Name())); err != nil {
			return fmt.Errorf("committing outputs: %w", err)
		}
	}
	for _, name := range s.obsolete {
		if err := os.Remove(filepath.Join(s.out, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("committing outputs: %w", err)
		}
	}
	if err := syncDir(s.out); err != nil {
		return err
	}
	return s.Abort()
}

// Abort removes the stage and everything in it. It does nothing after
// Commit or a previous Abort, so it can be deferred.
func (s *Stage) Abort() error {
	if s.done {
		return nil
	}
	s.done = true
	err := os.RemoveAll(s.dir)
	s.lock.Close() // releases the flock
	if err != nil {
		return fmt.Errorf("removing staging directory: %w", err)
	}
	return nil
}

// RemoveStale removes the staging directories in out that no running
// build holds.
func RemoveStale(out string) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("removing stale staging directories: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), StagePrefix) {
			continue
		}
		dir := filepath.Join(out, e.Name())
		lock, ok, err := tryLock(dir)
		if err != nil || !ok {
			continue // held by a running build, or gone
		}
		err = os.RemoveAll(dir)
		lock.Close()
		if err != nil {
			return fmt.Errorf("removing stale staging directory: %w", err)
		}
	}
	return nil
}

// tryLock takes an exclusive flock on dir without waiting; ok is false
// when another process holds it.
func tryLock(dir string) (f *os.File, ok bool, err error) {
	f, err = os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, false, nil
	}
	if err != nil {
		f.Close()
		return nil, false, err
	}
	return f, true, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
