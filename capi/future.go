package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"github.com/asyncloop/asyncloop/core"
)

// futureObj is a future with its handle. The handle stays registered while
// the caller holds it (until aloop_future_free) or done-callbacks of the C
// side are pending, so that those callbacks receive a live handle.
type futureObj struct {
	f       *core.Future
	h       uintptr
	refs    int
	holders int // references the host holds (1 + aloop_future_ref - aloop_future_free)
}

// hostResult is a result set by the host (a pointer-sized value).
type hostResult uintptr

// releaseUnlessAdopted runs d.release once fut is done, or when its loop
// closes before it completes, unless an object of the operation took the
// userdata over by then (d.adopted: its connection_made ran; it releases
// the userdata after its connection_lost): the userdata of an operation
// that failed, was cancelled or was completed by the host first
// (set_result / set_exception) is dropped exactly once.
func releaseUnlessAdopted(fut *core.Future, d *hostData) {
	fut.AddDoneCallback(func(*core.Future) {}, func() {
		if !d.adopted {
			d.release()
		}
	}, nil)
}

// releaseUnlessServer is releaseUnlessAdopted for a server's on_connection
// userdata: the server owns it once the future's result is the server.
func releaseUnlessServer(fut *core.Future, d *hostData) {
	fut.AddDoneCallback(func(*core.Future) {}, func() {
		if v, err := fut.Result(); err != nil || !isServer(v) {
			d.release()
		}
	}, nil)
}

// releaseAbandoned drops the C side of a server core closed on its own
// (the host dropped the future leading to it unread, or
// aloop_loop_close_force): its on_connection userdata and its handle (a
// transport, an endpoint and a subprocess release theirs in OnRelease, as
// always).
func releaseAbandoned(obj any) {
	if s, ok := obj.(*core.Server); ok {
		if so, ok := s.Tag.(*serverObj); ok {
			so.release()
			if so.h != 0 {
				servers.del(so.h)
			}
		}
	}
}

func isServer(v any) bool { _, ok := v.(*core.Server); return ok }

func newFutureObj(f *core.Future) *futureObj {
	fo := &futureObj{f: f, refs: 1, holders: 1}
	fo.h = futures.put(fo)
	return fo
}

func (fo *futureObj) unref() {
	fo.refs--
	if fo.refs == 0 {
		futures.del(fo.h)
		fo.f.Forget() // off the loop's pending list (core.Loop.CloseForce)
	}
}

func getFuture(h C.uintptr_t) (*futureObj, C.int) {
	return lookupT(futures, h, "invalid future handle", func(fo *futureObj) *core.Loop { return fo.f.Loop() })
}

// loopForFuture resolves the loop of an export that returns a future (on the
// loop's thread) and checks out_future.
func loopForFuture(loop C.uintptr_t, out *C.uintptr_t) (*loopObj, C.int) {
	lo, rc := getLoopT(loop)
	if lo == nil {
		return nil, rc
	}
	if out == nil {
		return nil, fail(C.ALOOP_EINVAL, "out_future is NULL")
	}
	return lo, 0
}

// putFuture returns the future of a core operation to C, or its error.
func putFuture(fut *core.Future, err error, out *C.uintptr_t) C.int {
	if err != nil {
		return failErr(err)
	}
	*out = C.uintptr_t(newFutureObj(fut).h)
	return 0
}

//export aloop_future_new
func aloop_future_new(loop C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	inject()
	if lo.l.IsClosed() {
		return fail(C.ALOOP_ECLOSED, "the loop is closed")
	}
	*out = C.uintptr_t(newFutureObj(lo.l.NewFuture()).h)
	return 0
}

//export aloop_future_free
func aloop_future_free(fut C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(fut, getFuture, func(fo *futureObj) C.int {
		if fo.holders == 0 {
			return fail(C.ALOOP_EBADF, "future %#x was already freed", fo.h)
		}
		fo.holders--
		if fo.holders == 0 {
			// An object only this future leads to is closed once the
			// host's last reference goes (core/claim.go).
			fo.f.Abandon(releaseAbandoned)
		}
		fo.unref()
		return 0
	})
}

//export aloop_future_ref
func aloop_future_ref(fut C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(fut, getFuture, func(fo *futureObj) C.int {
		if fo.holders == 0 {
			return fail(C.ALOOP_EBADF, "future %#x was already freed", fo.h)
		}
		inject()
		fo.holders++
		fo.refs++
		return 0
	})
}

//export aloop_future_done
func aloop_future_done(fut C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(fut, getFuture, func(fo *futureObj) C.int { return boolRC(fo.f.Done()) })
}

//export aloop_future_cancelled
func aloop_future_cancelled(fut C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(fut, getFuture, func(fo *futureObj) C.int { return boolRC(fo.f.Cancelled()) })
}

//export aloop_future_cancel
func aloop_future_cancel(fut C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(fut, getFuture, func(fo *futureObj) C.int { return boolRC(fo.f.Cancel("")) })
}

//export aloop_future_set_result
func aloop_future_set_result(fut C.uintptr_t, result C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(fut, getFuture, func(fo *futureObj) C.int { return failErrOrZero(fo.f.Override(hostResult(result), nil)) })
}

//export aloop_future_set_exception
func aloop_future_set_exception(fut C.uintptr_t, code C.int, message *C.char) (rc C.int) {
	defer guard(&rc)
	fo, rc := getFuture(fut)
	if fo == nil {
		return rc
	}
	if code >= 0 {
		return fail(C.ALOOP_EINVAL, "error code must be negative, got %d", int(code))
	}
	inject()
	msg := goString(message)
	if msg == "" {
		msg = C.GoString(C.aloop_strerror(code))
	}
	if err := fo.f.Override(nil, &core.CodedError{Code: int(code), Msg: msg}); err != nil {
		return failErr(err)
	}
	return 0
}

// resultHandle converts a future's result to what C sees.
func resultHandle(v any) (uintptr, kind) {
	switch r := v.(type) {
	case hostResult:
		return uintptr(r), 0
	case *core.Transport:
		return transportHandle(r), kTransport
	case *core.Server:
		return serverHandle(r), kServer
	case *core.Subprocess:
		return subprocessHandle(r), kSubprocess
	case *core.DatagramTransport:
		return datagramHandle(r), kDatagram
	}
	return 0, 0
}

func futureResult(fut C.uintptr_t, want kind, out *C.uintptr_t) C.int {
	fo, rc := getFuture(fut)
	if fo == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out parameter is NULL")
	}
	inject()
	v, err := fo.f.Result()
	if err != nil {
		return failErr(err)
	}
	h, k := resultHandle(v)
	if want != 0 && k != want {
		return fail(C.ALOOP_EINVAL, "the future's result is of another kind")
	}
	*out = C.uintptr_t(h)
	return 0
}

//export aloop_future_result
func aloop_future_result(fut C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return futureResult(fut, 0, out)
}

//export aloop_future_result_transport
func aloop_future_result_transport(fut C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return futureResult(fut, kTransport, out)
}

//export aloop_future_result_server
func aloop_future_result_server(fut C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return futureResult(fut, kServer, out)
}

//export aloop_future_exception
func aloop_future_exception(fut C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(fut, getFuture, func(fo *futureObj) C.int { return errCode(fo.f.Exception()) })
}

//export aloop_future_error_message
func aloop_future_error_message(fut C.uintptr_t, buf *C.char, buflen C.size_t) (rc C.int) {
	defer guard(&rc)
	fo, rc := getFuture(fut)
	if fo == nil {
		return rc
	}
	if buf == nil || buflen == 0 {
		return fail(C.ALOOP_EINVAL, "buffer is NULL or empty")
	}
	inject()
	msg := ""
	if err := fo.f.Exception(); err != nil && err != core.ErrInvalidState {
		msg = err.Error()
	}
	return C.int(copyCString(buf, buflen, msg))
}

type cbKey struct{ cb, ud C.uintptr_t }

//export aloop_future_add_done_callback
func aloop_future_add_done_callback(fut, cb, ud, free C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
	defer o.onPanic()
	fo, rc := getFuture(fut)
	if fo == nil {
		o.release()
		return rc
	}
	if cb == 0 {
		o.release()
		return fail(C.ALOOP_EINVAL, "callback is NULL")
	}
	inject()
	fh := C.uintptr_t(fo.h)
	_, err := fo.f.AddDoneCallbackOpen(func(*core.Future) { C.al_call_future_cb(cb, fh, ud) }, func() {
		callFree(free, ud)
		fo.unref()
	}, cbKey{cb, ud})
	if err != nil {
		o.release()
		return failErr(err)
	}
	o.handOff()
	fo.refs++
	return 0
}

//export aloop_future_remove_done_callback
func aloop_future_remove_done_callback(fut, cb, ud C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(fut, getFuture, func(fo *futureObj) C.int { return C.int(fo.f.RemoveDoneCallback(cbKey{cb, ud})) })
}
