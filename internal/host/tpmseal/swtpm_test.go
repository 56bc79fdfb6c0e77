package tpmseal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// swtpm is a software TPM 2.0 (the swtpm Debian package) serving raw TPM
// commands on a unix socket, its state in dir.
type swtpm struct {
	dir    string
	cmd    *exec.Cmd
	conn   net.Conn
	stderr bytes.Buffer
}

// newSWTPM starts a swtpm with a fresh state directory, stopped when the
// test ends.
func newSWTPM(tb testing.TB) *swtpm {
	tb.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		tb.Fatalf("swtpm is required (scripts/install-deps): %v", err)
	}
	dir, err := os.MkdirTemp("", "tpmseal-") // short: socket paths
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	s := &swtpm{dir: dir}
	s.start(tb)
	tb.Cleanup(func() { s.stop(tb) })
	return s
}

// start starts swtpm on s.dir's state, as a power-on: TPM2_Startup(CLEAR)
// resets the PCRs; the seeds (so the SRK) persist in the state.
func (s *swtpm) start(tb testing.TB) {
	tb.Helper()
	sock := filepath.Join(s.dir, "S")
	os.Remove(sock)
	s.cmd = exec.Command("swtpm", "socket", "--tpm2",
		"--server", "type=unixio,path="+sock, "--ctrl", "type=unixio,path="+filepath.Join(s.dir, "C"),
		"--flags", "startup-clear", "--tpmstate", "dir="+s.dir)
	s.stderr.Reset()
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("swtpm: %v", err)
	}
	var err error
	for i := 0; i < 100; i++ { // until it listens
		if s.conn, err = net.Dial("unix", sock); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("swtpm does not listen on %s: %v\n%s", sock, err, &s.stderr)
}

// stop powers the TPM off.
func (s *swtpm) stop(tb testing.TB) {
	if s.cmd == nil {
		return
	}
	s.conn.Close()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		tb.Errorf("swtpm: %v\n%s", err, &s.stderr)
	}
	s.cmd = nil
}

// restart is a power cycle.
func (s *swtpm) restart(tb testing.TB) {
	s.stop(tb)
	s.start(tb)
}

// tpm is a transport to the running swtpm.
func (s *swtpm) tpm() transport.TPM {
	return transport.FromReadWriteCloser(frames{s.conn})
}

// frames reads one whole TPM response per Read, whatever the socket
// delivers at once (go-tpm reads once per command).
type frames struct{ net.Conn }

func (f frames) Read(p []byte) (int, error) {
	if len(p) < 10 {
		return 0, io.ErrShortBuffer
	}
	if _, err := io.ReadFull(f.Conn, p[:10]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(p[2:6]))
	if n < 10 || n > len(p) {
		return 0, fmt.Errorf("a TPM response of %d bytes", n)
	}
	_, err := io.ReadFull(f.Conn, p[10:n])
	return n, err
}
