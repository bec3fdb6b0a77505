package asyncloop

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"
)

// RunMode is aloop_run_mode_t.
type RunMode int32

const (
	// RunModeDefault runs until Stop (asyncio's run_forever).
	RunModeDefault RunMode = runDefault
	// RunModeOnce runs one iteration, waiting for I/O if nothing is ready.
	RunModeOnce RunMode = runOnce
	// RunModeNoWait runs one iteration without waiting.
	RunModeNoWait RunMode = runNowait
)

// Loop is an asyncloop event loop (asyncio's event loop).
//
// Threading: a loop is driven by one goroutine at a time, the one inside
// RunForever / RunUntilComplete / Run / RunOnce, which locks itself to its
// OS thread (runtime.LockOSThread) for the duration of the call. Every
// callback (CallSoon functions, timers, done-callbacks, Protocol methods,
// reader/writer functions, signal handlers, the exception handler) runs on
// that thread, inside that call, one at a time. Everything else must be
// called from a callback or from the goroutine that owns the loop while it
// is not running, except the THREAD-SAFE methods: CallSoonThreadsafe, Stop,
// Wakeup, and the net adapters (Dial, Listen and the net.Conn /
// net.Listener they return). In debug mode (SetDebug) the library checks
// the thread: call runtime.LockOSThread in the goroutine that owns the loop
// so that setup code and the run calls happen on the same thread.
//
// A panic inside a callback is recovered on the loop thread, the loop is
// stopped, and the run call panics with a *PanicError after it returns.
// Do not call runtime.Goexit (t.FailNow, t.Fatal) inside a callback.
//
// Close the loop when done. A Loop that becomes unreachable without Close
// is closed by a cleanup; in debug mode that is reported on stderr with
// where the loop was created.
type Loop struct {
	h       uintptr
	closed  atomic.Bool
	debug   *atomic.Bool // separate from the Loop: its cleanup reads it
	created string       // file:line of NewLoop's caller

	panicMu sync.Mutex
	panicV  *PanicError

	// borrowed: the loop belongs to another host (LoopFromHandle): Close
	// does not free it and a panic goes to its exception handler.
	borrowed bool

	// The event queue (queue.go): set once the loop has a queued datagram
	// endpoint; pollTid: the thread inside a run over aloop_loop_poll
	// (-1 where unknown), 0 when none. Loop thread only.
	q       *evQueue
	pollTid int
	// mem: the C memory the library keeps for this loop (cmem.go), shared
	// with the cleanup, which unmaps it when the loop is dropped unclosed.
	mem *loopMem

	cleanup runtime.Cleanup

	// Servers whose Go wrapper was garbage collected while open (they
	// serve until Close releases them); loop thread only.
	orphans []uintptr

	// Go wrappers of the loop's live objects, by handle; used on the loop
	// thread only (exception contexts, futures' results).
	transports   map[uintptr]*Transport
	servers      map[uintptr]weak.Pointer[Server]
	datagrams    map[uintptr]*DatagramTransport
	subprocesses map[uintptr]*SubprocessTransport
}

// loops maps library handles to the Go loops (GetRunningLoop,
// GetEventLoop).
var (
	loopsMu sync.Mutex
	loops   = map[uintptr]weak.Pointer[Loop]{}
)

// NewLoop loads the library if needed (see Load) and creates a loop
// (asyncio's new_event_loop).
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
	l := newLoopValue(h, false)
	loopsMu.Lock()
	loops[h] = weak.Make(l)
	loopsMu.Unlock()
	l.cleanup = runtime.AddCleanup(l, closeDroppedLoop, droppedLoop{h: h, debug: l.debug, created: l.created, mem: l.mem})
	return l, nil
}

// newLoopValue is the *Loop of handle h, with the place in the user's code
// that made it (the caller of NewLoop or LoopFromHandle, for leak reports).
func newLoopValue(h uintptr, borrowed bool) *Loop {
	l := &Loop{
		h:            h,
		borrowed:     borrowed,
		debug:        new(atomic.Bool),
		mem:          new(loopMem),
		transports:   map[uintptr]*Transport{},
		servers:      map[uintptr]weak.Pointer[Server]{},
		datagrams:    map[uintptr]*DatagramTransport{},
		subprocesses: map[uintptr]*SubprocessTransport{},
	}
	if _, file, line, ok := runtime.Caller(2); ok {
		l.created = fmt.Sprintf("%s:%d", file, line)
	}
	return l
}

// LoopFromHandle wraps a loop another host created and runs: the
// aloop_loop_t * that a C, Python or Node host (or another Go binding)
// passes to a Go plugin (a Go library built with -buildmode=c-shared that
// uses this binding; examples/go-plugin, README.md "Go plugins"). The
// library is loaded as Load does, and Load prefers a libasyncloop already
// in the process, the one the handle belongs to.
//
// The *Loop borrows the handle: the host runs the loop (its callbacks run
// on the host's loop thread, inside the host's run call) and closes it.
// Close only detaches the Go side (later calls fail with ErrClosed; close
// your servers and transports first); it neither closes nor frees the loop.
// A panic in a callback is recovered and passed to the loop's exception
// handler, which the host owns, and the loop goes on (asyncio's rule for an
// exception in a callback), instead of stopping the loop and re-panicking
// in a run call that is not Go's. Wrapping the same live handle again
// returns the same *Loop. A handle that is not a live loop is
// ErrBadHandle.
func LoopFromHandle(handle uintptr) (*Loop, error) {
	if err := ensureLoaded(); err != nil {
		return nil, err
	}
	loopsMu.Lock()
	defer loopsMu.Unlock()
	if w, ok := loops[handle]; ok {
		if l := w.Value(); l != nil && !l.closed.Load() {
			return l, nil
		}
	}
	runtime.LockOSThread()
	rc := lib.loopIsClosed(handle)
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	if err != nil {
		return nil, err
	}
	if rc > 0 {
		return nil, ErrClosed
	}
	l := newLoopValue(handle, true)
	loops[handle] = weak.Make(l)
	return l, nil
}

type droppedLoop struct {
	h       uintptr
	debug   *atomic.Bool
	created string
	mem     *loopMem
}

// closeDroppedLoop closes a loop nobody can reach any more (nothing of it
// is scheduled: that would reach it). What may still be open on it (servers
// nobody references, which keep serving while the loop lives) goes with
// aloop_loop_close_force, so that the loop is always freed (aloop_loop_free
// alone refused a busy loop, which then leaked with its sockets).
func closeDroppedLoop(d droppedLoop) {
	if d.debug.Load() {
		fmt.Fprintf(os.Stderr, "asyncloop: a Loop created at %s was garbage collected without Close\n", d.created)
	}
	loopsMu.Lock()
	delete(loops, d.h)
	loopsMu.Unlock()
	lib.loopCloseForce(d.h)
	dropped := dropQueue(d.h, d.mem)
	if lib.loopFree(d.h) >= 0 || dropped {
		d.mem.release() // the library no longer holds it
	}
}

func loopOf(h uintptr) *Loop {
	loopsMu.Lock()
	defer loopsMu.Unlock()
	if w, ok := loops[h]; ok {
		return w.Value()
	}
	return nil
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

// call runs f with the loop's handle on a locked thread and converts its
// result.
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

// do runs f on a locked thread and converts its result (lib must be
// loaded).
func do(f func() int32) (int32, error) {
	runtime.LockOSThread()
	rc := f()
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	return rc, err
}

func (l *Loop) storePanic(v any, stack []byte) {
	if l.borrowed {
		// The run call is the host's: report, as asyncio reports an
		// exception raised by a callback, and go on.
		msg := fmt.Sprintf("panic in a Go callback: %v\n%s", v, stack)
		lib.loopCallExceptionHandler(l.h, cString(msg), 0)
		return
	}
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
	var rc int32
	if l != nil && l.q != nil {
		rc = l.pollRun(mode, -1, nil)
	} else {
		rc = lib.loopRun(l.handle(), int32(mode))
	}
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
	secs := runTimeout(timeout)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var rc int32
	if l != nil && l.q != nil {
		rc = l.pollRun(RunModeOnce, secs, nil)
	} else {
		rc = lib.loopRunOnce(l.handle(), secs)
	}
	err := lib.errorOf(rc)
	l.rethrow()
	return err
}

// RunUntilComplete runs the loop until f is done (asyncio's
// run_until_complete). It returns the future's error (nil when it
// succeeded; read the value with f.Result), ErrStopped if the loop was
// stopped first, or the run's error. A future that is already done makes
// it run one iteration.
func (l *Loop) RunUntilComplete(f Awaitable) error {
	if err := l.check(); err != nil {
		return err
	}
	if f == nil {
		return errInvalid("nil future")
	}
	st := f.state()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if st.settled {
		// Released already: one iteration, as asyncio does for a done
		// future.
		h, err := l.CallSoon(func() { l.Stop() })
		if err != nil {
			return err
		}
		err = l.RunForever()
		h.Cancel()
		if err != nil {
			return err
		}
		return st.err
	}
	var rc int32
	if l != nil && l.q != nil {
		rc = l.pollRun(RunModeDefault, -1, func() bool {
			return st.settled || st.h == 0 || lib.futureDone(st.h) == 1
		})
	} else {
		rc = lib.loopRunUntilComplete(l.handle(), st.h)
	}
	err := lib.errorOf(rc)
	l.rethrow()
	if err != nil {
		return err
	}
	f.ensureSettled()
	if !st.settled {
		return newError(ESTATE, "the future is not done")
	}
	return st.err
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
// later calls fail with ErrClosed. Servers nobody can reach any more are
// released first. It fails with ALOOP_EBUSY (and the loop stays usable)
// while the loop runs or has live transports, servers, datagram endpoints,
// subprocesses, fd watchers or pending operations. Closing a closed loop
// returns nil.
func (l *Loop) Close() error {
	if lib == nil {
		return ErrBadHandle
	}
	if l == nil || l.closed.Load() {
		return nil
	}
	if l.pollTid != 0 {
		return newError(EBUSY, "the loop is running")
	}
	runtime.LockOSThread()
	for _, h := range l.orphans {
		lib.serverFree(h)
		delete(l.servers, h)
	}
	l.orphans = nil
	if l.borrowed {
		// The host's loop: detach only.
		l.closed.Store(true)
		loopsMu.Lock()
		delete(loops, l.h)
		loopsMu.Unlock()
		runtime.UnlockOSThread()
		return nil
	}
	err := lib.errorOf(lib.loopClose(l.h))
	if err == nil {
		l.closed.Store(true)
		l.cleanup.Stop()
		dropped := dropQueue(l.h, l.mem)
		err = lib.errorOf(lib.loopFree(l.h))
		if err == nil || dropped {
			// The library no longer holds the event queue.
			l.q = nil
			l.mem.release()
		}
		loopsMu.Lock()
		delete(loops, l.h)
		loopsMu.Unlock()
	}
	runtime.UnlockOSThread()
	if l.closed.Load() {
		// Nothing of this loop can be called any more: drop what the
		// library did not release (see owned).
		reg.sweep(func(v any) bool {
			o, ok := v.(owned)
			if !ok || o.owner() != l {
				return false
			}
			if f, ok := v.(freer); ok {
				f.freed()
			}
			return true
		})
	}
	return err
}

// IsRunning reports whether the loop is running.
func (l *Loop) IsRunning() bool {
	if l != nil && l.pollTid != 0 {
		return true
	}
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

// Time returns the loop's clock (asyncio's loop.time(), CLOCK_MONOTONIC)
// as a time.Time with a monotonic reading (see CallAt). On a closed loop it
// reads the same clock directly.
func (l *Loop) Time() time.Time {
	if l.check() == nil {
		var t float64
		if rawLoopTime(l.handle(), &t) == 0 {
			return loopToTime(t)
		}
	}
	return loopToTime(monotonicNow())
}

// SetDebug enables or disables debug mode (asyncio's set_debug): slow
// callbacks are reported, calls from the wrong thread fail with
// ErrNotLoopThread, unclosed objects are reported at Close, and objects
// the garbage collector finds unclosed (loops, servers) are reported.
func (l *Loop) SetDebug(enabled bool) error {
	v := int32(0)
	if enabled {
		v = 1
	}
	_, err := l.call(func(h uintptr) int32 { return lib.loopSetDebug(h, v) })
	if err == nil && l.debug != nil {
		l.debug.Store(enabled)
	}
	return err
}

// Debug reports whether debug mode is on.
func (l *Loop) Debug() bool {
	rc, err := l.call(func(h uintptr) int32 { return lib.loopGetDebug(h) })
	return err == nil && rc > 0
}

// SetSlowCallbackDuration sets how long a callback may run before debug
// mode reports it (asyncio's slow_callback_duration; default 100 ms;
// math.MaxInt64 means never).
func (l *Loop) SetSlowCallbackDuration(d time.Duration) error {
	if d < 0 {
		return errInvalid("negative duration")
	}
	s := durationSeconds(d)
	_, err := l.call(func(h uintptr) int32 { return lib.loopSetSlowCallbackDuration(h, s) })
	return err
}

// SlowCallbackDuration returns the slow-callback duration.
func (l *Loop) SlowCallbackDuration() (time.Duration, error) {
	var s float64
	_, err := l.call(func(h uintptr) int32 { return lib.loopGetSlowCallbackDuration(h, &s) })
	if math.IsInf(s, 1) {
		return math.MaxInt64, err
	}
	return secondsToDuration(s), err
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
	_, err := do(func() int32 { return lib.handleCancel(h.h) })
	if err == nil {
		h.cancel.Store(true)
		h.finished.Store(true)
		reg.del(h.key)
	}
	return err
}

// Cancelled reports whether Cancel cancelled the callback.
func (h *Handle) Cancelled() bool { return h != nil && h.cancel.Load() }

// When returns a timer's deadline (ALOOP_EINVAL for a CallSoon handle,
// ALOOP_EBADF once it ran or was cancelled).
func (h *Handle) When() (time.Time, error) {
	if h == nil || lib == nil {
		return time.Time{}, ErrBadHandle
	}
	var w float64
	_, err := do(func() int32 { return lib.handleWhen(h.h, &w) })
	if err != nil {
		return time.Time{}, err
	}
	return loopToTime(w), nil
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
	delay := durationSeconds(d)
	return l.schedule(f, func(loop, c, ud, free uintptr, out *uintptr) int32 {
		return lib.callLater(loop, delay, c, ud, free, out)
	})
}

// CallAt schedules f to run at when (asyncio's call_at, with a time.Time
// instead of a loop-time float: CallAt(l.Time().Add(d), f) is
// CallLater(d, f)). A time in the past runs on the next iteration.
func (l *Loop) CallAt(when time.Time, f func()) (*Handle, error) {
	if lib == nil {
		return nil, ErrBadHandle
	}
	w := timeToLoop(when)
	return l.schedule(f, func(loop, c, ud, free uintptr, out *uintptr) int32 {
		return lib.callAt(loop, w, c, ud, free, out)
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
	_, err := do(func() int32 { return add(l.handle(), int32(fd), cb.fd, key, cb.free) })
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
	Message    string
	Err        error // an *Error, or nil
	Detail     string
	Transport  *Transport           // or nil
	Server     *Server              // or nil
	Datagram   *DatagramTransport   // or nil
	Subprocess *SubprocessTransport // or nil

	raw *cExceptionContext // valid during the handler call only
}

func (l *Loop) exceptionContext(ctx *cExceptionContext) *ExceptionContext {
	c := &ExceptionContext{Message: goString(ctx.message), Detail: goString(ctx.errorDetail), raw: ctx}
	if ctx.error != 0 {
		c.Err = newError(int(ctx.error), c.Detail)
	}
	if ctx.transport != 0 {
		c.Transport = l.transports[ctx.transport]
	}
	if ctx.server != 0 {
		c.Server = l.servers[ctx.server].Value()
	}
	if ctx.size >= unsafe.Offsetof(ctx.subprocess)+unsafe.Sizeof(ctx.subprocess) {
		if ctx.datagram != 0 {
			c.Datagram = l.datagrams[ctx.datagram]
		}
		if ctx.subprocess != 0 {
			c.Subprocess = l.subprocesses[ctx.subprocess]
		}
	}
	return c
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
	_, err := do(func() int32 { return lib.loopSetExceptionHandler(l.handle(), c, key, free) })
	return err
}

// ExceptionHandler returns the handler set with SetExceptionHandler, nil
// for the default one (asyncio's get_exception_handler). A handler set
// through the C ABI by another host is not a Go function: ErrState.
func (l *Loop) ExceptionHandler() (func(*Loop, *ExceptionContext), error) {
	var c, ud uintptr
	if _, err := l.call(func(h uintptr) int32 { return lib.loopGetExceptionHandler(h, &c, &ud) }); err != nil {
		return nil, err
	}
	if c == 0 {
		return nil, nil
	}
	if e, ok := reg.get(ud).(*exceptionEntry); ok && c == cb.exception {
		return e.fn, nil
	}
	return nil, newError(ESTATE, "the exception handler is not a Go function")
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

// The current loop of an OS thread (asyncio's get_running_loop,
// get_event_loop, set_event_loop and the policy's per-thread loop). The
// library tells threads apart by their OS thread id, so outside a
// callback these are only meaningful on a goroutine locked to its thread
// (runtime.LockOSThread).

// GetRunningLoop returns the loop running on the calling goroutine's
// thread: inside a callback of a loop, that loop. ErrNoLoop otherwise.
func GetRunningLoop() (*Loop, error) {
	return currentLoop(func(out *uintptr) int32 { return lib.getRunningLoop(out) })
}

// GetEventLoop returns the running loop of the calling thread, else the
// loop set for it with SetEventLoop, else ErrNoLoop.
func GetEventLoop() (*Loop, error) {
	return currentLoop(func(out *uintptr) int32 { return lib.getEventLoop(out) })
}

func currentLoop(get func(*uintptr) int32) (*Loop, error) {
	if err := ensureLoaded(); err != nil {
		return nil, err
	}
	// A loop dispatching its event records runs, though not in the
	// library (queue.go).
	runtime.LockOSThread()
	l := pollingLoop()
	runtime.UnlockOSThread()
	if l != nil {
		return l, nil
	}
	var h uintptr
	if _, err := do(func() int32 { return get(&h) }); err != nil {
		return nil, err
	}
	if l := loopOf(h); l != nil {
		return l, nil
	}
	return nil, newError(ENOLOOP, "the current loop was not created by this binding")
}

// SetEventLoop sets the calling thread's loop (nil unsets it). Lock the
// goroutine to its thread first.
func SetEventLoop(l *Loop) error {
	if err := ensureLoaded(); err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return err
	}
	_, err := do(func() int32 { return lib.setEventLoop(l.handle()) })
	return err
}
