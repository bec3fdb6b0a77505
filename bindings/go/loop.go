package asyncloop

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RunMode is aloop_run_mode_t.
type RunMode int32

const (
	// RunModeDefault runs until Stop (asyncio's run_forever).
	RunModeDefault RunMode = 0
	// RunModeOnce runs one iteration, waiting for I/O if nothing is ready.
	RunModeOnce RunMode = 1
	// RunModeNoWait runs one iteration without waiting.
	RunModeNoWait RunMode = 2
)

// Loop is an asyncloop event loop (asyncio's event loop).
//
// Threading: a loop is driven by one goroutine at a time, the one inside
// RunForever / RunUntilComplete / Run / RunOnce, which locks itself to its
// OS thread (runtime.LockOSThread) for the duration of the call. Every
// callback (CallSoon functions, timers, done-callbacks, Protocol methods,
// reader/writer functions, the exception handler) runs on that thread,
// inside that call, one at a time. Everything else must be called from a
// callback or from the goroutine that owns the loop while it is not
// running, except the THREAD-SAFE methods: CallSoonThreadsafe, Stop and
// Wakeup. In debug mode (SetDebug) the library checks the thread: call
// runtime.LockOSThread in the goroutine that owns the loop so that setup
// code and the run calls happen on the same thread.
//
// A panic inside a callback is recovered on the loop thread, the loop is
// stopped, and the run call panics with a *PanicError after it returns.
// Do not call runtime.Goexit (t.FailNow, t.Fatal) inside a callback.
type Loop struct {
	h      uintptr
	closed atomic.Bool

	panicMu sync.Mutex
	panicV  *PanicError

	// Go wrappers of the loop's live transports and servers, by handle;
	// used on the loop thread only.
	transports map[uintptr]*Transport
	servers    map[uintptr]*Server
}

// NewLoop loads the library if needed (see Load) and creates a loop.
func NewLoop() (*Loop, error) {
	if err := ensureLoaded(); err != nil {
		return nil, err
	}
	var h uintptr
	runtime.LockOSThread()
	err := lib.errorOf(lib.loopNew(&h))
	runtime.UnlockOSThread()
	if err != nil {
		return nil, err
	}
	return &Loop{h: h, transports: map[uintptr]*Transport{}, servers: map[uintptr]*Server{}}, nil
}

func (l *Loop) handle() uintptr {
	if l == nil {
		return 0
	}
	return l.h
}

// check returns ErrClosed for a loop closed with Close (its handle is
// released) and ErrBadHandle when no library is loaded.
func (l *Loop) check() error {
	if lib == nil {
		return ErrBadHandle
	}
	if l != nil && l.closed.Load() {
		return ErrClosed
	}
	return nil
}

func (l *Loop) call(f func(uintptr) int32) (int32, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	runtime.LockOSThread()
	rc := f(l.handle())
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	return rc, err
}

func (l *Loop) storePanic(v any, stack []byte) {
	l.panicMu.Lock()
	first := l.panicV == nil
	if first {
		l.panicV = &PanicError{Value: v, Stack: stack}
	}
	l.panicMu.Unlock()
	if first && lib != nil {
		lib.loopStop(l.handle())
	}
}

// rethrow re-panics, on the goroutine that ran the loop, with a panic
// recovered in a callback.
func (l *Loop) rethrow() {
	if l == nil {
		return
	}
	l.panicMu.Lock()
	p := l.panicV
	l.panicV = nil
	l.panicMu.Unlock()
	if p != nil {
		panic(p)
	}
}

// Run runs the loop in the given mode on the calling goroutine's thread.
func (l *Loop) Run(mode RunMode) error {
	if err := l.check(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := lib.loopRun(l.handle(), int32(mode))
	err := lib.errorOf(rc)
	l.rethrow()
	return err
}

// RunForever runs the loop until Stop is called (asyncio's run_forever).
// It returns after the iteration in which Stop was called; a Stop before
// RunForever makes it run one iteration.
func (l *Loop) RunForever() error { return l.Run(RunModeDefault) }

// RunOnce runs one iteration, waiting at most timeout for I/O when no
// callback is ready (timeout < 0: until the next timer or I/O).
func (l *Loop) RunOnce(timeout time.Duration) error {
	if err := l.check(); err != nil {
		return err
	}
	secs := timeout.Seconds()
	if timeout < 0 {
		secs = -1
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := lib.loopRunOnce(l.handle(), secs)
	err := lib.errorOf(rc)
	l.rethrow()
	return err
}

// RunUntilComplete runs the loop until f is done (asyncio's
// run_until_complete). It returns the future's error (nil when it
// succeeded; read the value with f.Result), ErrStopped if the loop was
// stopped first, or the run's error.
func (l *Loop) RunUntilComplete(f *Future) error {
	if err := l.check(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := lib.loopRunUntilComplete(l.handle(), f.handle())
	err := lib.errorOf(rc)
	l.rethrow()
	if err != nil {
		return err
	}
	return f.Err()
}

// Stop stops a RunForever after the current iteration. THREAD-SAFE.
func (l *Loop) Stop() error {
	_, err := l.call(func(h uintptr) int32 { return lib.loopStop(h) })
	return err
}

// Wakeup wakes a waiting loop. THREAD-SAFE.
func (l *Loop) Wakeup() error {
	_, err := l.call(func(h uintptr) int32 { return lib.loopWakeup(h) })
	return err
}

// Close closes the loop and releases it: pending callbacks are dropped and
// later calls fail with ErrClosed. It fails with ALOOP_EBUSY (and the loop
// stays usable) while the loop runs or has live transports, servers or fd
// watchers. Closing a closed loop returns nil.
func (l *Loop) Close() error {
	if lib == nil {
		return ErrBadHandle
	}
	if l == nil || l.closed.Load() {
		return nil
	}
	runtime.LockOSThread()
	err := lib.errorOf(lib.loopClose(l.h))
	if err == nil {
		l.closed.Store(true)
		err = lib.errorOf(lib.loopFree(l.h))
	}
	runtime.UnlockOSThread()
	if l.closed.Load() {
		// Nothing of this loop can be called any more: drop what the
		// library did not release (see owned).
		reg.sweep(func(v any) bool {
			o, ok := v.(owned)
			return ok && o.owner() == l
		})
	}
	return err
}

// IsRunning reports whether the loop is running.
func (l *Loop) IsRunning() bool {
	rc, err := l.call(func(h uintptr) int32 { return lib.loopIsRunning(h) })
	return err == nil && rc > 0
}

// IsClosed reports whether the loop is closed.
func (l *Loop) IsClosed() bool {
	if l != nil && l.closed.Load() {
		return true
	}
	rc, err := l.call(func(h uintptr) int32 { return lib.loopIsClosed(h) })
	return err != nil || rc > 0
}

// Alive reports whether the loop has work that keeps it alive (ready
// callbacks, timers, transports, servers, fd watchers, pending operations).
func (l *Loop) Alive() bool {
	rc, err := l.call(func(h uintptr) int32 { return lib.loopAlive(h) })
	return err == nil && rc > 0
}

// Time returns the loop's monotonic clock in seconds (asyncio's
// loop.time(); CLOCK_MONOTONIC). On a closed loop it reads the same clock
// directly.
func (l *Loop) Time() float64 {
	if l.check() == nil {
		var t float64
		if rawLoopTime(l.handle(), &t) == 0 {
			return t
		}
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// SetDebug enables or disables debug mode (asyncio's set_debug).
func (l *Loop) SetDebug(enabled bool) error {
	v := int32(0)
	if enabled {
		v = 1
	}
	_, err := l.call(func(h uintptr) int32 { return lib.loopSetDebug(h, v) })
	return err
}

// Debug reports whether debug mode is on.
func (l *Loop) Debug() bool {
	rc, err := l.call(func(h uintptr) int32 { return lib.loopGetDebug(h) })
	return err == nil && rc > 0
}

// BackendFd returns an fd that is readable whenever the loop has I/O or
// thread-safe work to process (for embedding in another event loop).
func (l *Loop) BackendFd() (int, error) {
	rc, err := l.call(func(h uintptr) int32 { return lib.loopBackendFd(h) })
	return int(rc), err
}

// BackendTimeout returns how long until the loop must run again: 0 if
// callbacks are ready, the time to the next timer, or -1 if it only waits
// for I/O.
func (l *Loop) BackendTimeout() (time.Duration, error) {
	var ms int32
	_, err := l.call(func(h uintptr) int32 { return lib.loopBackendTimeout(h, &ms) })
	if err != nil {
		return 0, err
	}
	if ms < 0 {
		return -1, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Handle is a scheduled callback or timer (asyncio's Handle/TimerHandle).
type Handle struct {
	h        uintptr
	key      uintptr
	loop     *Loop
	finished atomic.Bool // ran or was cancelled: the C handle is stale
	cancel   atomic.Bool
}

// Cancel cancels the callback if it has not run yet. Cancelling a handle
// that already ran or was cancelled does nothing (as asyncio).
func (h *Handle) Cancel() error {
	if h == nil || lib == nil {
		return ErrBadHandle
	}
	if h.finished.Load() {
		return nil
	}
	runtime.LockOSThread()
	rc := lib.handleCancel(h.h)
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	if err == nil {
		h.cancel.Store(true)
		h.finished.Store(true)
		reg.del(h.key)
	}
	return err
}

// Cancelled reports whether Cancel cancelled the callback.
func (h *Handle) Cancelled() bool { return h != nil && h.cancel.Load() }

// When returns a timer's deadline in loop time (ALOOP_EINVAL for a
// CallSoon handle, ALOOP_EBADF once it ran or was cancelled).
func (h *Handle) When() (float64, error) {
	if h == nil || lib == nil {
		return 0, ErrBadHandle
	}
	var w float64
	runtime.LockOSThread()
	err := lib.errorOf(lib.handleWhen(h.h, &w))
	runtime.UnlockOSThread()
	return w, err
}

type scheduleFunc func(loop, cb, ud, free uintptr, out *uintptr) int32

func (l *Loop) schedule(f func(), call scheduleFunc) (*Handle, error) {
	if f == nil {
		return nil, errInvalid("nil func")
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	h := &Handle{loop: l}
	h.key = reg.add(&schedEntry{loop: l, fn: f, handle: h})
	runtime.LockOSThread()
	rc := call(l.handle(), cb.callback, h.key, 0, &h.h)
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	if err != nil {
		reg.del(h.key)
		return nil, err
	}
	return h, nil
}

// CallSoon schedules f to run on the next iteration (FIFO order).
func (l *Loop) CallSoon(f func()) (*Handle, error) {
	return l.schedule(f, rawCallSoon)
}

// CallSoonThreadsafe is CallSoon from any goroutine; it wakes the loop.
// THREAD-SAFE. The returned Handle may only be used on the loop's thread.
func (l *Loop) CallSoonThreadsafe(f func()) (*Handle, error) {
	if lib == nil {
		return nil, ErrBadHandle
	}
	return l.schedule(f, rawCallSoonThreadsafe)
}

// CallLater schedules f to run after d (d <= 0: on the next iteration).
func (l *Loop) CallLater(d time.Duration, f func()) (*Handle, error) {
	if lib == nil {
		return nil, ErrBadHandle
	}
	delay := d.Seconds()
	return l.schedule(f, func(loop, c, ud, free uintptr, out *uintptr) int32 {
		return lib.callLater(loop, delay, c, ud, free, out)
	})
}

// CallAt schedules f to run at loop time when (see Time).
func (l *Loop) CallAt(when float64, f func()) (*Handle, error) {
	if lib == nil {
		return nil, ErrBadHandle
	}
	if math.IsNaN(when) {
		return nil, errInvalid("NaN time")
	}
	return l.schedule(f, func(loop, c, ud, free uintptr, out *uintptr) int32 {
		return lib.callAt(loop, when, c, ud, free, out)
	})
}

// AddReader calls f on every iteration while fd is readable
// (level-triggered). Adding again replaces the previous function.
func (l *Loop) AddReader(fd int, f func()) error {
	if lib == nil {
		return ErrBadHandle
	}
	return l.addWatcher(fd, f, lib.addReader)
}

// AddWriter calls f on every iteration while fd is writable.
func (l *Loop) AddWriter(fd int, f func()) error {
	if lib == nil {
		return ErrBadHandle
	}
	return l.addWatcher(fd, f, lib.addWriter)
}

func (l *Loop) addWatcher(fd int, f func(), add func(loop uintptr, fd int32, cb, ud, free uintptr) int32) error {
	if f == nil {
		return errInvalid("nil func")
	}
	if err := l.check(); err != nil {
		return err
	}
	key := reg.add(&fdEntry{loop: l, fn: f})
	runtime.LockOSThread()
	err := lib.errorOf(add(l.handle(), int32(fd), cb.fd, key, cb.free))
	runtime.UnlockOSThread()
	return err
}

// RemoveReader stops watching fd for reading; it reports whether a function
// was registered.
func (l *Loop) RemoveReader(fd int) (bool, error) {
	if lib == nil {
		return false, ErrBadHandle
	}
	rc, err := l.call(func(h uintptr) int32 { return lib.removeReader(h, int32(fd)) })
	return rc > 0, err
}

// RemoveWriter stops watching fd for writing.
func (l *Loop) RemoveWriter(fd int) (bool, error) {
	if lib == nil {
		return false, ErrBadHandle
	}
	rc, err := l.call(func(h uintptr) int32 { return lib.removeWriter(h, int32(fd)) })
	return rc > 0, err
}

// ExceptionContext is what the exception handler receives (asyncio's
// context dict).
type ExceptionContext struct {
	Message   string
	Err       error // an *Error, or nil
	Detail    string
	Transport *Transport // or nil
	Server    *Server    // or nil

	raw *cExceptionContext // valid during the handler call only
}

// SetExceptionHandler sets the loop's exception handler; nil restores the
// default one (which prints the context to stderr).
func (l *Loop) SetExceptionHandler(f func(*Loop, *ExceptionContext)) error {
	if err := l.check(); err != nil {
		return err
	}
	var key, c, free uintptr
	if f != nil {
		key = reg.add(&exceptionEntry{loop: l, fn: f})
		c, free = cb.exception, cb.free
	}
	runtime.LockOSThread()
	err := lib.errorOf(lib.loopSetExceptionHandler(l.handle(), c, key, free))
	runtime.UnlockOSThread()
	return err
}

// CallExceptionHandler calls the current handler with a context built from
// message and err (an *Error, a syscall.Errno, or nil).
func (l *Loop) CallExceptionHandler(message string, err error) error {
	code := int32(codeOf(err))
	_, e := l.call(func(h uintptr) int32 { return lib.loopCallExceptionHandler(h, cString(message), code) })
	return e
}

// DefaultExceptionHandler prints ctx to stderr as the default handler does.
func (l *Loop) DefaultExceptionHandler(ctx *ExceptionContext) error {
	if ctx == nil {
		return errInvalid("nil context")
	}
	if ctx.raw != nil {
		raw := ctx.raw
		_, err := l.call(func(h uintptr) int32 { return lib.loopDefaultExceptionHandler(h, unsafe.Pointer(raw)) })
		return err
	}
	msg := append([]byte(ctx.Message), 0)
	c := cExceptionContext{size: unsafe.Sizeof(cExceptionContext{}), message: &msg[0], error: int32(codeOf(ctx.Err))}
	var detail []byte
	if ctx.Detail != "" {
		detail = append([]byte(ctx.Detail), 0)
		c.errorDetail = &detail[0]
	}
	_, err := l.call(func(h uintptr) int32 { return lib.loopDefaultExceptionHandler(h, unsafe.Pointer(&c)) })
	runtime.KeepAlive(msg)
	runtime.KeepAlive(detail)
	return err
}

// codeOf maps an error to an ALOOP_E* code (0 for nil).
func codeOf(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*Error); ok {
		return e.Code
	}
	if errno, ok := err.(syscall.Errno); ok {
		return -int(errno)
	}
	var e *Error
	if asError(err, &e) {
		return e.Code
	}
	return EUNKNOWN
}
