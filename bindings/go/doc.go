// Package asyncloop drives libasyncloop.so (the asyncio event loop rebuilt
// as a Go engine behind a C ABI, include/asyncloop.h) from a Go program
// built without cgo, through purego.
//
// Load the library (Load, or Open with a path; NewLoop loads it too), create
// a Loop, schedule work (CallSoon, CallLater, CallAt, CallSoonThreadsafe),
// open TCP servers and connections (CreateServer, CreateConnection) with a
// Protocol, and run the loop (RunForever, RunUntilComplete, Run, RunOnce).
//
// Threading: the goroutine inside a Run* call is locked to its OS thread for
// the call and every callback runs there, inside that call. Other methods
// must be called from a callback or from the goroutine that owns the loop
// while it is not running; only CallSoonThreadsafe, Stop and Wakeup may be
// called from any goroutine. Call runtime.LockOSThread in the goroutine that
// owns the loop when the library's debug mode is on.
//
// Errors are *Error values with the library's negative ALOOP_E* Code;
// codes equal to -errno unwrap to syscall.Errno, so
// errors.Is(err, syscall.ECONNREFUSED) works.
//
// Two Go runtimes share the process; see README.md ("Two Go runtimes in one
// process") for what that means for SIGURG and asynchronous preemption, and
// SIGURGMode for what was arranged at load time.
package asyncloop
