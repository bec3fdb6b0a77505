package asyncloop

import (
	"unsafe"

	"github.com/ebitengine/purego"
)

// Hot paths call the library through purego.SyscallN, which skips the
// reflection of functions bound with purego.RegisterLibFunc (see
// bench/seam_go for the difference). Only for functions whose arguments are
// all integers or pointers.

func rawTransportWrite(t uintptr, p unsafe.Pointer, n uintptr) int32 {
	r1, _, _ := purego.SyscallN(lib.rawTransportWrite, t, uintptr(p), n)
	return int32(r1)
}

func rawCallSoon(loop, cbfn, ud, free uintptr, out *uintptr) int32 {
	r1, _, _ := purego.SyscallN(lib.rawCallSoon, loop, cbfn, ud, free, uintptr(unsafe.Pointer(out)))
	return int32(r1)
}

func rawCallSoonThreadsafe(loop, cbfn, ud, free uintptr, out *uintptr) int32 {
	r1, _, _ := purego.SyscallN(lib.rawCallSoonThreadsafe, loop, cbfn, ud, free, uintptr(unsafe.Pointer(out)))
	return int32(r1)
}

func rawLoopTime(loop uintptr, out *float64) int32 {
	r1, _, _ := purego.SyscallN(lib.rawLoopTime, loop, uintptr(unsafe.Pointer(out)))
	return int32(r1)
}

func rawLoopPollArgs(a *cPollArgs) int32 {
	r1, _, _ := purego.SyscallN(lib.rawLoopPollArgs, uintptr(unsafe.Pointer(a)))
	return int32(r1)
}

func rawLoopTakeStop(loop uintptr) int32 {
	r1, _, _ := purego.SyscallN(lib.rawLoopTakeStop, loop)
	return int32(r1)
}

func rawDatagramSendto(d uintptr, p unsafe.Pointer, n uintptr, host *byte, port int32) int32 {
	r1, _, _ := purego.SyscallN(lib.rawDatagramSendto, d, uintptr(p), n, uintptr(unsafe.Pointer(host)), uintptr(port))
	return int32(r1)
}
