package core

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pipe transports (connect_read_pipe, connect_write_pipe) for pipes, FIFOs,
// sockets, ptys and other character devices, with asyncio's
// _UnixReadPipeTransport / _UnixWritePipeTransport semantics. They are
// Transports whose `pipe` field is set; the Transport methods dispatch here
// where a pipe behaves differently from a socket.

type pipeMode uint8

const (
	pipeNone  pipeMode = iota // a socket transport
	pipeRead                  // connect_read_pipe
	pipeWrite                 // connect_write_pipe
)

// ConnectReadPipe wraps fd, the read end of a pipe (or a FIFO, socket, pty
// or other character device), into a read transport. The future's result is
// the *Transport, set after proto.ConnectionMade ran. On success the
// transport owns fd (it is made non-blocking and closed with the
// transport); on an error fd is left to the caller. A regular file or a
// directory is rejected with ErrInvalid, as asyncio does.
//
// EOF calls EOFReceived (its result is ignored) and then ConnectionLost(nil).
// A pty master reports the slave's close as a read error EIO, which ends the
// transport with ConnectionLost(EIO) (asyncio).
func (l *Loop) ConnectReadPipe(fd int, proto Protocol) (*Future, error) {
	return l.connectPipe(fd, proto, pipeRead)
}

// ConnectWritePipe wraps fd, the write end of a pipe (or a FIFO, socket,
// pty or other character device), into a write transport. Write never
// blocks (the rest is buffered, with pause/resume_writing at the water
// marks); Close and WriteEOF flush the buffer, then close. For pipes and
// sockets the transport watches for the reader going away: it then closes
// with ConnectionLost(EPIPE) if data was still buffered, else
// ConnectionLost(nil) (asyncio); a write that fails with EPIPE also ends it
// with ConnectionLost(EPIPE). Ownership of fd is as in ConnectReadPipe.
func (l *Loop) ConnectWritePipe(fd int, proto Protocol) (*Future, error) {
	return l.connectPipe(fd, proto, pipeWrite)
}

func (l *Loop) connectPipe(fd int, proto Protocol, mode pipeMode) (*Future, error) {
	op := "connect_read_pipe"
	if mode == pipeWrite {
		op = "connect_write_pipe"
	}
	if l.closed {
		return nil, ErrClosed
	}
	if proto == nil {
		return nil, ErrInvalid
	}
	if fd < 0 {
		return nil, &OpError{Op: op, Err: unix.EBADF}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &OpError{Op: op, Err: err}
	}
	kind := st.Mode & unix.S_IFMT
	switch kind {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR:
	default:
		return nil, &OpError{Op: op, Addr: "pipe transport is only for pipes, sockets and character devices", Err: ErrInvalid}
	}
	if e := l.entry(fd, false); e != nil {
		return nil, &OpError{Op: op, Addr: "fd is already watched by the loop", Err: unix.EBUSY}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, &OpError{Op: op, Err: err}
	}
	t := l.newTransport(fd)
	t.pipe = mode
	// The reader trick: the write end of a pipe reports an error (and a
	// socket readability) when the reader goes away.
	t.pipeWatch = mode == pipeWrite && (kind == unix.S_IFIFO || kind == unix.S_IFSOCK)
	t.SetProtocol(proto)
	fut := l.NewFuture()
	l.startThenResolve(fut, t)
	return fut, nil
}

// PipeMode tells what t is: 0 a socket transport, 1 a read pipe
// transport, 2 a write pipe transport.
func (t *Transport) PipeMode() int { return int(t.pipe) }

func (t *Transport) pipeWantRead() bool {
	if t.pipe == pipeWrite {
		return t.pipeWatch && t.started && !t.lostScheduled && !t.lost
	}
	return t.started && !t.paused && !t.closing && !t.readEOF
}

func (t *Transport) pipeReadable() {
	if t.pipe == pipeWrite {
		t.pipePeerClosed()
		return
	}
	l := t.loop
	var buf []byte
	if t.buffered != nil {
		if !t.guard("get_buffer", func() { buf = t.buffered.GetBuffer(t, -1) }) {
			return
		}
		if len(buf) == 0 {
			t.fatal(errorString("get_buffer() returned an empty buffer"), "Fatal error: protocol.get_buffer() call failed.")
			return
		}
	} else {
		buf = l.readBuffer()
	}
	n, errno := rawRead(t.fd, buf)
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
	case errno != 0:
		t.pipeFatal(&OpError{Op: "read", Err: errno}, "Fatal read error on pipe transport")
	case n == 0:
		// EOF: eof_received, then connection_lost(nil), both scheduled.
		t.readEOF = true
		t.closing = true
		t.updateReading()
		t.loop.CallSoon(func() {
			if !t.lost {
				t.guard("eof_received", func() { t.proto.EOFReceived(t) })
			}
		}, nil)
		t.scheduleLost(nil)
	case t.buffered != nil:
		t.guard("buffer_updated", func() { t.buffered.BufferUpdated(t, n) })
	default:
		t.guard("data_received", func() { t.proto.DataReceived(t, buf[:n]) })
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// pipePeerClosed: the write end became readable / failed: the reader went
// away.
func (t *Transport) pipePeerClosed() {
	if t.wsize > 0 {
		t.forceClose(&OpError{Op: "write", Err: unix.EPIPE})
	} else {
		t.forceClose(nil)
	}
}

// pipeFatal is asyncio's _fatal_error of the pipe transports: the read pipe
// logs every error but EIO, the write pipe logs no OS error (except in debug
// mode); both then close with err.
func (t *Transport) pipeFatal(err error, msg string) {
	log := t.loop.debug.Load()
	if !log && t.pipe == pipeRead {
		log = Errno(err) != unix.EIO
	}
	if log {
		t.loop.CallExceptionHandler(&ExceptionContext{Message: msg, Err: err, Transport: t})
	}
	t.forceClose(err)
}

func rawWrite(fd int, b []byte) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

var sigpipeSet = func() (s unix.Sigset_t) {
	s.Val[0] = 1 << (uint(unix.SIGPIPE) - 1)
	return
}()

// pipeWritev writes iov (n entries) to a pipe without letting SIGPIPE reach
// the process. write(2) on a pipe has no MSG_NOSIGNAL, and a C host whose
// SIGPIPE disposition is the default (e.g. reset with signal() after the
// library loaded, which removes Go's handler) would be killed. So SIGPIPE is
// blocked on this thread around the write, and one raised by it is consumed
// before the mask is restored.
func pipeWritev(fd int, iov *unix.Iovec, n int) (int, unix.Errno) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.Sigset_t
	blocked := unix.PthreadSigmask(unix.SIG_BLOCK, &sigpipeSet, &old) == nil && old.Val[0]&sigpipeSet.Val[0] == 0
	r, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(iov)), uintptr(n))
	if errno != 0 {
		r = 0
	}
	if blocked {
		if errno == unix.EPIPE {
			var ts unix.Timespec // poll: the signal is already pending
			unix.RawSyscall6(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(&sigpipeSet)), 0,
				uintptr(unsafe.Pointer(&ts)), 8, 0, 0)
		}
		unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	}
	return int(r), errno
}

func (t *Transport) pipeWrite(data []byte) error {
	if t.pipe == pipeRead {
		return &OpError{Op: "write", Addr: "a read pipe transport cannot write", Err: ErrInvalid}
	}
	if t.eof {
		return &OpError{Op: "write", Err: unix.EPIPE, Addr: "cannot call write() after write_eof()"}
	}
	if !t.acceptsWrite() {
		return ErrClosed
	}
	if len(data) == 0 {
		return nil
	}
	if t.wsize == 0 {
		iov := unix.Iovec{Base: &data[0]}
		iov.SetLen(len(data))
		n, errno := pipeWritev(t.fd, &iov, 1)
		switch errno {
		case 0:
		case unix.EAGAIN, unix.EINTR:
			n = 0
		default:
			t.pipeFatal(&OpError{Op: "write", Err: errno}, "Fatal write error on pipe transport")
			return nil
		}
		data = data[n:]
		if len(data) == 0 {
			return nil
		}
		t.e.writer = t.writeFn
		t.loop.update(t.e)
	}
	t.queueWrite(data) // writeq.go
	t.maybePauseProtocol()
	return nil
}

func (t *Transport) pipeWritable() {
	for t.wsize > 0 {
		iovn := t.pendingIov()
		n, errno := pipeWritev(t.fd, &t.loop.iov[0], iovn)
		t.loop.clearIov(iovn)
		if errno == unix.EAGAIN || errno == unix.EINTR {
			break
		}
		if errno != 0 {
			t.pipeFatal(&OpError{Op: "write", Err: errno}, "Fatal write error on pipe transport")
			return
		}
		t.consume(n)
		if n == 0 {
			break
		}
	}
	if t.wsize > 0 {
		t.maybeResumeProtocol()
		return
	}
	t.e.writer = nil
	t.loop.update(t.e)
	t.maybeResumeProtocol() // may write again
	if t.closing && t.wsize == 0 {
		t.scheduleClose()
	}
}

// pipeWriteEOF: for a write pipe, write_eof is close (flush, then close the
// fd); a read pipe cannot write EOF.
func (t *Transport) pipeWriteEOF() error {
	if t.pipe == pipeRead {
		return &OpError{Op: "write_eof", Addr: "a read pipe transport cannot write", Err: ErrInvalid}
	}
	if !t.closing && !t.lost {
		t.eof = true
	}
	t.Close()
	return nil
}
