package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"
)

// qmpMessage is any message on a QMP connection: the greeting, a reply or an
// event.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// qmpConn is a QMP client: one command at a time, events passed to a
// callback by a reader goroutine.
type qmpConn struct {
	conn    net.Conn
	dec     *json.Decoder
	mu      sync.Mutex // one command at a time
	replies chan qmpMessage
	done    chan struct{} // closed when the reader ends
}

// connectQMP dials qemu's QMP socket (qemu waits for this connection before
// it starts the guest, so no event is missed), negotiates capabilities and
// starts reading events into the VM.
func (vm *VM) connectQMP(ctx context.Context) error {
	conn, err := dialQMP(ctx, filepath.Join(vm.dir, qmpSocket), vm.procDone)
	if err != nil {
		close(vm.qmpDone)
		return err
	}
	q := &qmpConn{conn: conn, dec: json.NewDecoder(conn), replies: make(chan qmpMessage, 1), done: vm.qmpDone}
	if err := q.handshake(); err != nil {
		conn.Close()
		close(vm.qmpDone)
		return err
	}
	vm.qmp = q
	go q.read(vm.onEvent)
	return nil
}

func dialQMP(ctx context.Context, path string, exited <-chan struct{}) (net.Conn, error) {
	deadline := time.After(30 * time.Second)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			return conn, nil
		}
		select {
		case <-exited:
			return nil, errors.New("qemu exited before its qmp monitor came up")
		case <-ctx.Done():
			return nil, fmt.Errorf("connecting to qmp: %w", ctx.Err())
		case <-deadline:
			return nil, fmt.Errorf("connecting to qmp: %w", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (q *qmpConn) handshake() error {
	q.conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer q.conn.SetDeadline(time.Time{})
	var greeting qmpMessage
	if err := q.dec.Decode(&greeting); err != nil || greeting.QMP == nil {
		return fmt.Errorf("reading qmp greeting: %w", errors.Join(err, errors.New("no greeting")))
	}
	if err := q.send("qmp_capabilities"); err != nil {
		return err
	}
	var reply qmpMessage
	if err := q.dec.Decode(&reply); err != nil {
		return fmt.Errorf("negotiating qmp capabilities: %w", err)
	}
	if reply.Error != nil {
		return fmt.Errorf("negotiating qmp capabilities: %s", reply.Error.Desc)
	}
	return nil
}

func (q *qmpConn) send(command string) error {
	b, _ := json.Marshal(map[string]string{"execute": command})
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("sending qmp %s: %w", command, err)
	}
	return nil
}

// read passes events to onEvent and replies to execute until the connection
// closes (qemu exits).
func (q *qmpConn) read(onEvent func(qmpMessage)) {
	defer close(q.done)
	defer q.conn.Close()
	for {
		var m qmpMessage
		if err := q.dec.Decode(&m); err != nil {
			return
		}
		if m.Event != "" {
			onEvent(m)
			continue
		}
		select {
		case q.replies <- m:
		default: // a reply nobody waits for any more
		}
	}
}

// execute runs a command without arguments and waits for its reply.
func (q *qmpConn) execute(command string, exited <-chan struct{}) error {
	_, err := q.query(command, exited)
	return err
}

// query runs a command without arguments and returns its reply's value.
func (q *qmpConn) query(command string, exited <-chan struct{}) (json.RawMessage, error) {
	if q == nil {
		return nil, errors.New("no qmp connection")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-q.done:
		return nil, ErrStopped
	default:
	}
	if err := q.send(command); err != nil {
		return nil, err
	}
	select {
	case m := <-q.replies:
		if m.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s", command, m.Error.Desc)
		}
		return m.Return, nil
	case <-q.done:
		return nil, ErrStopped
	case <-exited:
		return nil, ErrStopped
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("qmp %s: no reply", command)
	}
}

// onEvent records the events that say how the guest ended.
func (vm *VM) onEvent(m qmpMessage) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	switch m.Event {
	case "SHUTDOWN":
		var ev shutdownEvent
		if json.Unmarshal(m.Data, &ev) == nil && vm.shutdown == nil {
			vm.shutdown = &ev
		}
	case "GUEST_PANICKED":
		vm.panicked = true
	}
}
