package asyncloop

import (
	"context"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Transport is a stream connection or a pipe (asyncio.Transport). Its
// methods must be called on the loop's thread (from a callback, or from the
// goroutine that runs the loop while it is not running). After
// ConnectionLost it is stale: methods return an error (ALOOP_EBADF) and
// never crash. The library owns it: there is nothing to release (Close
// closes the connection).
type Transport struct {
	h       uintptr
	loop    *Loop
	conn    *conn
	lost    atomic.Bool
	network string // "tcp", "unix" or "pipe"

	local, remote net.Addr // cached addresses
	tlsInfo       *tlsState
}

// Loop returns the transport's loop.
func (t *Transport) Loop() *Loop {
	if t == nil {
		return nil
	}
	return t.loop
}

// Protocol returns the transport's current protocol (asyncio's
// get_protocol).
func (t *Transport) Protocol() Protocol {
	if t == nil || t.conn == nil {
		return nil
	}
	return t.conn.proto
}

// Lost reports whether ConnectionLost has been delivered.
func (t *Transport) Lost() bool { return t != nil && t.lost.Load() }

func (t *Transport) handle() uintptr {
	if t == nil {
		return 0
	}
	return t.h
}

// call runs a function of the library that takes only the transport.
func (t *Transport) call(f func(uintptr) int32) (int32, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	return do(func() int32 { return f(t.handle()) })
}

func (t *Transport) boolCall(f func(uintptr) int32) bool {
	rc, err := t.call(f)
	return err == nil && rc > 0
}

// wrapErr wraps the error of an operation as a *net.OpError with the
// transport's addresses (as far as they are still known).
func (t *Transport) wrapErr(op string, err error) error {
	if err == nil || t == nil {
		return err
	}
	network := t.network
	if network == "" {
		network = "tcp"
	}
	if t.network != "pipe" && !t.lost.Load() {
		t.LocalAddr()
		t.RemoteAddr()
	}
	return &net.OpError{Op: op, Net: network, Source: t.local, Addr: t.remote, Err: err}
}

// Write queues p for sending (the library copies it; it never blocks) and
// returns len(p). It implements io.Writer. After Close or WriteEOF it fails
// (ALOOP_ECLOSED / ALOOP_EPIPE, inside a *net.OpError).
func (t *Transport) Write(p []byte) (int, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	if len(p) == 0 {
		return 0, nil
	}
	runtime.LockOSThread()
	rc := rawTransportWrite(t.handle(), unsafe.Pointer(unsafe.SliceData(p)), uintptr(len(p)))
	var err error
	if rc < 0 {
		err = lib.errorOf(rc)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return 0, t.wrapErr("write", err)
	}
	return len(p), nil
}

// WriteString is Write for a string.
func (t *Transport) WriteString(s string) (int, error) {
	return t.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// WriteLines writes the buffers in order, in one call (asyncio's
// writelines; net.Buffers' WriteTo for a transport). It returns the number
// of bytes queued.
func (t *Transport) WriteLines(bufs [][]byte) (int, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	iov := make([]cIovec, len(bufs))
	n := 0
	for i, b := range bufs {
		iov[i] = cIovec{base: unsafe.Pointer(unsafe.SliceData(b)), len: uintptr(len(b))}
		n += len(b)
	}
	_, err := do(func() int32 { return lib.transportWritev(t.handle(), unsafe.Pointer(&iov[0]), uintptr(len(iov))) })
	runtime.KeepAlive(bufs)
	if err != nil {
		return 0, t.wrapErr("write", err)
	}
	return n, nil
}

// Close flushes the write buffer, then closes; ConnectionLost(nil) follows.
// Idempotent.
func (t *Transport) Close() error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := t.call(lib.transportClose)
	return err
}

// Abort closes at once, dropping buffered data; ConnectionLost(nil) follows.
func (t *Transport) Abort() error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := t.call(lib.transportAbort)
	return err
}

// WriteEOF shuts down the write side once the buffer is flushed.
func (t *Transport) WriteEOF() error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := t.call(lib.transportWriteEof)
	return t.wrapErr("shutdown", err)
}

// CanWriteEOF reports whether WriteEOF is supported.
func (t *Transport) CanWriteEOF() bool {
	return lib != nil && t.boolCall(lib.transportCanWriteEof)
}

// IsClosing reports whether the transport is closing or closed.
func (t *Transport) IsClosing() bool {
	if lib == nil {
		return true
	}
	rc, err := t.call(lib.transportIsClosing)
	return err != nil || rc > 0
}

// PauseReading stops DataReceived calls until ResumeReading.
func (t *Transport) PauseReading() error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := t.call(lib.transportPauseReading)
	return err
}

// ResumeReading resumes DataReceived calls.
func (t *Transport) ResumeReading() error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := t.call(lib.transportResumeReading)
	return err
}

// IsReading reports whether the transport is reading (not paused, not
// closing).
func (t *Transport) IsReading() bool {
	return lib != nil && t.boolCall(lib.transportIsReading)
}

// WriteBufferSize returns the number of bytes buffered for sending.
func (t *Transport) WriteBufferSize() (int, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	var n uintptr
	_, err := t.call(func(h uintptr) int32 { return lib.transportGetWriteBufferSize(h, &n) })
	return int(n), err
}

// SetWriteBufferLimits sets the high and low water marks (both 0 selects
// the defaults, 64 KiB and 16 KiB); low must not exceed high.
func (t *Transport) SetWriteBufferLimits(high, low int) error {
	if lib == nil {
		return ErrBadHandle
	}
	if high < 0 || low < 0 {
		return errInvalid("negative write buffer limit")
	}
	_, err := t.call(func(h uintptr) int32 { return lib.transportSetWriteBufferLimits(h, uintptr(high), uintptr(low)) })
	return err
}

// WriteBufferLimits returns the high and low water marks.
func (t *Transport) WriteBufferLimits() (high, low int, err error) {
	if lib == nil {
		return 0, 0, ErrBadHandle
	}
	var h, l uintptr
	_, err = t.call(func(th uintptr) int32 { return lib.transportGetWriteBufferLimits(th, &h, &l) })
	return int(h), int(l), err
}

// Fd returns the socket's or pipe's file descriptor (owned by the
// transport; get_extra_info("socket") / ("pipe")).
func (t *Transport) Fd() (int, error) {
	if lib == nil {
		return -1, ErrBadHandle
	}
	rc, err := t.call(lib.transportGetFd)
	if err != nil {
		return -1, err
	}
	return int(rc), nil
}

// PeerName returns the peer's numeric host and port (a Unix socket's path
// and 0).
func (t *Transport) PeerName() (host string, port int, err error) {
	if lib == nil {
		return "", 0, ErrBadHandle
	}
	return sockname(func(buf unsafe.Pointer, n uintptr, p *int32) int32 {
		return lib.transportGetPeername(t.handle(), buf, n, p)
	})
}

// SockName returns the local numeric host and port.
func (t *Transport) SockName() (host string, port int, err error) {
	if lib == nil {
		return "", 0, ErrBadHandle
	}
	return sockname(func(buf unsafe.Pointer, n uintptr, p *int32) int32 {
		return lib.transportGetSockname(t.handle(), buf, n, p)
	})
}

// RemoteAddr returns the peer's address (get_extra_info("peername")): a
// *net.TCPAddr or *net.UnixAddr; nil for a pipe or when unknown.
func (t *Transport) RemoteAddr() net.Addr {
	if t == nil || lib == nil {
		return nil
	}
	if t.remote == nil && t.network != "pipe" {
		if host, port, err := t.PeerName(); err == nil {
			t.remote = makeAddr(t.networkOr(), host, port)
		}
	}
	return t.remote
}

// LocalAddr returns the local address (get_extra_info("sockname")).
func (t *Transport) LocalAddr() net.Addr {
	if t == nil || lib == nil {
		return nil
	}
	if t.local == nil && t.network != "pipe" {
		if host, port, err := t.SockName(); err == nil {
			t.local = makeAddr(t.networkOr(), host, port)
		}
	}
	return t.local
}

func (t *Transport) networkOr() string {
	if t.network == "" {
		return "tcp"
	}
	return t.network
}

// SetProtocol replaces the transport's protocol (asyncio's
// transport.set_protocol); events go to p from now on.
func (t *Transport) SetProtocol(p Protocol) error {
	if lib == nil {
		return ErrBadHandle
	}
	if p == nil {
		return errInvalid("nil protocol")
	}
	c := newConn(t.loop, p, t.network)
	c.transport = t
	key := reg.add(c)
	_, err := do(func() int32 {
		return lib.transportSetProtocol(t.handle(), unsafe.Pointer(c.cproto()), key, cb.free)
	})
	if err == nil {
		t.conn = c
	}
	return err
}

// Sendfile sends count bytes (0: up to the end) of f from offset over the
// transport (asyncio's loop.sendfile): zero-copy with sendfile(2) where
// possible, else, with fallback, by reading the file; without fallback a
// file that cannot be sent so fails with ENOSYS. Writes wait (ALOOP_EBUSY)
// and reading is paused until the future is done; f's offset is set to
// offset + the bytes sent. The future's result is the number of bytes
// sent. f must stay open until the future is done.
func (t *Transport) Sendfile(ctx context.Context, f *os.File, offset, count int64, fallback bool) (*Future[int64], error) {
	if lib == nil || t == nil {
		return nil, ErrBadHandle
	}
	if f == nil {
		return nil, errInvalid("nil file")
	}
	fut, err := newOpFuture(t.loop, ctx, func(err error) error { return t.wrapErr("sendfile", err) }, resultInt64,
		func(out *uintptr) int32 {
			return lib.transportSendfile(t.handle(), int32(f.Fd()), offset, count, int32(b2i(fallback)), out)
		})
	if fut != nil {
		fut.st.keep = f
	}
	return fut, err
}

func resultSize(h uintptr) (int, error) {
	var n uintptr
	_, err := do(func() int32 { return lib.futureResultSize(h, &n) })
	return int(n), err
}

func resultInt64(h uintptr) (int64, error) {
	n, err := resultSize(h)
	return int64(n), err
}
