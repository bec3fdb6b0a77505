// Package asyncloop drives libasyncloop.so (the asyncio event loop rebuilt
// as a Go engine behind a C ABI, include/asyncloop.h) from a Go program
// built without cgo, through purego.
//
// Load the library (Load, or Open with a path; NewLoop loads it too: see
// Load for where it looks, and cmd/asyncloop-lib for `go run .`), create a
// Loop, schedule work (CallSoon, CallLater, CallAt, CallSoonThreadsafe),
// open connections, servers, datagram endpoints, pipes and subprocesses
// with a protocol, and run the loop (RunForever, RunUntilComplete, Run,
// RunOnce).
//
// Go's idiom: every operation that waits takes a context.Context first and
// returns a typed *Future[T]; errors are *net.OpError, *net.DNSError or
// *fs.PathError values around *Error, so errors.Is(err, syscall.ECONNREFUSED)
// and errors.Is(err, os.ErrDeadlineExceeded) work; times are time.Time and
// time.Duration; addresses are net.Addr; Loop.Dial and Loop.Listen give a
// net.Conn and a net.Listener over the loop (net/http serves over it).
//
// Threading: the goroutine inside a Run* call is locked to its OS thread for
// the call and every callback runs there, inside that call. Other methods
// must be called from a callback or from the goroutine that owns the loop
// while it is not running; only CallSoonThreadsafe, Stop, Wakeup and the net
// adapters may be called from any goroutine. Call runtime.LockOSThread in
// the goroutine that owns the loop when the library's debug mode is on.
//
// Memory: the library keeps no Go memory beyond a call unless it is pinned;
// what it keeps for a loop's life (the event queue) is mapped outside the
// Go heap and unmapped once the loop is freed (README.md, "Memory the
// library keeps").
//
// Two Go runtimes share the process; see README.md ("Two Go runtimes in one
// process") for SIGURG, which the library gives back to the host at load,
// and SIGURGMode for what was found.
package asyncloop
