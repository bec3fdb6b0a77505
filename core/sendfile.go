package core

import (
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendfile (asyncio's loop.sendfile and loop.sock_sendfile): a file is sent
// over a stream socket with sendfile(2), zero-copy, on the loop thread;
// when sendfile(2) cannot be used (the file is not a regular file, or the
// first call fails with EINVAL/ENOSYS/...), and the caller allows it, the
// file is read in chunks on a goroutine (reads may block) and the chunks
// are sent from the loop thread. Both stop after count bytes (0: at the end
// of the file); the result is the number of bytes sent (int64). As in
// asyncio the file's offset is set to offset + bytes sent at the end.

// ErrSendfileUnavailable is the error of a sendfile that cannot use
// sendfile(2) when fallback is off (asyncio's SendfileNotAvailableError).
var ErrSendfileUnavailable = &OpError{Op: "sendfile", Addr: "sendfile(2) is not available for this file (fallback disabled)", Err: unix.ENOSYS}

const (
	sfWaitWritable = iota // wait until the socket is writable
	sfWaitFile            // wait for the file reader (fallback)
	sfWaitFlush           // wait for the transport's write buffer (through)
	sfDone                // the future is done
)

const (
	sendfileChunk    = 1 << 30   // bytes per sendfile(2) call
	sendfileBudget   = 16 << 20  // bytes per loop iteration, then yield
	fallbackReadSize = 256 << 10 // bytes per read of the fallback
)

type sendfileOp struct {
	loop     *Loop
	sock     int
	file     int
	offset   int64
	count    int64 // 0: until EOF
	sent     int64
	fallback bool
	native   bool
	badFile  error // an error to report at the first step (through the future)
	seekable bool

	chunk   []byte      // fallback: read from the file, not sent yet
	reading bool        // fallback: a goroutine reads the file
	counted bool        // fallback: that read counts in Loop.objects
	eof     bool        // fallback: the file is exhausted
	stopped atomic.Bool // the operation ended: the reader gives up

	// through, when set, takes the chunks instead of the socket (a TLS
	// transport: the data must be encrypted); pending tells how much it
	// still buffers.
	through func([]byte) error
	pending func() int

	fut  *Future
	over bool
	// wake runs the operation again after a file read completed.
	wake func()
	// onFinish cleans up the context (socket queue or transport) once.
	onFinish func(err error, sockErr bool)
}

func newSendfileOp(l *Loop, sock, file int, offset, count int64, fallback bool, fut *Future) (*sendfileOp, error) {
	if offset < 0 || count < 0 {
		return nil, &OpError{Op: "sendfile", Addr: "offset and count must not be negative", Err: ErrInvalid}
	}
	if file < 0 {
		return nil, &OpError{Op: "sendfile", Err: unix.EBADF}
	}
	var st unix.Stat_t
	if err := unix.Fstat(file, &st); err != nil {
		return nil, &OpError{Op: "sendfile", Addr: "file", Err: err}
	}
	op := &sendfileOp{loop: l, sock: sock, file: file, offset: offset, count: count, fallback: fallback, fut: fut}
	op.native = st.Mode&unix.S_IFMT == unix.S_IFREG
	_, serr := unix.Seek(file, 0, 1)
	op.seekable = serr == nil
	if !op.native && !fallback {
		op.badFile = ErrSendfileUnavailable
	} else if !op.seekable && offset != 0 {
		op.badFile = &OpError{Op: "sendfile", Addr: "an offset on a file that cannot seek", Err: ErrInvalid}
	}
	fut.AddDoneCallback(func(f *Future) {
		// Cancelled, or completed by its holder (Future.Override): the
		// operation ends (complete keeps the future's outcome).
		op.complete(nil, false)
	}, nil, nil)
	// The reader gives up at once, also when the callback above never runs
	// (Loop.CloseForce drops it).
	fut.onCancel = func() { op.stopped.Store(true) }
	return op, nil
}

// complete ends the operation once: the future gets the result (unless
// cancelled), the file offset is updated, the context cleans up.
func (op *sendfileOp) complete(err error, sockErr bool) int {
	if op.over {
		return sfDone
	}
	op.over = true
	op.stopped.Store(true)
	op.chunk = nil
	// A read still under way no longer keeps the loop from closing: its
	// reader gives up within readPollMs (readFileChunk) and its result is
	// dropped.
	op.uncountRead()
	if op.sent > 0 && op.seekable {
		unix.Seek(op.file, op.offset+op.sent, 0)
	}
	if !op.fut.Done() {
		if err != nil {
			op.fut.SetException(err)
		} else {
			op.fut.SetResult(op.sent)
		}
	}
	if f := op.onFinish; f != nil {
		op.onFinish = nil
		f(err, sockErr)
	}
	return sfDone
}

func sendfileUnsupported(err error) bool {
	switch err {
	case unix.EINVAL, unix.ENOSYS, unix.EOPNOTSUPP, unix.ESPIPE, unix.EOVERFLOW:
		return true
	}
	return false
}

// step makes progress until the socket or the file has to be waited for.
func (op *sendfileOp) step() int {
	if op.over {
		return sfDone
	}
	if op.fut.Done() { // cancelled
		return op.complete(nil, false)
	}
	if op.badFile != nil {
		return op.complete(op.badFile, false)
	}
	var budget int64 = sendfileBudget
	for budget > 0 {
		remaining := int64(-1)
		if op.count > 0 {
			remaining = op.count - op.sent
			if remaining <= 0 {
				return op.complete(nil, false)
			}
		}
		if op.native {
			n := int64(sendfileChunk)
			if remaining >= 0 && remaining < n {
				n = remaining
			}
			off := op.offset + op.sent
			w, err := sendfileNoSignal(op.sock, op.file, &off, int(n))
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				if w > 0 {
					op.sent += int64(w)
				}
				return sfWaitWritable
			case err != nil:
				if op.sent == 0 && sendfileUnsupported(err) {
					if op.fallback {
						op.native = false
						continue
					}
					return op.complete(ErrSendfileUnavailable, false)
				}
				return op.complete(&OpError{Op: "sendfile", Err: err}, true)
			case w == 0:
				return op.complete(nil, false) // end of the file
			}
			op.sent += int64(w)
			budget -= int64(w)
			continue
		}
		// Fallback: send what was read, read more on a goroutine.
		if len(op.chunk) == 0 {
			if op.eof {
				return op.complete(nil, false)
			}
			if !op.reading {
				op.startRead(remaining)
			}
			return sfWaitFile
		}
		if op.through != nil {
			if op.pending() > 0 {
				return sfWaitFlush
			}
			chunk := op.chunk
			op.chunk = nil
			if err := op.through(chunk); err != nil {
				return op.complete(err, true)
			}
			op.sent += int64(len(chunk))
			budget -= int64(len(chunk))
			if !op.eof && !op.reading && (op.count == 0 || op.sent < op.count) {
				rem := int64(-1)
				if op.count > 0 {
					rem = op.count - op.sent
				}
				op.startRead(rem) // the next chunk while this one drains
			}
			continue
		}
		w, errno := sockSend(op.sock, op.chunk)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return sfWaitWritable
		case errno != 0:
			return op.complete(&OpError{Op: "send", Err: errno}, true)
		}
		op.chunk = op.chunk[w:]
		op.sent += int64(w)
		budget -= int64(w)
	}
	return sfWaitWritable // yield to the other work of the loop
}

// sendfileNoSignal is sendfile(2) with SIGPIPE blocked on the calling thread
// and a SIGPIPE it raises consumed: sendfile has no MSG_NOSIGNAL, and the
// default action of SIGPIPE would kill a C host whose peer went away.
func sendfileNoSignal(out, in int, off *int64, n int) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	set.Val[0] = 1 << (uint(unix.SIGPIPE) - 1)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return unix.Sendfile(out, in, off, n)
	}
	var pending unix.Sigset_t
	unix.RawSyscall(unix.SYS_RT_SIGPENDING, uintptr(unsafe.Pointer(&pending)), 8, 0)
	was := pending.Val[0]&set.Val[0] != 0
	w, err := unix.Sendfile(out, in, off, n)
	if err == unix.EPIPE && !was {
		var ts unix.Timespec // zero: do not wait
		unix.RawSyscall6(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(&set)), 0, uintptr(unsafe.Pointer(&ts)), 8, 0, 0)
	}
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return w, err
}

// startRead reads the next chunk of the file on a goroutine.
func (op *sendfileOp) startRead(remaining int64) {
	l := op.loop
	size := int64(fallbackReadSize)
	if remaining >= 0 && remaining < size {
		size = remaining
	}
	buf := make([]byte, size)
	pos := op.offset + op.sent
	op.reading = true
	op.counted = true
	l.objects++
	go func() {
		n, err := readFileChunk(op, buf, pos)
		l.CallSoonThreadsafe(func() {
			op.uncountRead()
			op.reading = false
			if op.over {
				return
			}
			switch {
			case err != nil:
				op.complete(&OpError{Op: "read", Addr: "file", Err: err}, false)
				return
			case n == 0:
				op.eof = true
			default:
				op.chunk = buf[:n]
			}
			op.wake()
		}, nil)
	}()
}

func (op *sendfileOp) uncountRead() {
	if op.counted {
		op.counted = false
		op.loop.objects--
	}
}

// readPollMs bounds how long the fallback's reader waits for a file that
// cannot seek before it checks whether the operation stopped.
const readPollMs = 100

// readFileChunk reads at pos (or at the current position of a file that
// cannot seek); it gives up once the operation stopped. A file that cannot
// seek (a pipe, a socket, a terminal) is polled before each read, in steps
// of readPollMs: a blocking one that never gives data nor EOF would
// otherwise hold the reader in read(2) for good, after a cancel too.
func readFileChunk(op *sendfileOp, buf []byte, pos int64) (int, error) {
	for !op.stopped.Load() {
		var n int
		var err error
		if !op.seekable {
			fds := []unix.PollFd{{Fd: int32(op.file), Events: unix.POLLIN}}
			if k, perr := unix.Poll(fds, readPollMs); perr == unix.EINTR || (perr == nil && k == 0) {
				continue
			}
		}
		if op.seekable {
			n, err = unix.Pread(op.file, buf, pos)
		} else {
			n, err = unix.Read(op.file, buf)
		}
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			fds := []unix.PollFd{{Fd: int32(op.file), Events: unix.POLLIN}}
			unix.Poll(fds, readPollMs)
			continue
		}
		return 0, err
	}
	return 0, nil
}

// ---------------------------------------------------------------------------
// sock_sendfile.

// SockSendfile sends count bytes (0: to the end) of file from offset over the
// stream socket fd (asyncio's sock_sendfile); the result is the number of
// bytes sent (int64). With fallback false, a file sendfile(2) cannot send
// fails with ErrSendfileUnavailable (ENOSYS).
func (l *Loop) SockSendfile(fd, file int, offset, count int64, fallback bool) (*Future, error) {
	if err := l.sockCheck(fd); err != nil {
		return nil, err
	}
	if t := sockType(fd); t != unix.SOCK_STREAM {
		return nil, &OpError{Op: "sock_sendfile", Addr: "only SOCK_STREAM sockets are supported", Err: ErrInvalid}
	}
	fut := l.NewFuture()
	op, err := newSendfileOp(l, fd, file, offset, count, fallback, fut)
	if err != nil {
		return nil, err
	}
	sop := &sockOp{fut: fut}
	sop.run = func() bool {
		st := op.step()
		sop.idle = st == sfWaitFile
		return st == sfDone
	}
	op.wake = func() {
		sop.idle = false
		if e := l.entry(fd, false); e != nil {
			if sf, ok := e.owner.(*sockFd); ok {
				sf.kick()
			}
		}
	}
	l.sockStart(fd, true, sop)
	return fut, nil
}

// ---------------------------------------------------------------------------
// Transport.Sendfile.

// Sendfile sends count bytes (0: to the end) of file from offset over the
// transport (asyncio's loop.sendfile(transport, ...)); the result is the
// number of bytes sent (int64). On a TLS transport the file is read and
// written through TLS (no zero-copy; fallback must be allowed, else
// ErrSendfileUnavailable). It starts once the write buffer is flushed;
// meanwhile and until it is done Write fails with EBUSY, reading is paused
// (and resumed after, if it was on), Close waits for it, and WriteEOF takes
// effect after it. A socket error fails the future and the transport
// (ConnectionLost with the error); Abort fails the future.
func (t *Transport) Sendfile(file int, offset, count int64, fallback bool) (*Future, error) {
	if t.closing || t.lost {
		return nil, ErrClosed
	}
	if t.eof {
		return nil, &OpError{Op: "sendfile", Err: unix.EPIPE, Addr: "cannot call sendfile() after write_eof()"}
	}
	if t.sendfile != nil {
		return nil, &OpError{Op: "sendfile", Err: ErrBusy, Addr: "sendfile is in progress"}
	}
	if st := sockType(t.fd); st != unix.SOCK_STREAM {
		return nil, &OpError{Op: "sendfile", Addr: "sendfile is not supported for this transport", Err: ErrInvalid}
	}
	l := t.loop
	fut := l.NewFuture()
	op, err := newSendfileOp(l, t.fd, file, offset, count, fallback, fut)
	if err != nil {
		return nil, err
	}
	if t.tls != nil {
		// TLS: no zero-copy; the chunks go through the TLS layer (asyncio
		// uses its fallback for SSL transports too).
		op.native = false
		op.through = t.tls.write
		op.pending = func() int { return t.wsize }
		if !fallback && op.badFile == nil {
			op.badFile = ErrSendfileUnavailable
		}
	}
	t.sendfile = op
	t.closeGate()
	resume := t.IsReading()
	t.PauseReading()
	run := func() {
		switch op.step() {
		case sfWaitWritable:
			t.e.writer = t.sendfileWritable
			l.update(t.e)
		case sfWaitFile, sfWaitFlush:
			// Through the TLS layer the transport's own writer drains the
			// buffer (and calls sendfileFlushed); otherwise nothing is
			// buffered and the writer is ours.
			if op.through == nil && t.e.writer != nil {
				t.e.writer = nil
				l.update(t.e)
			}
		}
	}
	op.wake = run
	op.onFinish = func(err error, sockErr bool) {
		t.sendfile = nil
		if t.lostScheduled || t.lost {
			return
		}
		if op.through == nil && t.e.writer != nil {
			t.e.writer = nil
			l.update(t.e)
		}
		if sockErr {
			t.fatal(err, "Fatal error on sendfile")
			return
		}
		if resume {
			t.ResumeReading()
		}
		if t.closing && t.tls != nil {
			t.tls.close() // deferred by Close while the sendfile ran
		}
		if t.wsize > 0 {
			return // the transport's flush closes or shuts down after it
		}
		if t.closing {
			t.scheduleClose()
		} else if t.eof {
			t.shutdownWrite()
		}
	}
	if t.wsize == 0 {
		run()
	}
	// Otherwise the transport's flush calls sendfileFlushed.
	return fut, nil
}

// sendfileWritable is the transport's writer while a sendfile runs.
func (t *Transport) sendfileWritable() {
	if op := t.sendfile; op != nil {
		op.wake()
	}
}

// sendfileFlushed starts a sendfile waiting for the write buffer.
func (t *Transport) sendfileFlushed() {
	if op := t.sendfile; op != nil {
		op.wake()
	}
}

// sendfileAbort fails a running sendfile when the transport closes.
func (t *Transport) sendfileAbort(err error) {
	op := t.sendfile
	if op == nil {
		return
	}
	t.sendfile = nil
	op.onFinish = nil
	if err == nil {
		err = &OpError{Op: "sendfile", Addr: "the transport was closed", Err: ErrClosed}
	}
	op.complete(err, false)
}
