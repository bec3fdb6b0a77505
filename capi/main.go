// Command capi is libasyncloop.so: the C ABI of asyncloop, built with
// `go build -buildmode=c-shared`. It only translates: it resolves handles,
// validates arguments, calls package core, maps errors to ALOOP_E* codes,
// recovers panics, and calls the host's function pointers through the C
// trampolines in trampolines.h. The contract is include/asyncloop.h.
//
// The library's runtime runs without asynchronous preemption (issue 9):
// the Go runtime preempts goroutines by sending SIGURG to their threads,
// so a C host that asked for SIGURG (aloop_add_signal_handler) had its
// handler called ~30 times a second with nobody sending SIGURG, and a Go
// host lost its own preemption signals to the library's handler. Nothing
// in the library needs it: the loop thread makes system calls all the
// time, and its goroutines block or call functions (cooperative
// preemption points); a call-free loop would delay the library's garbage
// collector, not break anything else. Measured: see docs/architecture.md.
// GODEBUG=asyncpreemptoff=1 cannot be set with a //go:debug directive (the
// go command only takes the settings of internal/godebugs), so the build
// links it in as the runtime's default GODEBUG:
//
//	go build -buildmode=c-shared -ldflags=-X=runtime.godebugDefault=asyncpreemptoff=1 ./capi
//
// (CMakeLists.txt, ALOOP_GO_LDFLAGS); a GODEBUG in the environment still
// applies on top. tests/c/test-signal.c sigurg_only_when_sent fails on a
// library built without it.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#include "trampolines.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
)

func main() {}

// ---------------------------------------------------------------------------
// Errors.

// setLastError records msg as the calling thread's last error, in the
// thread's own storage (capi/lasterror.c): exports run on the host's thread.
func setLastError(msg string) {
	C.al_set_last_error(C.CString(msg))
}

// fail records a detailed message and returns code.
func fail(code C.int, format string, args ...any) C.int {
	setLastError(fmt.Sprintf(format, args...))
	return code
}

// failErr maps err to its code and records its message.
func failErr(err error) C.int {
	setLastError(err.Error())
	return errCode(err)
}

func errCode(err error) C.int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, core.ErrCert):
		return C.ALOOP_ECERT
	case errors.Is(err, core.ErrTLS):
		return C.ALOOP_ETLS
	case errors.Is(err, core.ErrNoLoop):
		return C.ALOOP_ENOLOOP
	case errors.Is(err, core.ErrClosed):
		return C.ALOOP_ECLOSED
	case errors.Is(err, core.ErrRunning), errors.Is(err, core.ErrBusy):
		return C.ALOOP_EBUSY
	case errors.Is(err, core.ErrInvalidState):
		return C.ALOOP_ESTATE
	case errors.Is(err, core.ErrCancelled):
		return C.ALOOP_ECANCELED
	case errors.Is(err, core.ErrNotLoopThread):
		return C.ALOOP_ENOTLOOPTHREAD
	case errors.Is(err, core.ErrStopped):
		return C.ALOOP_ESTOPPED
	case errors.Is(err, core.ErrResolve):
		return C.ALOOP_ERESOLVE
	case errors.Is(err, core.ErrInvalid):
		return C.ALOOP_EINVAL
	}
	var ce *core.CodedError
	if errors.As(err, &ce) {
		return C.int(ce.Code)
	}
	if en := core.Errno(err); en != 0 {
		// Only codes of the header's list; the message names the errno.
		if c := -C.int(en); C.al_errno_listed(c) != 0 {
			return c
		}
	}
	return C.ALOOP_EUNKNOWN
}

//export aloop_last_error
func aloop_last_error(buf *C.char, buflen C.size_t) (rc C.int) {
	defer guard(&rc)
	if buf == nil || buflen == 0 {
		return C.ALOOP_EINVAL
	}
	msg := ""
	if p := C.al_get_last_error(); p != nil {
		msg = C.GoString(p)
	}
	return C.int(copyCString(buf, buflen, msg))
}

// maxLen bounds the lengths a host passes: no buffer is larger, and a
// larger value (SIZE_MAX, a negative int cast to size_t) must be
// ALOOP_EINVAL, not a panic in unsafe.Slice. The size of an output buffer
// is only an upper bound and is clamped to it.
const maxLen = C.size_t(1) << 40

//export aloop_live_handles
func aloop_live_handles(out *C.size_t) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_count is NULL")
	}
	inject()
	*out = C.size_t(reg.count())
	return 0
}

// copyCString copies s (truncated) with a NUL into buf; returns len(s).
func copyCString(buf *C.char, buflen C.size_t, s string) int {
	if buflen > maxLen {
		buflen = maxLen
	}
	dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(buflen))
	n := copy(dst[:len(dst)-1], s)
	dst[n] = 0
	return len(s)
}

// copyHost copies a numeric host into buf, failing with ENOSPACE when it
// does not fit.
func copyHost(buf *C.char, buflen C.size_t, s string) C.int {
	if buf == nil {
		return 0
	}
	if buflen < C.size_t(len(s)+1) {
		return fail(C.ALOOP_ENOSPACE, "host buffer of %d bytes is too small for %q", uint64(buflen), s)
	}
	copyCString(buf, buflen, s)
	return 0
}

// ---------------------------------------------------------------------------
// Panic recovery and fault injection.

// ASYNCLOOP_FAULT_INJECT=1 makes every export panic once its arguments are
// decoded; a comma-separated list of export names limits it to those. Used
// by tests/c/test-panic.c to prove the recovery path.
var faultAll, faultNames = parseFaultInject(os.Getenv("ASYNCLOOP_FAULT_INJECT"))

func parseFaultInject(v string) (bool, map[string]bool) {
	if v == "" {
		return false, nil
	}
	if v == "1" {
		return true, nil
	}
	names := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names["main."+n] = true
			if n == "aloop_transport_write" { // C (write.c) in front of Go
				names["main.al_transport_write_go"] = true
			}
			if n == "aloop_datagram_sendto" { // C (dgsend.c) in front of Go
				names["main.al_datagram_sendto_go"] = true
			}
		}
	}
	return false, names
}

// guard must be deferred first in every export: a panic becomes
// ALOOP_EPANIC with the panic and stack as the last error.
func guard(rc *C.int) {
	if r := recover(); r != nil {
		*rc = C.ALOOP_EPANIC
		setLastError(fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
	}
}

// inject panics when fault injection covers an export on the call stack.
func inject() {
	if faultAll {
		panic("ASYNCLOOP_FAULT_INJECT")
	}
	if faultNames == nil {
		return
	}
	// Any export on the stack counts, so helpers doing an export's work
	// inject on its behalf.
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		if faultNames[f.Function] {
			panic("ASYNCLOOP_FAULT_INJECT")
		}
		if !more {
			return
		}
	}
}

// failArg fails with ALOOP_EINVAL (msg) for a bad argument of an export that
// takes handle h, or with get's error when h is bad too: that comes first.
func failArg[T any](h C.uintptr_t, get func(C.uintptr_t) (*T, C.int), msg string) C.int {
	if _, rc := get(h); rc != 0 {
		return rc
	}
	return fail(C.ALOOP_EINVAL, "%s", msg)
}

// with resolves handle h with get, then (after fault injection for the
// calling export) runs op on its object: the whole body of an export that
// takes one handle and checks no other argument before it acts.
func with[T any](h C.uintptr_t, get func(C.uintptr_t) (*T, C.int), op func(*T) C.int) C.int {
	obj, rc := get(h)
	if obj == nil {
		return rc
	}
	inject()
	return op(obj)
}

// ownedUD is the userdata an export owns until it hands it off to core or
// drops it (free_cb) on failure. Deferred after guard, onPanic drops it when
// the export panics before the hand-off, so that a failing call (ALOOP_EPANIC
// included) always runs free_cb exactly once.
type ownedUD struct {
	free, ud C.uintptr_t
	done     bool
}

func own(free, ud C.uintptr_t) *ownedUD { return &ownedUD{free: free, ud: ud} }

func (o *ownedUD) release() {
	if !o.done {
		o.done = true
		callFree(o.free, o.ud)
	}
}

func (o *ownedUD) handOff() { o.done = true }

func (o *ownedUD) onPanic() {
	if o.done {
		return
	}
	if r := recover(); r != nil {
		o.release()
		panic(r) // on to guard
	}
}

// hostData is a host's userdata with its free_cb, dropped exactly once.
type hostData struct {
	ud, free C.uintptr_t
	released bool
	adopted  bool // an object took the userdata over (its connection_made ran)
}

func (d *hostData) release() {
	if !d.released {
		d.released = true
		callFree(d.free, d.ud)
	}
}

func callFree(free C.uintptr_t, ud C.uintptr_t) {
	if free != 0 {
		C.al_call_free(free, ud)
	}
}

// releaser returns a function calling free(ud) once, or nil.
func releaser(free, ud C.uintptr_t) func() {
	if free == 0 {
		return nil
	}
	return func() { C.al_call_free(free, ud) }
}

func goString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}
