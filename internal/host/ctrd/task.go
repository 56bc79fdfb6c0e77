package ctrd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is the containerd runtime (shim) every container uses.
const Runtime = "io.containerd.runc.v2"

// Client is a connection to containerd for running bundles.
type Client struct {
	c       *client.Client
	runc    string
	fifoDir string
}

// Connect connects to the containerd socket of p; runc is the runc binary
// the shim runs.
func Connect(p Paths, runc string) (*Client, error) {
	c, err := client.New(p.Socket, client.WithDefaultRuntime(Runtime), client.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd: %w", err)
	}
	return &Client{c: c, runc: runc, fifoDir: p.State + "/fifo"}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Container is a containerd container made from a bundle's spec.
type Container struct {
	c   *Client
	ns  string
	ctr client.Container
}

// Create creates container id in namespace ns from spec (whose Root.Path
// must be absolute), replacing a stale container of the same id.
func (c *Client) Create(ctx context.Context, ns, id string, spec *specs.Spec) (*Container, error) {
	ctx = namespaces.WithNamespace(ctx, ns)
	opts := []client.NewContainerOpts{
		client.WithRuntime(Runtime, &options.Options{BinaryName: c.runc}),
		client.WithSpec(spec),
	}
	ctr, err := c.c.NewContainer(ctx, id, opts...)
	if errdefs.IsAlreadyExists(err) {
		if derr := c.remove(ctx, id); derr != nil {
			return nil, derr
		}
		ctr, err = c.c.NewContainer(ctx, id, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("creating container %s: %w", id, err)
	}
	return &Container{c: c, ns: ns, ctr: ctr}, nil
}

// remove deletes a leftover container and its task.
func (c *Client) remove(ctx context.Context, id string) error {
	ctr, err := c.c.LoadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("loading stale container %s: %w", id, err)
	}
	if t, err := ctr.Task(ctx, nil); err == nil {
		_, _ = t.Delete(ctx, client.WithProcessKill)
	}
	if err := ctr.Delete(ctx); err != nil {
		return fmt.Errorf("deleting stale container %s: %w", id, err)
	}
	return nil
}

// Delete removes the container (its task must be gone).
func (ct *Container) Delete(ctx context.Context) error {
	ctx = namespaces.WithNamespace(ctx, ct.ns)
	if err := ct.ctr.Delete(ctx); err != nil {
		return fmt.Errorf("deleting container %s: %w", ct.ctr.ID(), err)
	}
	return nil
}

// Task is one run of a container's process.
type Task struct {
	ns   string
	t    client.Task
	exit <-chan client.ExitStatus
}

// Start creates the container's task with its output going to stdout and
// stderr, calls hook with the task's pid (between create and start, where
// LinuxKit sets up interfaces and binds namespaces), and starts it.
func (ct *Container) Start(ctx context.Context, stdout, stderr io.Writer, hook func(pid uint32) error) (*Task, error) {
	ctx = namespaces.WithNamespace(ctx, ct.ns)
	id := ct.ctr.ID()
	t, err := ct.ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(ct.c.fifoDir)))
	if err != nil {
		return nil, fmt.Errorf("creating task %s: %w", id, err)
	}
	fail := func(err error) (*Task, error) {
		_, _ = t.Delete(ctx, client.WithProcessKill)
		return nil, err
	}
	exit, err := t.Wait(ctx)
	if err != nil {
		return fail(fmt.Errorf("waiting for task %s: %w", id, err))
	}
	if hook != nil {
		if err := hook(t.Pid()); err != nil {
			return fail(err)
		}
	}
	if err := t.Start(ctx); err != nil {
		return fail(fmt.Errorf("starting task %s: %w", id, err))
	}
	return &Task{ns: ct.ns, t: t, exit: exit}, nil
}

// Pid is the task's init process id.
func (t *Task) Pid() uint32 { return t.t.Pid() }

// Wait waits for the task to exit, deletes it, and returns its exit code.
func (t *Task) Wait(ctx context.Context) (int, error) {
	ctx = namespaces.WithNamespace(ctx, t.ns)
	var st client.ExitStatus
	select {
	case st = <-t.exit:
	case <-ctx.Done():
		return -1, fmt.Errorf("waiting for task %s: %w", t.t.ID(), ctx.Err())
	}
	code, _, err := st.Result()
	// Delete on a fresh context: the task is gone even if ctx just ended.
	_, derr := t.t.Delete(namespaces.WithNamespace(context.WithoutCancel(ctx), t.ns))
	return int(code), errors.Join(err, derr)
}

// Signal sends sig to the task's process; SIGKILL goes to every process of
// the container.
func (t *Task) Signal(ctx context.Context, sig syscall.Signal) error {
	ctx = namespaces.WithNamespace(ctx, t.ns)
	var opts []client.KillOpts
	if sig == syscall.SIGKILL {
		opts = append(opts, client.WithKillAll)
	}
	if err := t.t.Kill(ctx, sig, opts...); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("signalling task %s: %w", t.t.ID(), err)
	}
	return nil
}

// execSeq numbers exec processes so their ids never repeat.
var execSeq atomic.Uint64

// Exec runs args inside the task's container (its namespaces, root, user
// and environment), with output to out, and returns its exit code. ctx
// bounds it: the process is killed when ctx ends.
func (t *Task) Exec(ctx context.Context, args []string, out io.Writer) (int, error) {
	ctx = namespaces.WithNamespace(ctx, t.ns)
	spec, err := t.t.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: reading spec: %w", t.t.ID(), err)
	}
	ps := *spec.Process
	ps.Args = args
	ps.Terminal = false
	id := fmt.Sprintf("health-%d", execSeq.Add(1))
	p, err := t.t.Exec(ctx, id, &ps, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", t.t.ID(), err)
	}
	bg := namespaces.WithNamespace(context.WithoutCancel(ctx), t.ns)
	defer p.Delete(bg, client.WithProcessKill)
	exit, err := p.Wait(bg)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", t.t.ID(), err)
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", t.t.ID(), err)
	}
	select {
	case st := <-exit:
		code, _, err := st.Result()
		return int(code), err
	case <-ctx.Done():
		_ = p.Kill(bg, syscall.SIGKILL)
		return -1, fmt.Errorf("exec in %s: %w", t.t.ID(), ctx.Err())
	}
}
