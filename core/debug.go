package core

import (
	"fmt"
	"math"
)

// Debug mode (asyncio's): with SetDebug(true)
//   - a callback, timer, done-callback or the handling of one fd's I/O
//     (protocol callbacks included) that runs SlowCallbackDuration or longer
//     is reported to the exception handler;
//   - CallSoon and CallAt from a thread other than the running loop's fail
//     with ErrNotLoopThread (the C ABI checks every non-thread-safe call);
//   - Close reports every resource still open to the exception handler
//     before it returns ErrBusy;
//   - connection errors and failed TLS handshakes of accepted connections
//     are reported too.

// SetSlowCallbackDuration sets asyncio's slow_callback_duration in seconds
// (default 0.1; +Inf: never). ErrInvalid for a negative or NaN value.
func (l *Loop) SetSlowCallbackDuration(seconds float64) error {
	if math.IsNaN(seconds) || seconds < 0 {
		return ErrInvalid
	}
	l.SlowCallback = seconds
	return nil
}

// SlowCallbackDuration returns the slow-callback threshold in seconds.
func (l *Loop) SlowCallbackDuration() float64 { return l.SlowCallback }

// Loop returns the handle's loop.
func (h *Handle) Loop() *Loop { return h.loop }

func ownerKind(o any) string {
	switch o.(type) {
	case *Transport:
		return "transport"
	case *Server:
		return "server"
	case *DatagramTransport:
		return "datagram endpoint"
	case *Subprocess:
		return "subprocess"
	case nil:
		return "reader/writer"
	}
	return "pending operation"
}

// dispatchTimed is dispatch in debug mode: slow I/O handling is reported.
func (l *Loop) dispatchTimed(fd int, events uint32) {
	var owner any
	if fd >= 0 && fd < len(l.fds) && l.fds[fd] != nil {
		owner = l.fds[fd].owner
	}
	t0 := l.Time()
	l.dispatch(fd, events)
	if dt := l.Time() - t0; dt >= l.SlowCallback {
		ctx := &ExceptionContext{Message: fmt.Sprintf("Executing I/O callback of fd %d (%s) took %.3f seconds", fd, ownerKind(owner), dt)}
		switch o := owner.(type) {
		case *Transport:
			ctx.Transport = o
		case *Server:
			ctx.Server = o
		}
		l.CallExceptionHandler(ctx)
	}
}

// reportUnclosed reports (debug mode) what keeps Close from closing the loop.
func (l *Loop) reportUnclosed() {
	seen := map[any]bool{}
	counted := 0
	for fd, e := range l.fds {
		if e == nil {
			continue
		}
		if o := e.owner; o != nil && !seen[o] {
			seen[o] = true
			if p, ok := o.(*Subprocess); ok && p.IsClosing() {
				continue // a closed subprocess waiting for its child does not count
			}
			ctx := &ExceptionContext{Err: ErrBusy}
			switch o := o.(type) {
			case *Transport:
				ctx.Message = fmt.Sprintf("unclosed transport (fd %d) at loop close", fd)
				ctx.Transport = o
			case *Server:
				ctx.Message = fmt.Sprintf("unclosed server (listening on fd %d) at loop close", fd)
				ctx.Server = o
			case *DatagramTransport:
				ctx.Message = fmt.Sprintf("unclosed datagram endpoint (fd %d) at loop close", fd)
			case *Subprocess:
				ctx.Message = fmt.Sprintf("unclosed subprocess (pid %d) at loop close", o.Pid())
			default:
				ctx.Message = fmt.Sprintf("pending operation on fd %d at loop close", fd)
			}
			counted++
			l.CallExceptionHandler(ctx)
		}
		if e.watchers > 0 {
			l.CallExceptionHandler(&ExceptionContext{Err: ErrBusy,
				Message: fmt.Sprintf("fd %d is still watched (add_reader/add_writer) at loop close", fd)})
		}
	}
	for p := range l.procs {
		if !seen[p] && !p.IsClosing() {
			seen[p] = true
			counted++
			l.CallExceptionHandler(&ExceptionContext{Err: ErrBusy,
				Message: fmt.Sprintf("unclosed subprocess (pid %d) at loop close", p.Pid())})
		}
	}
	if rest := l.objects - counted; rest > 0 {
		l.CallExceptionHandler(&ExceptionContext{Err: ErrBusy,
			Message: fmt.Sprintf("%d more pending operations or resources at loop close (DNS lookups, executor jobs, sock_* operations, servers not serving)", rest)})
	}
}
