package core

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Subprocesses (asyncio's subprocess_exec / subprocess_shell and
// base_subprocess.BaseSubprocessTransport).
//
// The child is started with syscall.ForkExec (Go forks safely: vfork-style
// clone, no Go code in the child). Its stdio pipes are Transports read and
// written on the loop thread through the reactor: stdout and stderr are
// real pipes (read(2) on the read end); stdin is a Unix socket pair, as in
// libuv/uvloop/Node, so that writes use send(MSG_NOSIGNAL) (no SIGPIPE in
// the host) and write_eof is shutdown(SHUT_WR). The child is reaped through
// a pidfd (CLONE_PIDFD, Linux >= 5.2) watched by the reactor; without
// pidfds, a goroutine waits for it and posts the exit to the loop.
//
// Event order is asyncio's: connection_made first; then pipe_data_received
// and pipe_connection_lost per pipe, and process_exited, in the order they
// happen; connection_lost last, once the process exited and every pipe is
// closed. A process that is still running when the transport is closed is
// killed; a process whose transport was closed and whose loop was closed
// is reaped in the background, so no zombie is left behind.

// StdioMode tells what a child's stdin, stdout or stderr is connected to.
type StdioMode int

const (
	StdioPipe    StdioMode = iota // a pipe to the parent (the default)
	StdioDevNull                  // /dev/null
	StdioInherit                  // the parent's own fd 0, 1 or 2
	StdioFd                       // Stdio.Fd (the child gets a copy)
	StdioStdout                   // stderr only: the same as stdout
)

// Stdio configures one of the child's standard fds.
type Stdio struct {
	Mode StdioMode
	Fd   int // with StdioFd
}

// SubprocessOptions are the optional arguments of SubprocessExec.
type SubprocessOptions struct {
	Env             []string // "NAME=value"; nil: os.Environ()
	Dir             string   // working directory; "": the parent's
	Stdin           Stdio
	Stdout          Stdio
	Stderr          Stdio
	StartNewSession bool // setsid() in the child
	// Tag is copied to Subprocess.Tag.
	Tag any
	// OnRelease, if set, runs once when the loop drops the subprocess:
	// after ConnectionLost, or for a transport closed before its process
	// ended, when the loop closes.
	OnRelease func(p *Subprocess)
}

// SubprocessProtocol is asyncio's SubprocessProtocol. Every method runs on
// the loop thread. fd is 0 (stdin), 1 (stdout) or 2 (stderr).
type SubprocessProtocol interface {
	ConnectionMade(p *Subprocess)
	PipeDataReceived(p *Subprocess, fd int, data []byte) // data valid only during the call
	PipeConnectionLost(p *Subprocess, fd int, err error)
	ProcessExited(p *Subprocess)
	ConnectionLost(p *Subprocess, err error)
	PauseWriting(p *Subprocess) // the stdin pipe's buffer is above its high mark
	ResumeWriting(p *Subprocess)
}

// BaseSubprocessProtocol implements SubprocessProtocol with no-ops.
type BaseSubprocessProtocol struct{}

func (BaseSubprocessProtocol) ConnectionMade(*Subprocess)                 {}
func (BaseSubprocessProtocol) PipeDataReceived(*Subprocess, int, []byte)  {}
func (BaseSubprocessProtocol) PipeConnectionLost(*Subprocess, int, error) {}
func (BaseSubprocessProtocol) ProcessExited(*Subprocess)                  {}
func (BaseSubprocessProtocol) ConnectionLost(*Subprocess, error)          {}
func (BaseSubprocessProtocol) PauseWriting(*Subprocess)                   {}
func (BaseSubprocessProtocol) ResumeWriting(*Subprocess)                  {}

// Subprocess is the subprocess transport.
type Subprocess struct {
	claimed bool // its holder has it (claim.go)
	loop    *Loop
	proto   SubprocessProtocol
	fut     *Future
	pid     int
	pidfd   int // -1 without pidfd
	pe      *fdEntry
	pipes   [3]*Transport // nil when not a pipe, or once the pipe is lost

	mu     sync.Mutex // without pidfd: orders reaping and signalling
	reaped bool       // without pidfd: guarded by mu

	code     int
	exited   bool
	started  bool // connection_made ran
	silent   bool // abandoned before connection_made: no protocol callbacks
	closed   bool
	finished bool // connection_lost is scheduled
	counted  bool // counted in loop.objects
	released bool

	// Tag is free for the host (the C layer keeps its handle here).
	Tag any
	// OnRelease: see SubprocessOptions.OnRelease.
	OnRelease func(p *Subprocess)
}

// usePidfd is false on kernels without pidfd (and in tests of the fallback).
var usePidfd = func() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}()

// SubprocessExec starts argv[0] (searched in the PATH of the child's
// environment when it has no slash) with arguments argv (asyncio's
// subprocess_exec). The future's result is the *Subprocess, set after
// proto.ConnectionMade ran. A child that cannot be started (no such file,
// not executable, bad working directory, ...) fails the future with the
// errno (ENOENT, EACCES, ...) and no protocol method runs. Invalid
// arguments return an error at once.
func (l *Loop) SubprocessExec(argv []string, proto SubprocessProtocol, opts *SubprocessOptions) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if len(argv) == 0 || proto == nil {
		return nil, ErrInvalid
	}
	var o SubprocessOptions
	if opts != nil {
		o = *opts
	}
	if err := checkStdio(&o); err != nil {
		return nil, err
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	for _, s := range argv {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, ErrInvalid
		}
	}
	for _, s := range o.Env {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, ErrInvalid
		}
	}
	if strings.IndexByte(o.Dir, 0) >= 0 {
		return nil, ErrInvalid
	}
	fut := l.NewFuture()
	p, err := l.spawn(argv, &o, proto, fut)
	if err != nil {
		fut.SetException(err)
		return fut, nil
	}
	l.CallSoon(p.start, nil)
	return fut, nil
}

// SubprocessShell runs cmd with /bin/sh -c (asyncio's subprocess_shell).
func (l *Loop) SubprocessShell(cmd string, proto SubprocessProtocol, opts *SubprocessOptions) (*Future, error) {
	return l.SubprocessExec([]string{"/bin/sh", "-c", cmd}, proto, opts)
}

func checkStdio(o *SubprocessOptions) error {
	for i, s := range []Stdio{o.Stdin, o.Stdout, o.Stderr} {
		switch s.Mode {
		case StdioPipe, StdioDevNull, StdioInherit:
		case StdioFd:
			if s.Fd < 0 {
				return &OpError{Op: "subprocess", Addr: fmt.Sprintf("fd %d for child fd %d", s.Fd, i), Err: unix.EBADF}
			}
		case StdioStdout:
			if i != 2 {
				return &OpError{Op: "subprocess", Addr: "only stderr can go to stdout", Err: ErrInvalid}
			}
		default:
			return &OpError{Op: "subprocess", Addr: fmt.Sprintf("invalid stdio mode %d", s.Mode), Err: ErrInvalid}
		}
	}
	return nil
}

// LookPath finds file as execvp does: a name with a slash is used as is;
// else each directory of the PATH in env (default "/bin:/usr/bin") is tried.
// ENOENT if none has it, EACCES if one has it but not executable.
func LookPath(file string, env []string) (string, error) {
	if file == "" {
		return "", unix.ENOENT
	}
	if strings.IndexByte(file, '/') >= 0 {
		return file, nil
	}
	path, found := "", false
	for i := len(env) - 1; i >= 0; i-- { // the last definition wins
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			path, found = v, true
			break
		}
	}
	if !found {
		path = "/bin:/usr/bin"
	}
	denied := false
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		cand := dir + "/" + file
		var st unix.Stat_t
		if unix.Stat(cand, &st) != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || unix.Access(cand, unix.X_OK) != nil {
			denied = true
			continue
		}
		return cand, nil
	}
	if denied {
		return "", unix.EACCES
	}
	return "", unix.ENOENT
}

func (l *Loop) spawn(argv []string, o *SubprocessOptions, proto SubprocessProtocol, fut *Future) (p *Subprocess, err error) {
	path, err := LookPath(argv[0], o.Env)
	if err != nil {
		return nil, &OpError{Op: "exec", Addr: argv[0], Err: err}
	}
	parent := [3]int{-1, -1, -1} // our ends of the pipes
	child := [3]int{-1, -1, -1}  // what the child gets as 0, 1, 2
	var ours []int               // fds opened here for the child only
	defer func() {
		for _, fd := range ours {
			unix.Close(fd)
		}
		if err != nil {
			for _, fd := range parent {
				if fd >= 0 {
					unix.Close(fd)
				}
			}
		}
	}()
	devnull := -1
	for i, s := range []Stdio{o.Stdin, o.Stdout, o.Stderr} {
		switch s.Mode {
		case StdioPipe:
			var fds [2]int
			if i == 0 {
				fds, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					return nil, &OpError{Op: "socketpair", Err: err}
				}
			} else if err = unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
				return nil, &OpError{Op: "pipe2", Err: err}
			}
			parent[i], child[i] = fds[0], fds[1]
			ours = append(ours, fds[1])
			if err = unix.SetNonblock(parent[i], true); err != nil {
				return nil, &OpError{Op: "fcntl", Err: err}
			}
		case StdioDevNull:
			if devnull < 0 {
				devnull, err = unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					return nil, &OpError{Op: "open", Addr: "/dev/null", Err: err}
				}
				ours = append(ours, devnull)
			}
			child[i] = devnull
		case StdioInherit:
			child[i] = i
		case StdioFd:
			child[i] = s.Fd
		case StdioStdout:
			child[i] = child[1]
		}
	}
	pidfd := -1
	sys := &syscall.SysProcAttr{Setsid: o.StartNewSession}
	if usePidfd {
		sys.PidFD = &pidfd
	}
	attr := &syscall.ProcAttr{
		Dir:   o.Dir,
		Env:   o.Env,
		Files: []uintptr{uintptr(child[0]), uintptr(child[1]), uintptr(child[2])},
		Sys:   sys,
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return nil, &OpError{Op: "exec", Addr: argv[0], Err: err}
	}
	if pidfd >= 0 {
		unix.CloseOnExec(pidfd)
	}
	p = &Subprocess{loop: l, proto: proto, fut: fut, pid: pid, pidfd: pidfd, Tag: o.Tag, OnRelease: o.OnRelease}
	for i, fd := range parent {
		if fd >= 0 {
			t := l.newTransport(fd)
			t.SetProtocol(&subprocessPipeProto{p: p, fd: i})
			p.pipes[i] = t
		}
	}
	p.counted = true
	l.objects++
	if l.procs == nil {
		l.procs = make(map[*Subprocess]struct{})
	}
	l.procs[p] = struct{}{}
	if pidfd < 0 {
		go p.waitNoPidfd()
	}
	return p, nil
}

// start runs connection_made (scheduled with call_soon after the spawn).
func (p *Subprocess) start() {
	if p.fut.Done() {
		// Cancelled before connection_made: the caller never got the
		// transport. Kill the child; it is reaped without callbacks.
		p.silent = true
		for i, t := range p.pipes {
			if t != nil {
				t.forceClose(nil) // never started: no connection_lost
				p.pipes[i] = nil
			}
		}
		p.Close()
		p.watchExit()
		return
	}
	// Pipes first, so that a Close inside connection_made finds them
	// started (their connection_lost then reaches the protocol).
	for _, t := range p.pipes {
		if t != nil {
			t.start()
		}
	}
	p.started = true
	p.call("connection_made", func() { p.proto.ConnectionMade(p) })
	p.watchExit()
	if !p.fut.Done() {
		p.fut.SetResult(p)
	}
}

// call runs a protocol method; a panic goes to the exception handler.
func (p *Subprocess) call(name string, fn func()) {
	if p.silent {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			p.loop.CallExceptionHandler(&ExceptionContext{
				Message:    "Exception in subprocess protocol " + name + "()",
				Err:        fmt.Errorf("panic: %v", r),
				Subprocess: p,
			})
		}
	}()
	fn()
}

func (p *Subprocess) watchExit() {
	if p.pidfd < 0 || p.pe != nil || p.exited {
		return
	}
	l := p.loop
	e := l.claimEntry(p.pidfd)
	e.owner = p
	e.reader = p.onPidfdReadable
	p.pe = e
	if err := l.update(e); err != nil {
		// Cannot watch it: wait on a goroutine instead.
		l.forget(e)
		e.owner = nil
		p.pe = nil
		unix.Close(p.pidfd)
		p.pidfd = -1
		go p.waitNoPidfd()
	}
}

func (p *Subprocess) unwatchExit() {
	if p.pe != nil {
		p.loop.forget(p.pe)
		p.pe.owner = nil
		p.pe = nil
	}
}

func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return -int(ws.Signal())
	}
	return 255
}

// onPidfdReadable: the child exited; reap it.
func (p *Subprocess) onPidfdReadable() {
	var ws unix.WaitStatus
	code := 255 // as asyncio when the child was reaped elsewhere (ECHILD)
	for {
		wpid, err := unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err == nil && wpid == 0 {
			return // not yet (spurious wake-up)
		}
		if err == nil {
			code = exitCode(ws)
		}
		break
	}
	p.unwatchExit()
	unix.Close(p.pidfd)
	p.pidfd = -1
	p.processExited(code)
}

// waitNoPidfd reaps the child on a goroutine (kernels without pidfd): it
// waits without reaping, then reaps under mu so that SendSignal never
// signals a recycled pid.
func (p *Subprocess) waitNoPidfd() {
	var info unix.Siginfo
	for {
		if err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
			break
		}
	}
	p.mu.Lock()
	var ws unix.WaitStatus
	code := 255
	for {
		_, err := unix.Wait4(p.pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			code = exitCode(ws)
		}
		break
	}
	p.reaped = true
	p.mu.Unlock()
	// Fails only when the loop is closed: the child is reaped anyway.
	p.loop.CallSoonThreadsafe(func() { p.processExited(code) }, nil)
}

func (p *Subprocess) processExited(code int) {
	if p.exited {
		return
	}
	p.exited = true
	p.code = code
	if p.released {
		return
	}
	p.call("process_exited", func() { p.proto.ProcessExited(p) })
	p.tryFinish()
}

func (p *Subprocess) pipeLost(fd int, err error) {
	if p.pipes[fd] == nil {
		return
	}
	p.pipes[fd] = nil
	p.call("pipe_connection_lost", func() { p.proto.PipeConnectionLost(p, fd, err) })
	p.tryFinish()
}

func (p *Subprocess) tryFinish() {
	if p.finished || !p.exited || p.released {
		return
	}
	for _, t := range p.pipes {
		if t != nil {
			return
		}
	}
	p.finished = true
	if _, err := p.loop.CallSoon(p.connectionLost, nil); err != nil {
		p.connectionLost()
	}
}

func (p *Subprocess) connectionLost() {
	if p.released {
		return
	}
	p.call("connection_lost", func() { p.proto.ConnectionLost(p, nil) })
	p.release()
}

func (p *Subprocess) release() {
	if p.released {
		return
	}
	p.released = true
	p.closed = true
	l := p.loop
	if p.counted {
		p.counted = false
		l.objects--
	}
	delete(l.procs, p)
	if r := p.OnRelease; r != nil {
		p.OnRelease = nil
		r(p)
	}
}

// closeSubprocesses runs in Loop.Close. Only subprocesses whose transport
// was closed are left (an open one keeps the loop busy): they are dropped
// without further callbacks, and a child that did not exit yet is reaped
// in the background.
func (l *Loop) closeSubprocesses() {
	for p := range l.procs {
		if !p.exited {
			if p.pidfd >= 0 {
				p.unwatchExit()
				pid, pidfd := p.pid, p.pidfd
				p.pidfd = -1
				go reapBlocking(pid, pidfd)
			}
			// Without pidfd, waitNoPidfd is already waiting for it.
		}
		p.release()
	}
}

func reapBlocking(pid, pidfd int) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	unix.Close(pidfd)
}

// Loop returns the subprocess's loop.
func (p *Subprocess) Loop() *Loop { return p.loop }

// Pid is the child's process id.
func (p *Subprocess) Pid() int { return p.pid }

// Returncode is the exit status, or minus the signal that killed the
// child; ok is false while it runs.
func (p *Subprocess) Returncode() (code int, ok bool) { return p.code, p.exited }

// PipeTransport returns the transport of the child's fd 0, 1 or 2, or nil
// when that fd is not a pipe or its pipe is closed.
func (p *Subprocess) PipeTransport(fd int) *Transport {
	if fd < 0 || fd > 2 {
		return nil
	}
	return p.pipes[fd]
}

// SendSignal sends sig to the child. Once the child has exited, it does
// nothing (the pid may belong to another process by then). ErrInvalid for
// a number that is not a signal (0 is not allowed either).
func (p *Subprocess) SendSignal(sig int) error {
	if sig < 1 || sig >= NSIG {
		return ErrInvalid
	}
	if p.released {
		return &OpError{Op: "kill", Err: unix.ESRCH}
	}
	if p.exited {
		return nil
	}
	var err error
	if p.pidfd >= 0 {
		err = unix.PidfdSendSignal(p.pidfd, unix.Signal(sig), nil, 0)
	} else {
		p.mu.Lock()
		if !p.reaped {
			err = unix.Kill(p.pid, unix.Signal(sig))
		}
		p.mu.Unlock()
	}
	if err == unix.ESRCH {
		err = nil // exited, not yet reaped
	}
	if err != nil {
		return &OpError{Op: "kill", Err: err}
	}
	return nil
}

// Terminate sends SIGTERM.
func (p *Subprocess) Terminate() error { return p.SendSignal(int(unix.SIGTERM)) }

// Kill sends SIGKILL.
func (p *Subprocess) Kill() error { return p.SendSignal(int(unix.SIGKILL)) }

// IsClosing reports whether Close was called.
func (p *Subprocess) IsClosing() bool { return p.closed }

// Close closes the pipes (stdin after its buffer is flushed) and kills the
// child if it is still running (asyncio's close()). process_exited and
// connection_lost still follow while the loop runs. Closing twice does
// nothing. A closed subprocess no longer keeps the loop from closing.
func (p *Subprocess) Close() {
	if p.closed {
		return
	}
	p.closed = true
	for _, t := range p.pipes {
		if t != nil {
			t.Close()
		}
	}
	if !p.exited {
		p.Kill()
	}
	if p.counted {
		p.counted = false
		p.loop.objects--
	}
}

// subprocessPipeProto connects a pipe transport to its subprocess (asyncio's
// ReadSubprocessPipeProto / WriteSubprocessPipeProto).
type subprocessPipeProto struct {
	p  *Subprocess
	fd int
}

func (pp *subprocessPipeProto) ConnectionMade(*Transport) {}

func (pp *subprocessPipeProto) DataReceived(_ *Transport, data []byte) {
	if pp.fd == 0 {
		return // stdin is a socket: the child wrote to its stdin
	}
	p := pp.p
	p.call("pipe_data_received", func() { p.proto.PipeDataReceived(p, pp.fd, data) })
}

func (pp *subprocessPipeProto) EOFReceived(*Transport) bool { return false }

func (pp *subprocessPipeProto) ConnectionLost(t *Transport, err error) {
	if pp.fd == 0 {
		if en := Errno(err); en == unix.ECONNRESET || en == unix.EPIPE {
			// The child closed its stdin (a socket): report it as asyncio
			// reports a pipe whose reader went away: a broken pipe if data
			// was still waiting to be written, else a clean close.
			if t.DroppedBytes() > 0 {
				err = &OpError{Op: "write", Err: unix.EPIPE}
			} else {
				err = nil
			}
		}
	}
	pp.p.pipeLost(pp.fd, err)
}

func (pp *subprocessPipeProto) PauseWriting(*Transport) {
	p := pp.p
	p.call("pause_writing", func() { p.proto.PauseWriting(p) })
}

func (pp *subprocessPipeProto) ResumeWriting(*Transport) {
	p := pp.p
	p.call("resume_writing", func() { p.proto.ResumeWriting(p) })
}
