package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"sync"
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
)

type loopObj struct {
	l    *core.Loop
	h    uintptr
	exc  *excHook   // the host's exception handler, or nil
	wake *wakeHook  // the host's wake-up callback, or nil
	wq   writeQueue // queued writes (events.go)
	// aloop_loop_poll's hook that flushes flushN queued writes (events.go).
	flushFn func()
	flushN  int
}

// wakeHook is the host's wake-up callback: the one host callback the library
// calls from any thread, its own included (the header says so). Whoever
// posts work calls it, outside any lock of the loop, so replacing it or
// freeing the loop must not release its userdata under a running call: a
// call registers itself (by thread id) while it runs, and retire, which
// stops new calls, releases the userdata once no other thread is inside it
// (it waits for them: a wake-up callback must return promptly and must not
// wait for the loop's thread), or — when it is called from inside the
// callback itself — when that call returns.
type wakeHook struct {
	cb, ud    C.uintptr_t
	free      func() // nil once released
	mu        sync.Mutex
	left      sync.Cond // a call returned
	callers   []int     // thread ids of the running calls
	retired   bool
	freeOnRet bool // retired from inside a call: the last call releases
}

func newWakeHook(cb, ud, free C.uintptr_t) *wakeHook {
	w := &wakeHook{cb: cb, ud: ud, free: releaser(free, ud)}
	w.left.L = &w.mu
	return w
}

func (w *wakeHook) call(lh C.uintptr_t) {
	tid := int(core.ThreadID())
	w.mu.Lock()
	if w.retired {
		w.mu.Unlock()
		return
	}
	w.callers = append(w.callers, tid)
	w.mu.Unlock()
	defer w.exit(tid) // the callback is C: it cannot panic, but be safe
	C.al_call_wakeup_cb(w.cb, lh, w.ud)
}

func (w *wakeHook) exit(tid int) {
	w.mu.Lock()
	for i, t := range w.callers {
		if t == tid {
			w.callers = append(w.callers[:i], w.callers[i+1:]...)
			break
		}
	}
	var free func()
	if w.retired {
		w.left.Broadcast()
		if w.freeOnRet && len(w.callers) == 0 {
			free, w.free = w.free, nil
		}
	}
	w.mu.Unlock()
	if free != nil {
		free()
	}
}

// retire stops new calls and releases the userdata once no call runs.
func (w *wakeHook) retire() {
	tid := int(core.ThreadID())
	w.mu.Lock()
	w.retired = true
	for {
		others := 0
		for _, t := range w.callers {
			if t != tid {
				others++
			}
		}
		if others == 0 {
			break
		}
		w.left.Wait()
	}
	var free func()
	if len(w.callers) > 0 { // called from inside the callback
		w.freeOnRet = true
	} else {
		free, w.free = w.free, nil
	}
	w.mu.Unlock()
	if free != nil {
		free()
	}
}

// excHook is the host's exception handler. It runs on the loop thread only,
// but it may replace itself (aloop_loop_set_exception_handler from inside
// the handler); its userdata is then released when the handler returns,
// not while it still runs.
type excHook struct {
	cb, ud, free C.uintptr_t
	running      int
	retired      bool
}

func (x *excHook) retire() {
	x.retired = true
	if x.running == 0 {
		callFree(x.free, x.ud)
	}
}

func getLoop(h C.uintptr_t) (*loopObj, C.int) {
	return lookup(loops, h, "invalid loop handle")
}

// getLoopT is getLoop for functions that must run on the loop's thread.
func getLoopT(h C.uintptr_t) (*loopObj, C.int) {
	return lookupT(loops, h, "invalid loop handle", func(lo *loopObj) *core.Loop { return lo.l })
}

//export aloop_loop_new
func aloop_loop_new(out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_loop is NULL")
	}
	inject()
	l, err := core.NewLoop()
	if err != nil {
		return failErr(err)
	}
	lo := &loopObj{l: l}
	lo.h = loops.put(lo)
	rememberLoop(lo) // capi/current.go
	*out = C.uintptr_t(lo.h)
	return 0
}

//export aloop_loop_close
func aloop_loop_close(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		err := lo.l.Close()
		urgRelease() // its SIGURG handler, if any, is gone (capi/sigurg.go)
		return failErrOrZero(err)
	})
}

//export aloop_loop_close_force
func aloop_loop_close_force(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		err := lo.l.CloseForce(releaseAbandoned) // servers: capi/future.go
		urgRelease()                             // capi/sigurg.go
		return failErrOrZero(err)
	})
}

//export aloop_loop_free
func aloop_loop_free(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		if err := lo.l.Close(); err != nil {
			return failErr(err)
		}
		urgRelease() // capi/sigurg.go
		loops.del(lo.h)
		forgetLoop(lo) // capi/current.go
		lo.setExceptionHandler(0, 0, 0)
		if w := lo.wake; w != nil {
			lo.wake = nil
			w.retire()
		}
		return 0
	})
}

//export aloop_loop_run
func aloop_loop_run(loop C.uintptr_t, mode C.int) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	var m core.RunMode
	switch mode {
	case C.ALOOP_RUN_DEFAULT:
		m = core.RunDefault
	case C.ALOOP_RUN_ONCE:
		m = core.RunOnce
	case C.ALOOP_RUN_NOWAIT:
		m = core.RunNoWait
	default:
		return fail(C.ALOOP_EINVAL, "invalid run mode %d", int(mode))
	}
	inject()
	if err := lo.l.Run(m); err != nil {
		return failErr(err)
	}
	return 0
}

//export aloop_loop_run_once
func aloop_loop_run_once(loop C.uintptr_t, timeout C.double) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	if timeout != timeout { // NaN
		return fail(C.ALOOP_EINVAL, "timeout is NaN")
	}
	inject()
	if err := lo.l.RunOnceTimeout(float64(timeout)); err != nil {
		return failErr(err)
	}
	return 0
}

//export aloop_loop_run_until_complete
func aloop_loop_run_until_complete(loop C.uintptr_t, fut C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	fo, rc := getFuture(fut)
	if fo == nil {
		return rc
	}
	if fo.f.Loop() != lo.l {
		return fail(C.ALOOP_EINVAL, "the future belongs to another loop")
	}
	inject()
	if err := lo.l.RunUntilComplete(fo.f); err != nil {
		return failErr(err)
	}
	return 0
}

//export aloop_loop_stop
func aloop_loop_stop(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoop, func(lo *loopObj) C.int { lo.l.Stop(); return 0 })
}

//export aloop_loop_wakeup
func aloop_loop_wakeup(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoop, func(lo *loopObj) C.int { lo.l.Wakeup(); return 0 })
}

func boolRC(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

//export aloop_loop_is_running
func aloop_loop_is_running(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoop, func(lo *loopObj) C.int { return boolRC(lo.l.IsRunning()) })
}

//export aloop_loop_is_closed
func aloop_loop_is_closed(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoop, func(lo *loopObj) C.int { return boolRC(lo.l.IsClosed()) })
}

//export aloop_loop_alive
func aloop_loop_alive(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int { return boolRC(!lo.l.IsClosed() && lo.l.Alive()) })
}

//export aloop_loop_time
func aloop_loop_time(loop C.uintptr_t, out *C.double) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_time is NULL")
	}
	inject()
	*out = C.double(lo.l.Time())
	return 0
}

//export aloop_loop_set_debug
func aloop_loop_set_debug(loop C.uintptr_t, enabled C.int) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoop, func(lo *loopObj) C.int { lo.l.SetDebug(enabled != 0); return 0 })
}

//export aloop_loop_get_debug
func aloop_loop_get_debug(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoop, func(lo *loopObj) C.int { return boolRC(lo.l.Debug()) })
}

//export aloop_loop_set_slow_callback_duration
func aloop_loop_set_slow_callback_duration(loop C.uintptr_t, seconds C.double) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		if err := lo.l.SetSlowCallbackDuration(float64(seconds)); err != nil {
			return fail(C.ALOOP_EINVAL, "slow callback duration must be >= 0, got %g", float64(seconds))
		}
		return 0
	})
}

//export aloop_loop_get_slow_callback_duration
func aloop_loop_get_slow_callback_duration(loop C.uintptr_t, out *C.double) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoopT(loop)
	if lo == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_seconds is NULL")
	}
	inject()
	*out = C.double(lo.l.SlowCallbackDuration())
	return 0
}

//export aloop_loop_backend_fd
func aloop_loop_backend_fd(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	if lo.l.IsClosed() {
		return fail(C.ALOOP_ECLOSED, "the loop is closed")
	}
	inject()
	return C.int(lo.l.BackendFd())
}

//export aloop_loop_backend_timeout
func aloop_loop_backend_timeout(loop C.uintptr_t, out *C.int) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoopT(loop)
	if lo == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_ms is NULL")
	}
	inject()
	*out = C.int(lo.l.BackendTimeout())
	return 0
}

//export aloop_loop_set_wakeup_cb
func aloop_loop_set_wakeup_cb(loop, cb, ud, free C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	inject()
	o.handOff()
	old := lo.wake
	if cb == 0 {
		lo.l.SetWakeupHook(nil)
		lo.wake = nil
		callFree(free, ud)
	} else {
		h := C.uintptr_t(lo.h)
		w := newWakeHook(cb, ud, free)
		lo.l.SetWakeupHook(func() { w.call(h) })
		lo.wake = w
	}
	if old != nil {
		old.retire()
	}
	return 0
}

// ---------------------------------------------------------------------------
// Scheduling.

func (lo *loopObj) schedule(o *ownedUD, cb C.uintptr_t, out *C.uintptr_t,
	sched func(fn, release func()) (*core.Handle, error)) C.int {
	free, ud := o.free, o.ud
	if cb == 0 {
		o.release()
		return fail(C.ALOOP_EINVAL, "callback is NULL")
	}
	lh := C.uintptr_t(lo.h)
	fn := func() { C.al_call_callback(cb, lh, ud) }
	var hh uintptr
	var release func()
	if out != nil {
		release = func() {
			handles.del(hh)
			callFree(free, ud)
		}
	} else {
		release = releaser(free, ud)
	}
	// Register before scheduling so a thread-safe callback cannot run and
	// release before the handle exists.
	if out != nil {
		hh = handles.put(nil)
	}
	o.handOff()
	h, err := sched(fn, release)
	if err != nil {
		if out != nil {
			handles.del(hh)
		}
		callFree(free, ud)
		return failErr(err)
	}
	if out != nil {
		handles.set(hh, h)
		*out = C.uintptr_t(hh)
	}
	return 0
}

// callSoon is aloop_call_soon (get: getLoopT) and aloop_call_soon_threadsafe
// (getLoop); sched is the core.Loop method.
func callSoon(loop, cb, ud, free C.uintptr_t, out *C.uintptr_t, get func(C.uintptr_t) (*loopObj, C.int),
	sched func(l *core.Loop, fn, release func()) (*core.Handle, error)) C.int {
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := get(loop)
	if lo == nil {
		o.release()
		return rc
	}
	inject()
	return lo.schedule(o, cb, out, func(fn, rel func()) (*core.Handle, error) { return sched(lo.l, fn, rel) })
}

// callTimer is aloop_call_later and aloop_call_at: t (named what) is the
// delay or the time; sched is the core.Loop method.
func callTimer(loop C.uintptr_t, t C.double, what string, cb, ud, free C.uintptr_t, out *C.uintptr_t,
	sched func(l *core.Loop, t float64, fn, release func()) (*core.Handle, error)) C.int {
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	if t != t {
		o.release()
		return fail(C.ALOOP_EINVAL, "%s is NaN", what)
	}
	inject()
	return lo.schedule(o, cb, out, func(fn, rel func()) (*core.Handle, error) { return sched(lo.l, float64(t), fn, rel) })
}

//export aloop_call_soon
func aloop_call_soon(loop, cb, ud, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return callSoon(loop, cb, ud, free, out, getLoopT, (*core.Loop).CallSoon)
}

//export aloop_call_soon_threadsafe
func aloop_call_soon_threadsafe(loop, cb, ud, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return callSoon(loop, cb, ud, free, out, getLoop, (*core.Loop).CallSoonThreadsafe)
}

//export aloop_call_later
func aloop_call_later(loop C.uintptr_t, delay C.double, cb, ud, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return callTimer(loop, delay, "delay", cb, ud, free, out, (*core.Loop).CallLater)
}

//export aloop_call_at
func aloop_call_at(loop C.uintptr_t, when C.double, cb, ud, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return callTimer(loop, when, "when", cb, ud, free, out, (*core.Loop).CallAt)
}

func getHandle(h C.uintptr_t) (*core.Handle, C.int) {
	return lookupT(handles, h, "invalid or finished handle", (*core.Handle).Loop)
}

//export aloop_handle_cancel
func aloop_handle_cancel(handle C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(handle, getHandle, func(h *core.Handle) C.int { h.Cancel(); return 0 })
}

//export aloop_handle_when
func aloop_handle_when(handle C.uintptr_t, out *C.double) (rc C.int) {
	defer guard(&rc)
	h, rc := getHandle(handle)
	if h == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_when is NULL")
	}
	inject()
	if !h.IsTimer() {
		return fail(C.ALOOP_EINVAL, "not a timer handle")
	}
	*out = C.double(h.When())
	return 0
}

// ---------------------------------------------------------------------------
// Exception handler.

func (lo *loopObj) setExceptionHandler(cb, ud, free C.uintptr_t) {
	old := lo.exc
	lo.exc = nil
	if cb == 0 {
		lo.l.SetExceptionHandler(nil)
		callFree(free, ud) // no handler: nothing keeps the userdata
	} else {
		x := &excHook{cb: cb, ud: ud, free: free}
		lo.exc = x
		lh := C.uintptr_t(lo.h)
		lo.l.SetExceptionHandler(func(l *core.Loop, ctx *core.ExceptionContext) {
			x.running++
			defer func() {
				if x.running--; x.running == 0 && x.retired {
					callFree(x.free, x.ud)
				}
			}()
			msg := C.CString(ctx.Message)
			defer C.free(unsafe.Pointer(msg))
			var detail *C.char
			code := C.int(0)
			if ctx.Err != nil {
				detail = C.CString(ctx.Err.Error())
				defer C.free(unsafe.Pointer(detail))
				code = errCode(ctx.Err)
			}
			C.al_call_exception_cb(cb, lh, msg, code, detail,
				C.uintptr_t(transportHandleIfAny(ctx.Transport)),
				C.uintptr_t(serverHandleIfAny(ctx.Server)),
				0, // future: reserved, NULL (include/asyncloop.h)
				C.uintptr_t(datagramHandleIfAny(ctx.Datagram)),
				C.uintptr_t(subprocessHandleIfAny(ctx.Subprocess)), ud)
		})
	}
	if old != nil {
		old.retire()
	}
}

//export aloop_loop_set_exception_handler
func aloop_loop_set_exception_handler(loop, cb, ud, free C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	inject()
	o.handOff()
	lo.setExceptionHandler(cb, ud, free)
	return 0
}

//export aloop_loop_get_exception_handler
func aloop_loop_get_exception_handler(loop C.uintptr_t, outCb, outUd *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoopT(loop)
	if lo == nil {
		return rc
	}
	if outCb == nil || outUd == nil {
		return fail(C.ALOOP_EINVAL, "out_cb or out_userdata is NULL")
	}
	inject()
	*outCb, *outUd = 0, 0
	if x := lo.exc; x != nil {
		*outCb, *outUd = x.cb, x.ud
	}
	return 0
}

//export aloop_loop_call_exception_handler
func aloop_loop_call_exception_handler(loop C.uintptr_t, message *C.char, code C.int) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		ctx := &core.ExceptionContext{Message: goString(message)}
		if code != 0 {
			ctx.Err = &core.CodedError{Code: int(code), Msg: C.GoString(C.aloop_strerror(code))}
		}
		lo.l.CallExceptionHandler(ctx)
		return 0
	})
}

//export aloop_loop_default_exception_handler
func aloop_loop_default_exception_handler(loop C.uintptr_t, ctxp *C.aloop_exception_context_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoopT(loop)
	if lo == nil {
		return rc
	}
	// The context grew by appending; accept the first (7-field) layout.
	if ctxp == nil || ctxp.size < C.size_t(unsafe.Offsetof(ctxp.future)+unsafe.Sizeof(ctxp.future)) {
		return fail(C.ALOOP_EINVAL, "context is NULL or too small")
	}
	inject()
	ctx := &core.ExceptionContext{Message: goString(ctxp.message)}
	if ctxp.error != 0 || ctxp.error_detail != nil {
		msg := goString(ctxp.error_detail)
		if msg == "" {
			msg = C.GoString(C.aloop_strerror(ctxp.error))
		}
		ctx.Err = &core.CodedError{Code: int(ctxp.error), Msg: msg}
	}
	lo.l.DefaultExceptionHandler(ctx)
	return 0
}

func datagramHandleIfAny(d *core.DatagramTransport) uintptr {
	if d == nil {
		return 0
	}
	return datagramHandle(d)
}

func subprocessHandleIfAny(p *core.Subprocess) uintptr {
	if p == nil {
		return 0
	}
	return subprocessHandle(p)
}

// ---------------------------------------------------------------------------
// fd watchers.

// watch is aloop_add_reader and aloop_add_writer; add is the core.Loop
// method.
func watch(loop C.uintptr_t, fd C.int, cb, ud, free C.uintptr_t, add func(l *core.Loop, fd int, fn, release func()) error) C.int {
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	inject()
	if cb == 0 {
		o.release()
		return fail(C.ALOOP_EINVAL, "callback is NULL")
	}
	if fd < 0 {
		o.release()
		return fail(C.ALOOP_EBADF, "invalid fd %d", int(fd))
	}
	lh := C.uintptr_t(lo.h)
	o.handOff()
	if err := add(lo.l, int(fd), func() { C.al_call_fd_cb(cb, lh, fd, ud) }, releaser(free, ud)); err != nil {
		callFree(free, ud)
		return failErr(err)
	}
	return 0
}

//export aloop_add_reader
func aloop_add_reader(loop C.uintptr_t, fd C.int, cb, ud, free C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return watch(loop, fd, cb, ud, free, (*core.Loop).AddReader)
}

//export aloop_add_writer
func aloop_add_writer(loop C.uintptr_t, fd C.int, cb, ud, free C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return watch(loop, fd, cb, ud, free, (*core.Loop).AddWriter)
}

//export aloop_add_reader_queued
func aloop_add_reader_queued(loop C.uintptr_t, fd C.int, ud C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return watchQueued(loop, fd, ud, (*core.Loop).AddReaderQueued)
}

//export aloop_add_writer_queued
func aloop_add_writer_queued(loop C.uintptr_t, fd C.int, ud C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return watchQueued(loop, fd, ud, (*core.Loop).AddWriterQueued)
}

func watchQueued(loop C.uintptr_t, fd C.int, ud C.uintptr_t, add func(l *core.Loop, fd int, ud uint64) error) C.int {
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		if fd < 0 {
			return fail(C.ALOOP_EBADF, "invalid fd %d", int(fd))
		}
		inject()
		if err := add(lo.l, int(fd), uint64(ud)); err != nil {
			return failErr(err)
		}
		return 0
	})
}

//export aloop_remove_reader
func aloop_remove_reader(loop C.uintptr_t, fd C.int) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int { return boolRC(lo.l.RemoveReader(int(fd))) })
}

//export aloop_remove_writer
func aloop_remove_writer(loop C.uintptr_t, fd C.int) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int { return boolRC(lo.l.RemoveWriter(int(fd))) })
}
