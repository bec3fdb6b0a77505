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
// set_event_loop); core keeps the registry, this maps its loops back to
// handles.

var loopObjs sync.Map // *core.Loop -> *loopObj, while the handle lives

func rememberLoop(lo *loopObj) { loopObjs.Store(lo.l, lo) }

func forgetLoop(lo *loopObj) {
	loopObjs.Delete(lo.l)
	core.ClearEventLoop(lo.l)
}

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
	l, err := core.GetEventLoop()
	if err != nil {
		return fail(C.ALOOP_ENOLOOP, "no current event loop in this thread (none running, none set with aloop_set_event_loop)")
	}
	h := loopHandleOf(l)
	if h == 0 {
		return fail(C.ALOOP_ENOLOOP, "the current event loop of this thread is not a handle of this library")
	}
	*out = C.uintptr_t(h)
	return 0
}

//export aloop_set_event_loop
func aloop_set_event_loop(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	if loop == 0 {
		inject()
		core.SetEventLoop(nil)
		return 0
	}
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	inject()
	core.SetEventLoop(lo.l)
	return 0
}
