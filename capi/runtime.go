package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"unsafe"
)

// aloop_runtime_stats: what the library's Go runtime costs its host. It
// allocates nothing itself, so that a host can count the allocations of
// what it does between two calls.

var (
	threadsMu     sync.Mutex
	threadsSample = [1]metrics.Sample{{Name: "/sched/threads/total:threads"}}
)

//export aloop_runtime_stats
func aloop_runtime_stats(out *C.aloop_runtime_stats_t) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out is NULL")
	}
	if out.size < C.size_t(unsafe.Sizeof(out.size)) {
		return fail(C.ALOOP_EINVAL, "out->size is %d; set it to sizeof(aloop_runtime_stats_t)", uint64(out.size))
	}
	inject()
	// The metric first: the first metrics.Read of the process allocates
	// (its tables), and that must not count in the snapshot of a later
	// call.
	threadsMu.Lock()
	metrics.Read(threadsSample[:])
	threads := threadsSample[0].Value
	threadsMu.Unlock()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	setField(out, &out.mallocs, C.uint64_t(m.Mallocs))
	setField(out, &out.frees, C.uint64_t(m.Frees))
	setField(out, &out.heap_bytes, C.uint64_t(m.HeapAlloc))
	setField(out, &out.heap_sys_bytes, C.uint64_t(m.HeapSys))
	setField(out, &out.heap_released_bytes, C.uint64_t(m.HeapReleased))
	setField(out, &out.stack_bytes, C.uint64_t(m.StackSys))
	setField(out, &out.sys_bytes, C.uint64_t(m.Sys))
	setField(out, &out.gc_cycles, C.uint64_t(m.NumGC))
	setField(out, &out.gomaxprocs, C.int32_t(runtime.GOMAXPROCS(0)))
	if threads.Kind() == metrics.KindUint64 {
		setField(out, &out.threads, C.int32_t(threads.Uint64()))
	}
	return 0
}

// setField stores v in *f, a member of the size-prefixed struct *s, when
// s's size covers it (options.go's field, for output structs).
func setField[S, T any](s *S, f *T, v T) {
	size := uintptr(*(*C.size_t)(unsafe.Pointer(s)))
	if uintptr(unsafe.Pointer(f))-uintptr(unsafe.Pointer(s))+unsafe.Sizeof(*f) <= size {
		*f = v
	}
}
