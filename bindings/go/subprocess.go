package asyncloop

import (
	"context"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Stdio says what a child's stdin, stdout or stderr is connected to
// (WithStdin, WithStdout, WithStderr).
type Stdio struct {
	mode int32
	fd   int
	file *os.File
}

var (
	// StdioPipe is a pipe to this process, with a transport (the default;
	// asyncio's subprocess.PIPE).
	StdioPipe = Stdio{mode: stdioPipe}
	// StdioDevNull is /dev/null (subprocess.DEVNULL).
	StdioDevNull = Stdio{mode: stdioDevnull}
	// StdioInherit is this process's own fd 0, 1 or 2 (None).
	StdioInherit = Stdio{mode: stdioInherit}
	// StdioStdout sends stderr wherever stdout goes (subprocess.STDOUT;
	// stderr only).
	StdioStdout = Stdio{mode: stdioStdout}
)

// StdioFile connects the child's fd to f (the child gets a copy; f stays
// yours).
func StdioFile(f *os.File) Stdio { return Stdio{mode: stdioFd, fd: -1, file: f} }

// SubprocessTransport is a child process (asyncio's SubprocessTransport).
// Its methods must be called on the loop's thread; after ConnectionLost it
// is stale.
type SubprocessTransport struct {
	h       uintptr
	loop    *Loop
	conn    *subprocConn
	lost    atomic.Bool
	pid     int
	exit    bool
	code    int
	pipes   [3]*Transport
	waiters []*Future[int]
}

type subprocConn struct {
	loop      *Loop
	proto     SubprocessProtocol
	transport *SubprocessTransport
}

func (c *subprocConn) owner() *Loop { return c.loop }

// SubprocessExec starts argv[0] with the arguments argv (asyncio's
// subprocess_exec; argv[0] without a slash is searched in the child's
// PATH). The future resolves to the *SubprocessTransport after
// p.ConnectionMade; a child that cannot be started fails it with an
// *fs.PathError (errors.Is(err, fs.ErrNotExist), ...). The library reaps
// the child: no zombie is left.
//
// Options: WithEnv, WithDir, WithStdin, WithStdout, WithStderr,
// WithNewSession.
func (l *Loop) SubprocessExec(ctx context.Context, argv []string, p SubprocessProtocol, opts ...Option) (*Future[*SubprocessTransport], error) {
	if len(argv) == 0 {
		return nil, errInvalid("empty argv")
	}
	ptrs, keep := cStrings(argv)
	f, err := l.spawn(ctx, argv[0], p, opts, func(proto unsafe.Pointer, key uintptr, o unsafe.Pointer, out *uintptr) int32 {
		return lib.subprocessExec(l.handle(), unsafe.Pointer(&(*ptrs)[0]), proto, key, cb.free, o, out)
	})
	runtime.KeepAlive(keep)
	runtime.KeepAlive(ptrs)
	return f, err
}

// SubprocessShell runs cmd with /bin/sh -c (asyncio's subprocess_shell);
// otherwise as SubprocessExec.
func (l *Loop) SubprocessShell(ctx context.Context, cmd string, p SubprocessProtocol, opts ...Option) (*Future[*SubprocessTransport], error) {
	return l.spawn(ctx, "/bin/sh", p, opts, func(proto unsafe.Pointer, key uintptr, o unsafe.Pointer, out *uintptr) int32 {
		return lib.subprocessShell(l.handle(), cString(cmd), proto, key, cb.free, o, out)
	})
}

func (l *Loop) spawn(ctx context.Context, path string, p SubprocessProtocol, opts []Option,
	call func(proto unsafe.Pointer, key uintptr, o unsafe.Pointer, out *uintptr) int32) (*Future[*SubprocessTransport], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errInvalid("nil protocol")
	}
	o, err := collect(opts, optEnv|optDir|optStdio|optNewSession, "a subprocess")
	if err != nil {
		return nil, err
	}
	so := cSubprocessOptions{size: unsafe.Sizeof(cSubprocessOptions{}), startNewSession: b2i(o.newSession)}
	var envPtrs *[]*byte
	var envKeep []byte
	if o.envSet {
		envPtrs, envKeep = cStrings(o.env)
		so.env = unsafe.Pointer(&(*envPtrs)[0])
	}
	if o.dir != "" {
		so.cwd = cString(o.dir)
	}
	modes := [3]*int32{&so.stdinMode, &so.stdoutMode, &so.stderrMode}
	fds := [3]*int32{&so.stdinFd, &so.stdoutFd, &so.stderrFd}
	for i, s := range o.stdio {
		*modes[i] = s.mode
		if s.mode == stdioFd {
			if s.file == nil {
				return nil, errInvalid("StdioFile(nil)")
			}
			*fds[i] = int32(s.file.Fd())
		}
	}
	c := &subprocConn{loop: l, proto: p}
	c.transport = &SubprocessTransport{loop: l, conn: c}
	key := reg.add(c)
	get := func(h uintptr) (*SubprocessTransport, error) {
		var ph uintptr
		if _, err := do(func() int32 { return lib.futureResultSubprocess(h, &ph) }); err != nil {
			return nil, err
		}
		if c.transport.h == 0 {
			c.transport.h = ph
			l.subprocesses[ph] = c.transport
		}
		return c.transport, nil
	}
	f, err := newOpFuture(l, ctx, pathWrapper("fork/exec", path), get, func(out *uintptr) int32 {
		return call(unsafe.Pointer(&cb.subprocessProtocol), key, unsafe.Pointer(&so), out)
	})
	runtime.KeepAlive(&so)
	runtime.KeepAlive(envPtrs)
	runtime.KeepAlive(envKeep)
	for _, s := range o.stdio {
		runtime.KeepAlive(s.file)
	}
	return f, err
}

func (t *SubprocessTransport) handle() uintptr {
	if t == nil {
		return 0
	}
	return t.h
}

func (t *SubprocessTransport) call(f func(uintptr) int32) (int32, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	return do(func() int32 { return f(t.handle()) })
}

// Loop returns the child's loop.
func (t *SubprocessTransport) Loop() *Loop {
	if t == nil {
		return nil
	}
	return t.loop
}

// Protocol returns the child's protocol.
func (t *SubprocessTransport) Protocol() SubprocessProtocol {
	if t == nil || t.conn == nil {
		return nil
	}
	return t.conn.proto
}

// Pid returns the child's process id (asyncio's get_pid).
func (t *SubprocessTransport) Pid() int {
	if t == nil {
		return 0
	}
	return t.pid
}

// ReturnCode returns the child's exit status, or minus the number of the
// signal that killed it, and true once it has exited (asyncio's
// get_returncode; false while it runs).
func (t *SubprocessTransport) ReturnCode() (int, bool) {
	if t == nil {
		return 0, false
	}
	if t.exit {
		return t.code, true
	}
	if lib == nil || t.lost.Load() {
		return 0, false
	}
	var rc int32
	r, err := t.call(func(h uintptr) int32 { return lib.subprocessGetReturncode(h, &rc) })
	if err != nil || r != 1 {
		return 0, false
	}
	return int(rc), true
}

// exited runs (on the loop thread) before the protocol's ProcessExited.
func (t *SubprocessTransport) exited() {
	if code, ok := t.ReturnCode(); ok {
		t.code, t.exit = code, true
	}
	ws := t.waiters
	t.waiters = nil
	for _, w := range ws {
		if !w.Done() {
			w.SetResult(t.code)
		}
	}
}

func (t *SubprocessTransport) pipeLost(fd int) {
	if fd >= 0 && fd < 3 && t.pipes[fd] != nil {
		t.pipes[fd].lost.Store(true)
		t.pipes[fd] = nil
	}
}

// Wait returns a future of the child's return code, resolved when it
// exits (asyncio's Process.wait); ctx cancels the wait, not the child.
func (t *SubprocessTransport) Wait(ctx context.Context) (*Future[int], error) {
	if t == nil || lib == nil {
		return nil, ErrBadHandle
	}
	f, err := NewFuture[int](t.loop)
	if err != nil {
		return nil, err
	}
	if code, ok := t.ReturnCode(); ok {
		f.SetResult(code)
		return f, nil
	}
	t.waiters = append(t.waiters, f)
	f.watch(ctx)
	return f, nil
}

// PipeTransport returns the transport of the child's fd (0, 1 or 2), or nil
// when that fd is not a pipe or its pipe is closed (asyncio's
// get_pipe_transport). Write to the child's stdin with it (WriteEOF closes
// the child's stdin); pause and resume reading its stdout and stderr.
func (t *SubprocessTransport) PipeTransport(fd int) *Transport {
	if t == nil || lib == nil || fd < 0 || fd > 2 {
		return nil
	}
	if t.pipes[fd] != nil {
		return t.pipes[fd]
	}
	var th uintptr
	if _, err := t.call(func(h uintptr) int32 { return lib.subprocessGetPipeTransport(h, int32(fd), &th) }); err != nil || th == 0 {
		return nil
	}
	t.pipes[fd] = &Transport{h: th, loop: t.loop, network: "pipe"}
	return t.pipes[fd]
}

// SendSignal sends sig to the child (does nothing once it has exited).
func (t *SubprocessTransport) SendSignal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return errInvalid("not a syscall.Signal")
	}
	_, err := t.call(func(h uintptr) int32 { return lib.subprocessSendSignal(h, int32(s)) })
	return err
}

// Terminate sends SIGTERM.
func (t *SubprocessTransport) Terminate() error {
	_, err := t.call(func(h uintptr) int32 { return lib.subprocessTerminate(h) })
	return err
}

// Kill sends SIGKILL.
func (t *SubprocessTransport) Kill() error {
	_, err := t.call(func(h uintptr) int32 { return lib.subprocessKill(h) })
	return err
}

// Close closes the pipes and kills the child if it still runs (asyncio's
// close); the protocol's remaining callbacks follow. Idempotent.
func (t *SubprocessTransport) Close() error {
	_, err := t.call(func(h uintptr) int32 { return lib.subprocessClose(h) })
	return err
}

// IsClosing reports whether Close was called.
func (t *SubprocessTransport) IsClosing() bool {
	if lib == nil {
		return true
	}
	rc, err := t.call(func(h uintptr) int32 { return lib.subprocessIsClosing(h) })
	return err != nil || rc > 0
}
