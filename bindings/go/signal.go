package asyncloop

import (
	"os"
	"syscall"
)

// AddSignalHandler calls fn on the loop's thread when sig arrives
// (asyncio's add_signal_handler; a handler already set for sig on this
// loop is replaced). Signals are coalesced, but a call always follows the
// last signal. While the library handles sig, the host's own handling of
// it (signal.Notify channels, Go's default action) is not used; removing
// the last handler gives it back. ALOOP_EINVAL for SIGKILL, SIGSTOP and
// numbers that are not signals.
func (l *Loop) AddSignalHandler(sig os.Signal, fn func()) error {
	if err := l.check(); err != nil {
		return err
	}
	if fn == nil {
		return errInvalid("nil func")
	}
	s, ok := sig.(syscall.Signal)
	if !ok {
		return errInvalid("not a syscall.Signal")
	}
	key := reg.add(&signalEntry{loop: l, fn: fn})
	_, err := do(func() int32 { return lib.addSignalHandler(l.handle(), int32(s), cb.signal, key, cb.free) })
	return err
}

// RemoveSignalHandler removes the handler of sig; it reports whether one
// was set.
func (l *Loop) RemoveSignalHandler(sig os.Signal) (bool, error) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return false, errInvalid("not a syscall.Signal")
	}
	rc, err := l.call(func(h uintptr) int32 { return lib.removeSignalHandler(h, int32(s)) })
	return rc > 0, err
}
