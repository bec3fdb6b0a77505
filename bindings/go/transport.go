package asyncloop

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Transport is a stream connection (asyncio.Transport). Its methods must be
// called on the loop's thread (from a callback, or from the goroutine that
// runs the loop while it is not running). After ConnectionLost it is stale:
// methods return an error (ALOOP_EBADF) and never crash.
type Transport struct {
	h    uintptr
	loop *Loop
	conn *conn
	lost atomic.Bool
}

// Loop returns the transport's loop.
func (t *Transport) Loop() *Loop {
	if t == nil {
		return nil
	}
	return t.loop
}

// Protocol returns the transport's current protocol.
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
	runtime.LockOSThread()
	rc := f(t.handle())
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	return rc, err
}

func (t *Transport) boolCall(f func(uintptr) int32) bool {
	rc, err := t.call(f)
	return err == nil && rc > 0
}

// Write queues p for sending (the library copies it; it never blocks) and
// returns len(p). It implements io.Writer. After Close or WriteEOF it fails
// with ALOOP_ECLOSED / ALOOP_EPIPE.
func (t *Transport) Write(p []byte) (int, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	if len(p) == 0 {
		return 0, nil
	}
	runtime.LockOSThread()
	rc := rawTransportWrite(t.handle(), unsafe.Pointer(unsafe.SliceData(p)), uintptr(len(p)))
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteString is Write for a string.
func (t *Transport) WriteString(s string) (int, error) {
	return t.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
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
	return err
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
	runtime.LockOSThread()
	err := lib.errorOf(lib.transportGetWriteBufferSize(t.handle(), &n))
	runtime.UnlockOSThread()
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
	runtime.LockOSThread()
	err := lib.errorOf(lib.transportSetWriteBufferLimits(t.handle(), uintptr(high), uintptr(low)))
	runtime.UnlockOSThread()
	return err
}

// WriteBufferLimits returns the high and low water marks.
func (t *Transport) WriteBufferLimits() (high, low int, err error) {
	if lib == nil {
		return 0, 0, ErrBadHandle
	}
	var h, l uintptr
	runtime.LockOSThread()
	err = lib.errorOf(lib.transportGetWriteBufferLimits(t.handle(), &h, &l))
	runtime.UnlockOSThread()
	return int(h), int(l), err
}

// Fd returns the socket's file descriptor (owned by the transport).
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

// PeerName returns the peer's numeric host and port.
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

func sockname(f func(buf unsafe.Pointer, n uintptr, port *int32) int32) (string, int, error) {
	var buf [256]byte
	var port int32
	runtime.LockOSThread()
	rc := f(unsafe.Pointer(&buf[0]), uintptr(len(buf)), &port)
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	if err != nil {
		return "", 0, err
	}
	return goString(&buf[0]), int(port), nil
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
	c := newConn(t.loop, p)
	c.transport = t
	key := reg.add(c)
	runtime.LockOSThread()
	err := lib.errorOf(lib.transportSetProtocol(t.handle(), unsafe.Pointer(c.cproto()), key, cb.free))
	runtime.UnlockOSThread()
	if err == nil {
		t.conn = c
	}
	return err
}
