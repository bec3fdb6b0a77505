package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"sync"

	"github.com/asyncloop/asyncloop/core"
)

// The current loop per thread (asyncio's get_running_loop, get_event_loop,
// set_event_loop). core knows the running loop of a thread; the loop set
// with aloop_set_event_loop is kept in the C thread's own storage
// (threadstate.c), so that it dies with the thread and a later thread with
// the same id does not inherit it. A released loop's handle is stale, so it
// is no thread's loop any more.

var loopObjs sync.Map // *core.Loop -> *loopObj, while the handle lives

// The thread ids core records and compares come from the C thread's own
// storage (threadstate.c): a cgo call instead of a gettid system call per
// run of a loop.
func init() { core.SetThreadIDFunc(func() int64 { return int64(C.al_thread_id()) }) }

func rememberLoop(lo *loopObj) { loopObjs.Store(lo.l, lo) }

func forgetLoop(lo *loopObj) { loopObjs.Delete(lo.l) }

func loopHandleOf(l *core.Loop) uintptr {
	if l == nil {
		return 0
	}
	v, ok := loopObjs.Load(l)
	if !ok {
		return 0
	}
	lo := v.(*loopObj)
	if loops.get(lo.h) == nil {
		return 0
	}
	return lo.h
}

//export aloop_get_running_loop
func aloop_get_running_loop(out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_loop is NULL")
	}
	inject()
	*out = 0
	h := loopHandleOf(core.RunningLoop())
	if h == 0 {
		return fail(C.ALOOP_ENOLOOP, "no running event loop in this thread")
	}
	*out = C.uintptr_t(h)
	return 0
}

//export aloop_get_event_loop
func aloop_get_event_loop(out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_loop is NULL")
	}
	inject()
	*out = 0
	if l := core.RunningLoop(); l != nil {
		if h := loopHandleOf(l); h != 0 {
			*out = C.uintptr_t(h)
			return 0
		}
	}
	h := uintptr(C.al_get_current_loop())
	if h == 0 || reg.get(h, kLoop) == nil {
		return fail(C.ALOOP_ENOLOOP, "no current event loop in this thread (none running, none set with aloop_set_event_loop)")
	}
	*out = C.uintptr_t(h)
	return 0
}

//export aloop_set_event_loop
func aloop_set_event_loop(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	if loop == 0 {
		inject()
		C.al_set_current_loop(0)
		return 0
	}
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	inject()
	C.al_set_current_loop(C.uintptr_t(lo.h))
	return 0
}
