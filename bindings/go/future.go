package asyncloop

import (
	"errors"
	"runtime"
	"sync/atomic"
	"unsafe"
)

func asError(err error, target **Error) bool { return errors.As(err, target) }

// Future is an asyncloop future (asyncio.Future). Futures of the library's
// operations resolve to a *Transport (CreateConnection) or a *Server
// (CreateServer); futures made with NewFuture hold any Go value.
//
// The caller owns every Future it receives and releases it with Release
// (done-callbacks already added still run). Its methods must be called on
// the loop's thread.
type Future struct {
	h        uintptr
	loop     *Loop
	released atomic.Bool

	value any   // SetResult's value (host futures)
	goErr error // SetException's error, kept to return it unchanged

	transport *Transport // for CreateConnection futures
	server    *Server    // for CreateServer futures
}

// NewFuture creates a future on the loop (asyncio's loop.create_future).
func (l *Loop) NewFuture() (*Future, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	f := &Future{loop: l}
	runtime.LockOSThread()
	err := lib.errorOf(lib.futureNew(l.handle(), &f.h))
	runtime.UnlockOSThread()
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Future) handle() uintptr {
	if f == nil || f.released.Load() {
		return 0
	}
	return f.h
}

// Loop returns the future's loop.
func (f *Future) Loop() *Loop {
	if f == nil {
		return nil
	}
	return f.loop
}

func (f *Future) call(fn func(uintptr) int32) (int32, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	runtime.LockOSThread()
	rc := fn(f.handle())
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	return rc, err
}

// Done reports whether the future is done (result, error or cancelled).
func (f *Future) Done() bool {
	if lib == nil {
		return false
	}
	rc, err := f.call(lib.futureDone)
	return err == nil && rc > 0
}

// Cancelled reports whether the future was cancelled.
func (f *Future) Cancelled() bool {
	if lib == nil {
		return false
	}
	rc, err := f.call(lib.futureCancelled)
	return err == nil && rc > 0
}

// Cancel cancels the future; it reports false if it was already done.
func (f *Future) Cancel() bool {
	if lib == nil {
		return false
	}
	rc, err := f.call(lib.futureCancel)
	return err == nil && rc > 0
}

// SetResult marks the future done with v (ErrState if already done).
func (f *Future) SetResult(v any) error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := f.call(func(h uintptr) int32 { return lib.futureSetResult(h, 0) })
	if err == nil {
		f.value = v
	}
	return err
}

// SetException marks the future failed with err (ErrState if already
// done). An *Error or syscall.Errno keeps its code in the library; any
// other error is stored as ALOOP_EUNKNOWN with its text, and Result returns
// err itself.
func (f *Future) SetException(err error) error {
	if lib == nil {
		return ErrBadHandle
	}
	if err == nil {
		return errInvalid("nil error")
	}
	code := int32(codeOf(err))
	msg := err.Error()
	_, e := f.call(func(h uintptr) int32 { return lib.futureSetException(h, code, cString(msg)) })
	if e == nil {
		f.goErr = err
	}
	return e
}

// Err returns nil if the future succeeded, its error if it failed,
// ErrCanceled if it was cancelled, ErrState if it is not done
// (asyncio's exception()).
func (f *Future) Err() error {
	if lib == nil || f == nil {
		return ErrBadHandle
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := lib.futureException(f.handle())
	if rc == 0 {
		return nil
	}
	if rc == ECANCELED && lib.futureCancelled(f.handle()) == 1 {
		return newError(ECANCELED, "the future was cancelled")
	}
	if rc == ESTATE && lib.futureDone(f.handle()) == 0 {
		return newError(ESTATE, "the future is not done")
	}
	if rc == EBADF && f.handle() == 0 {
		return lib.errorOf(rc)
	}
	if f.goErr != nil {
		return f.goErr
	}
	return newError(int(rc), f.errorMessage())
}

func (f *Future) errorMessage() string {
	var buf [512]byte
	n := lib.futureErrorMessage(f.handle(), unsafe.Pointer(&buf[0]), uintptr(len(buf)))
	if n <= 0 {
		return ""
	}
	if int(n) >= len(buf) {
		big := make([]byte, n+1)
		n = lib.futureErrorMessage(f.handle(), unsafe.Pointer(&big[0]), uintptr(len(big)))
		if n <= 0 {
			return ""
		}
		return string(big[:min(int(n), len(big)-1)])
	}
	return string(buf[:n])
}

// Result returns the future's value, or its error (see Err). The value of
// a CreateConnection future is its *Transport, of a CreateServer future its
// *Server.
func (f *Future) Result() (any, error) {
	if err := f.Err(); err != nil {
		return nil, err
	}
	switch {
	case f.transport != nil:
		return f.Transport()
	case f.server != nil:
		return f.Server()
	}
	return f.value, nil
}

// Transport returns the *Transport of a CreateConnection future.
func (f *Future) Transport() (*Transport, error) {
	if lib == nil || f == nil {
		return nil, ErrBadHandle
	}
	var th uintptr
	runtime.LockOSThread()
	err := lib.errorOf(lib.futureResultTransport(f.handle(), &th))
	runtime.UnlockOSThread()
	if err != nil {
		if f.goErr != nil {
			return nil, f.goErr
		}
		return nil, f.enrich(err)
	}
	if f.transport != nil && (f.transport.h == 0 || f.transport.h == th) {
		f.transport.h = th
		return f.transport, nil
	}
	if f.loop != nil {
		if t := f.loop.transports[th]; t != nil {
			return t, nil
		}
	}
	return &Transport{h: th, loop: f.loop}, nil
}

// Server returns the *Server of a CreateServer future.
func (f *Future) Server() (*Server, error) {
	if lib == nil || f == nil {
		return nil, ErrBadHandle
	}
	var sh uintptr
	runtime.LockOSThread()
	err := lib.errorOf(lib.futureResultServer(f.handle(), &sh))
	runtime.UnlockOSThread()
	if err != nil {
		return nil, f.enrich(err)
	}
	if f.server != nil {
		if f.server.h == 0 {
			f.server.h = sh
			f.loop.servers[sh] = f.server
		}
		return f.server, nil
	}
	if f.loop != nil {
		if s := f.loop.servers[sh]; s != nil {
			return s, nil
		}
	}
	return &Server{h: sh, loop: f.loop}, nil
}

// enrich adds the future's failure message to an error read from it.
func (f *Future) enrich(err error) error {
	e, ok := err.(*Error)
	if !ok || e.Code == EBADF || e.Code == ESTATE || e.Code == EINVAL {
		return err
	}
	runtime.LockOSThread()
	msg := f.errorMessage()
	runtime.UnlockOSThread()
	if msg != "" {
		return newError(e.Code, msg)
	}
	return err
}

// AddDoneCallback calls fn(f) on the loop thread once the future is done
// (scheduled with call_soon, as asyncio).
func (f *Future) AddDoneCallback(fn func(*Future)) error {
	if lib == nil {
		return ErrBadHandle
	}
	if fn == nil {
		return errInvalid("nil func")
	}
	key := reg.add(&doneEntry{fut: f, fn: fn})
	runtime.LockOSThread()
	err := lib.errorOf(lib.futureAddDoneCallback(f.handle(), cb.future, key, cb.free))
	runtime.UnlockOSThread()
	return err
}

// Release releases the caller's reference to the future. Idempotent.
func (f *Future) Release() error {
	if lib == nil {
		return ErrBadHandle
	}
	if f == nil || f.released.Swap(true) {
		return nil
	}
	runtime.LockOSThread()
	err := lib.errorOf(lib.futureFree(f.h))
	runtime.UnlockOSThread()
	return err
}
