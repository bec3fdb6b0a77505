package asyncloop

import (
	"context"
	"runtime"
)

// Foreign libraries (docs/interop.md): a library written against
// include/asyncloop.h (a database driver, a protocol stack) creates its own
// transports, servers, timers and futures on a loop it is given, and returns
// C futures. CHandle gives it this loop; WrapFuture turns its futures into
// Go futures.

// CHandle returns the C handle of the loop (its aloop_loop_t *) for a
// library written against include/asyncloop.h, loaded into this process
// (with purego, as this package loads libasyncloop; it must resolve to the
// same libasyncloop.so.0: one Go runtime of the library per process). Call
// the library on the loop's thread (from a callback, or from the goroutine
// that owns the loop while it is not running): its callbacks then run on
// that thread, inside the loop's iterations. Close what it made on the loop
// before closing the loop. ErrClosed once the loop is closed.
func (l *Loop) CHandle() (uintptr, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	if l.handle() == 0 { // a zero or nil Loop: not made by NewLoop
		return 0, ErrBadHandle
	}
	return l.handle(), nil
}

// WrapFuture wraps a C future of this loop (an aloop_future_t * a foreign
// library returned) as a *Future[T]: read picks the result out of the C
// future once it succeeded (on the loop's thread, while the handle is
// valid; read nil gives the zero T).
//
// Ownership: the Go future takes over the caller's reference to the C future
// and frees it as soon as it is done (its outcome is then kept in Go); the
// library keeps its own reference to resolve it (see "References" in
// include/asyncloop.h), so neither side is left with a dangling handle. On
// error (a stale or NULL handle: ErrBadHandle) the reference is not taken.
//
// When ctx is done first, the C future is cancelled (the library sees
// aloop_future_cancelled) and Result returns ctx's error. A failed C future
// gives an *Error with the library's code and message.
func WrapFuture[T any](l *Loop, ctx context.Context, future uintptr,
	read func(future uintptr) (T, error)) (*Future[T], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if l.handle() == 0 {
		return nil, ErrBadHandle
	}
	if future == 0 {
		return nil, newError(EBADF, "WrapFuture: NULL future")
	}
	runtime.LockOSThread()
	rc := lib.futureDone(future)
	runtime.UnlockOSThread()
	if rc < 0 {
		return nil, lib.errorOf(rc)
	}
	get := read
	if get == nil {
		get = func(uintptr) (T, error) { var zero T; return zero, nil }
	}
	return newOpFuture(l, ctx, nil, get, func(out *uintptr) int32 {
		*out = future
		return 0
	})
}

// WrapFuture wraps a C future whose result is a pointer-sized value
// (aloop_future_result): the Go future's result is that value. See the
// package function WrapFuture for the ownership and a typed result.
func (l *Loop) WrapFuture(ctx context.Context, future uintptr) (*Future[uintptr], error) {
	return WrapFuture(l, ctx, future, FutureResultPointer)
}

// FutureResultPointer reads the pointer-sized result of a done C future
// (aloop_future_result), for WrapFuture's read.
func FutureResultPointer(future uintptr) (uintptr, error) {
	var v uintptr
	if err := lib.errorOf(lib.futureResult(future, &v)); err != nil {
		return 0, err
	}
	return v, nil
}
