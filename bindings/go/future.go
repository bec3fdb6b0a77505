package asyncloop

import (
	"context"
	"runtime"
	"unsafe"
)

// Future is an asyncloop future (asyncio.Future) whose result is a T: the
// operations of the library return typed futures (*Future[*Transport] from
// CreateConnection, *Future[[]byte] from SockRecv, ...), and NewFuture
// makes one for any Go value.
//
// Lifetime: nothing to release. The binding holds the library's future
// while it is pending and releases it as soon as it is done, keeping the
// result (or error) in Go; a future of NewFuture that is dropped while
// still pending is released by a cleanup once the garbage collector finds
// it unreachable.
//
// Its methods must be called on the loop's thread (from a callback, or
// from the goroutine that owns the loop while it is not running).
type Future[T any] struct {
	st  futureState
	val T
	// get reads the result of a library operation from the library's
	// future (on the loop thread, with the OS thread locked).
	get func(h uintptr) (T, error)
}

// Awaitable is a future of any result type: what RunUntilComplete takes.
// Every *Future[T] is one.
type Awaitable interface {
	state() *futureState
	ensureSettled()
}

// CallbackID identifies a done-callback (Go functions cannot be compared,
// so RemoveDoneCallback takes the ID AddDoneCallback returned).
type CallbackID uintptr

// futureState is the part of a future that does not depend on T.
type futureState struct {
	h         uintptr // the library's future while pending; 0 once released
	loop      *Loop
	settled   bool // done; result or error kept in Go, h released
	cancelled bool
	hostSet   bool // SetResult/SetException set it
	err       error
	goErr     error             // SetException's error, returned unchanged
	wrap      func(error) error // the operation's error wrapper (*net.OpError, ...)
	ctxErr    error             // the context's error when the context cancelled it
	stopCtx   func() bool       // stops watching the context
	pinner    runtime.Pinner    // pins a caller's buffer the library writes into until done (cmem.go)
	keep      any               // that buffer
	cleanup   runtime.Cleanup
	hasClean  bool
}

func (f *Future[T]) state() *futureState { return &f.st }

// NewFuture creates a future on the loop (asyncio's loop.create_future).
func NewFuture[T any](l *Loop) (*Future[T], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	f := &Future[T]{st: futureState{loop: l}}
	runtime.LockOSThread()
	err := lib.errorOf(lib.futureNew(l.handle(), &f.st.h))
	runtime.UnlockOSThread()
	if err != nil {
		return nil, err
	}
	// Safety net: a pending future dropped by its owner is released on the
	// loop's thread.
	f.st.cleanup = runtime.AddCleanup(f, releaseDropped, droppedFuture{l, f.st.h})
	f.st.hasClean = true
	return f, nil
}

// NewFuture creates a future of any value (asyncio's create_future); see
// the package function NewFuture for a typed one.
func (l *Loop) NewFuture() (*Future[any], error) { return NewFuture[any](l) }

type droppedFuture struct {
	loop *Loop
	h    uintptr
}

func releaseDropped(d droppedFuture) {
	d.loop.CallSoonThreadsafe(func() {
		runtime.LockOSThread()
		lib.futureFree(d.h)
		runtime.UnlockOSThread()
	})
}

// newOpFuture makes the future of a library operation: call fills in the
// library's future (f.st.h); then the binding adds its own done-callback
// (first, so it runs before the user's) that settles it, and watches ctx.
func newOpFuture[T any](l *Loop, ctx context.Context, wrap func(error) error,
	get func(uintptr) (T, error), call func(out *uintptr) int32) (*Future[T], error) {
	return newOpFutureInto(l, ctx, wrap, get, nil, call)
}

// newOpFutureInto is newOpFuture for an operation that writes into buf
// until it is done or cancelled (sock_recv_into, sock_recvfrom_into): buf
// is pinned before the library gets it (cmem.go) and unpinned when the
// future settles (or at once if the call fails).
func newOpFutureInto[T any](l *Loop, ctx context.Context, wrap func(error) error,
	get func(uintptr) (T, error), buf []byte, call func(out *uintptr) int32) (*Future[T], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			if wrap != nil {
				return nil, wrap(ctxError(err))
			}
			return nil, ctxError(err)
		}
	}
	f := &Future[T]{st: futureState{loop: l, wrap: wrap}, get: get}
	if len(buf) > 0 {
		f.st.pinner.Pin(unsafe.SliceData(buf))
		f.st.keep = buf
	}
	runtime.LockOSThread()
	rc := call(&f.st.h)
	err := lib.errorOf(rc)
	if err == nil {
		key := reg.add(&settleEntry{f: f, loop: l})
		if e := lib.errorOf(lib.futureAddDoneCallback(f.st.h, cb.future, key, cb.free)); e != nil {
			reg.del(key)
		}
	}
	runtime.UnlockOSThread()
	if err != nil {
		f.st.release() // the library did not take buf
		if wrap != nil {
			err = wrap(err)
		}
		return nil, err
	}
	f.watch(ctx)
	return f, nil
}

// watch cancels the future (on the loop's thread) when ctx is done.
func (f *Future[T]) watch(ctx context.Context) {
	if ctx == nil || ctx.Done() == nil {
		return
	}
	l := f.st.loop
	f.st.stopCtx = context.AfterFunc(ctx, func() {
		l.CallSoonThreadsafe(func() {
			if f.st.settled || f.st.h == 0 {
				return
			}
			f.st.ctxErr = ctx.Err()
			runtime.LockOSThread()
			cancelled := lib.futureCancel(f.st.h) == 1
			runtime.UnlockOSThread()
			if cancelled {
				f.ensureSettled()
			}
		})
	})
}

// settleEntry is the userdata of the binding's own done-callback.
type settleEntry struct {
	f    Awaitable
	loop *Loop
}

func (e *settleEntry) owner() *Loop { return e.loop }
func (e *settleEntry) runDone()     { e.f.ensureSettled() }

// ensureSettled reads the result of a done future into Go and releases the
// library's future. It does nothing while the future is pending.
func (f *Future[T]) ensureSettled() {
	st := &f.st
	if st.settled || st.h == 0 || lib == nil {
		return
	}
	h := st.h
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if lib.futureDone(h) != 1 {
		return
	}
	var err error
	rc := lib.futureException(h)
	switch {
	case rc == 0:
		if !st.hostSet && f.get != nil {
			f.val, err = f.get(h)
			if err != nil && st.wrap != nil {
				err = st.wrap(err)
			}
		}
	case rc == ECANCELED && lib.futureCancelled(h) == 1:
		st.cancelled = true
		if st.ctxErr != nil {
			err = ctxError(st.ctxErr)
		} else {
			err = newError(ECANCELED, "the future was cancelled")
		}
		if st.wrap != nil {
			err = st.wrap(err)
		}
	case st.goErr != nil:
		err = st.goErr
	default:
		err = newError(int(rc), futureMessage(h))
		if st.wrap != nil {
			err = st.wrap(err)
		}
	}
	lib.futureFree(h)
	st.h = 0
	st.err = err
	st.settled = true
	st.release()
}

func (st *futureState) release() {
	if st.stopCtx != nil {
		st.stopCtx()
		st.stopCtx = nil
	}
	st.pinner.Unpin()
	st.keep = nil
	if st.hasClean {
		st.cleanup.Stop()
		st.hasClean = false
	}
}

func futureMessage(h uintptr) string {
	var buf [512]byte
	n := lib.futureErrorMessage(h, unsafe.Pointer(&buf[0]), uintptr(len(buf)))
	if n <= 0 {
		return ""
	}
	if int(n) >= len(buf) {
		big := make([]byte, n+1)
		n = lib.futureErrorMessage(h, unsafe.Pointer(&big[0]), uintptr(len(big)))
		if n <= 0 {
			return ""
		}
		return string(big[:min(int(n), len(big)-1)])
	}
	return string(buf[:n])
}

// Loop returns the future's loop.
func (f *Future[T]) Loop() *Loop {
	if f == nil {
		return nil
	}
	return f.st.loop
}

// Done reports whether the future is done (result, error or cancelled).
func (f *Future[T]) Done() bool {
	if f == nil || lib == nil {
		return false
	}
	if f.st.settled {
		return true
	}
	runtime.LockOSThread()
	done := lib.futureDone(f.st.h) == 1
	runtime.UnlockOSThread()
	return done
}

// Cancelled reports whether the future was cancelled.
func (f *Future[T]) Cancelled() bool {
	if f == nil || lib == nil {
		return false
	}
	if f.st.settled {
		return f.st.cancelled
	}
	runtime.LockOSThread()
	c := lib.futureCancelled(f.st.h) == 1
	runtime.UnlockOSThread()
	return c
}

// Cancel cancels the future (and the operation behind it); it reports
// false if the future was already done.
func (f *Future[T]) Cancel() bool {
	if f == nil || lib == nil || f.st.settled {
		return false
	}
	runtime.LockOSThread()
	c := lib.futureCancel(f.st.h) == 1
	runtime.UnlockOSThread()
	if c {
		f.ensureSettled()
	}
	return c
}

// SetResult marks the future done with v (ErrState if already done).
func (f *Future[T]) SetResult(v T) error {
	if err := f.checkSet(); err != nil {
		return err
	}
	runtime.LockOSThread()
	err := lib.errorOf(lib.futureSetResult(f.st.h, 0))
	runtime.UnlockOSThread()
	if err != nil {
		return err
	}
	f.val = v
	f.st.hostSet = true
	f.ensureSettled()
	return nil
}

// SetException marks the future failed with err (ErrState if already
// done): Err and Result return err itself. The library keeps err's code
// (ALOOP_EUNKNOWN for an error that has none) and text, for C readers of
// the same future.
func (f *Future[T]) SetException(err error) error {
	if err == nil {
		return errInvalid("nil error")
	}
	if e := f.checkSet(); e != nil {
		return e
	}
	code := int32(codeOf(err))
	msg := cString(err.Error())
	runtime.LockOSThread()
	e := lib.errorOf(lib.futureSetException(f.st.h, code, msg))
	runtime.UnlockOSThread()
	if e != nil {
		return e
	}
	f.st.goErr = err
	f.st.hostSet = true
	f.ensureSettled()
	return nil
}

func (f *Future[T]) checkSet() error {
	if f == nil || lib == nil {
		return ErrBadHandle
	}
	if f.st.settled {
		return newError(ESTATE, "the future is already done")
	}
	return nil
}

// Err returns nil if the future succeeded, its error if it failed, an
// error that is ErrCanceled (and context.Canceled) if it was cancelled, or
// the context's error (context.DeadlineExceeded, context.Canceled) if the
// operation's context cancelled it; ErrState if it is not done (asyncio's
// exception()).
func (f *Future[T]) Err() error {
	_, err := f.Result()
	return err
}

// Result returns the future's value, or its error (see Err).
func (f *Future[T]) Result() (T, error) {
	var zero T
	if f == nil || lib == nil {
		return zero, ErrBadHandle
	}
	f.ensureSettled()
	if !f.st.settled {
		if f.st.h == 0 {
			return zero, newError(EBADF, "zero Future")
		}
		runtime.LockOSThread()
		err := lib.errorOf(lib.futureDone(f.st.h))
		runtime.UnlockOSThread()
		if err != nil {
			return zero, err
		}
		return zero, newError(ESTATE, "the future is not done")
	}
	if f.st.err != nil {
		return zero, f.st.err
	}
	return f.val, nil
}

type doneEntry[T any] struct {
	f  *Future[T]
	fn func(*Future[T])
}

func (e *doneEntry[T]) owner() *Loop { return e.f.st.loop }
func (e *doneEntry[T]) runDone() {
	e.f.ensureSettled()
	e.fn(e.f)
}

// AddDoneCallback calls fn(f) on the loop thread once the future is done
// (scheduled with call_soon, as asyncio; at once if it is done already).
// The ID removes it again (RemoveDoneCallback); a callback added to a done
// future is already scheduled and has ID 0.
func (f *Future[T]) AddDoneCallback(fn func(*Future[T])) (CallbackID, error) {
	if f == nil || lib == nil {
		return 0, ErrBadHandle
	}
	if fn == nil {
		return 0, errInvalid("nil func")
	}
	if f.st.settled {
		_, err := f.st.loop.CallSoon(func() { fn(f) })
		return 0, err
	}
	key := reg.add(&doneEntry[T]{f: f, fn: fn})
	runtime.LockOSThread()
	err := lib.errorOf(lib.futureAddDoneCallback(f.st.h, cb.future, key, cb.free))
	runtime.UnlockOSThread()
	if err != nil {
		return 0, err
	}
	return CallbackID(key), nil
}

// RemoveDoneCallback removes the done-callback with this ID if it is still
// pending; it returns how many were removed (0 or 1), as asyncio.
func (f *Future[T]) RemoveDoneCallback(id CallbackID) int {
	if f == nil || lib == nil || f.st.settled || id == 0 {
		return 0
	}
	runtime.LockOSThread()
	n := lib.futureRemoveDoneCallback(f.st.h, cb.future, uintptr(id))
	runtime.UnlockOSThread()
	if n < 0 {
		return 0
	}
	return int(n)
}
