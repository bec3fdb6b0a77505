package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
)

type loopObj struct {
	l        *core.Loop
	h        uintptr
	excCb    C.uintptr_t
	excUd    C.uintptr_t
	excFree  C.uintptr_t
	wakeFree func()
	wq       writeQueue // queued writes (events.go)
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
	return with(loop, getLoopT, func(lo *loopObj) C.int { return failErrOrZero(lo.l.Close()) })
}

//export aloop_loop_free
func aloop_loop_free(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		if err := lo.l.Close(); err != nil {
			return failErr(err)
		}
		loops.del(lo.h)
		forgetLoop(lo) // capi/current.go
		lo.setExceptionHandler(0, 0, 0)
		if lo.wakeFree != nil {
			lo.wakeFree()
			lo.wakeFree = nil
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
	old := lo.wakeFree
	if cb == 0 {
		lo.l.SetWakeupHook(nil)
		lo.wakeFree = nil
		callFree(free, ud)
	} else {
		h := C.uintptr_t(lo.h)
		lo.l.SetWakeupHook(func() { C.al_call_wakeup_cb(cb, h, ud) })
		lo.wakeFree = releaser(free, ud)
	}
	if old != nil {
		old()
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
	oldFree, oldUd := lo.excFree, lo.excUd
	lo.excCb, lo.excUd, lo.excFree = cb, ud, free
	if cb == 0 {
		lo.l.SetExceptionHandler(nil)
	} else {
		lh := C.uintptr_t(lo.h)
		lo.l.SetExceptionHandler(func(l *core.Loop, ctx *core.ExceptionContext) {
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
	callFree(oldFree, oldUd)
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
	*outCb, *outUd = lo.excCb, lo.excUd
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
