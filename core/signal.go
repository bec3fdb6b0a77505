package core

import (
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// Unix signal handlers (asyncio's add_signal_handler / remove_signal_handler).
//
// Signals are received with os/signal.Notify, one buffered channel of
// capacity 1 per signal number, read by one goroutine per signal that only
// posts to the loops (CallSoonThreadsafe); handlers run on their loop's
// thread. Deliveries are coalesced the way POSIX coalesces pending signals:
// a signal that arrives while an earlier one of the same number is still
// undelivered to a loop merges with it, but a handler call always follows
// the last signal (the pending mark is cleared before the handler runs).
// Several loops, in any threads, may handle the same signal: each gets its
// own call. When the last handler of a signal in the process is removed,
// signal.Stop gives the signal back to the handler installed before the Go
// runtime took it (in a c-shared library: the host's handler, or SIG_DFL).
//
// Removing the last handler of a signal retires its channel: signal.Stop
// returns once no more signals can reach it, but a signal already in it (or
// already taken by its dispatcher) is still in flight. Such a signal arrived
// while only the removed handlers existed, so the retired channel's
// dispatcher drops it: a loop subscribing afterwards is served by a new
// channel and must not get calls for signals that arrived before it did.

// NSIG is one more than the highest signal number (Linux).
const NSIG = 65

// ValidSignal reports whether sig can have a handler: 1..NSIG-1 except
// SIGKILL, SIGSTOP and the two real-time signals glibc reserves (32, 33).
func ValidSignal(sig int) bool {
	switch {
	case sig < 1 || sig >= NSIG:
		return false
	case sig == int(syscall.SIGKILL), sig == int(syscall.SIGSTOP):
		return false
	case sig == 32 || sig == 33:
		return false
	}
	return true
}

// sigDelivery is one loop's subscription to one signal.
type sigDelivery struct {
	loop    *Loop
	sig     int
	pending atomic.Bool // a call is posted to the loop and has not started
}

// sigEntry is a loop's handler for one signal (loop thread only).
type sigEntry struct {
	fn      func(sig int)
	release func()
	d       *sigDelivery
}

var sigReg struct {
	mu    sync.Mutex
	loops map[int]map[*Loop]*sigDelivery
	chans map[int]chan os.Signal // the current channel of each signal
	// dispatchers counts the sigDispatch goroutines still running,
	// including those of retired channels that are draining (tests).
	dispatchers int
}

func sigSubscribe(d *sigDelivery) {
	sigReg.mu.Lock()
	defer sigReg.mu.Unlock()
	if sigReg.loops == nil {
		sigReg.loops = make(map[int]map[*Loop]*sigDelivery)
		sigReg.chans = make(map[int]chan os.Signal)
	}
	m := sigReg.loops[d.sig]
	if m == nil {
		m = make(map[*Loop]*sigDelivery)
		sigReg.loops[d.sig] = m
	}
	m[d.loop] = d
	if sigReg.chans[d.sig] == nil {
		ch := make(chan os.Signal, 1)
		sigReg.chans[d.sig] = ch
		sigReg.dispatchers++
		go sigDispatch(d.sig, ch)
		signal.Notify(ch, syscall.Signal(d.sig))
	}
}

func sigUnsubscribe(d *sigDelivery) {
	sigReg.mu.Lock()
	var ch chan os.Signal
	if m := sigReg.loops[d.sig]; m != nil && m[d.loop] == d {
		delete(m, d.loop)
		if len(m) == 0 {
			delete(sigReg.loops, d.sig)
			ch = sigReg.chans[d.sig]
			delete(sigReg.chans, d.sig)
		}
	}
	if ch != nil {
		// Stop returns once no more signals can reach ch; the signal
		// goes back to its previous disposition. Kept under the lock so
		// that a concurrent subscribe to the same signal Notifies after.
		signal.Stop(ch)
	}
	sigReg.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// sigDispatch forwards the signals received on ch to every subscribed loop.
// It never calls into a host: it only posts to the loops.
func sigDispatch(sig int, ch chan os.Signal) {
	defer func() {
		sigReg.mu.Lock()
		sigReg.dispatchers--
		sigReg.mu.Unlock()
	}()
	var post []*sigDelivery
	for range ch {
		post = post[:0]
		sigReg.mu.Lock()
		if sigReg.chans[sig] != ch {
			// ch was retired (its last handler removed) after this
			// signal reached it; the loops now subscribed came later.
			sigReg.mu.Unlock()
			continue
		}
		for _, d := range sigReg.loops[sig] {
			if d.pending.CompareAndSwap(false, true) {
				post = append(post, d)
			}
		}
		sigReg.mu.Unlock()
		for _, d := range post {
			if _, err := d.loop.CallSoonThreadsafe(d.run, nil); err != nil {
				d.pending.Store(false) // the loop is closed
			}
		}
	}
}

// run calls the loop's handler (loop thread).
func (d *sigDelivery) run() {
	d.pending.Store(false) // a signal from now on posts a new call
	e := d.loop.sigs[d.sig]
	if e == nil || e.d != d {
		return // removed meanwhile
	}
	e.fn(d.sig)
}

// AddSignalHandler calls fn(sig) on the loop thread whenever sig arrives
// (asyncio's add_signal_handler). A handler already set for sig on this loop
// is replaced (its release runs). release (may be nil) runs once when the
// handler is removed or replaced, or when the loop closes. ErrInvalid for
// SIGKILL, SIGSTOP and numbers that are not signals.
func (l *Loop) AddSignalHandler(sig int, fn func(sig int), release func()) error {
	if l.closed {
		return ErrClosed
	}
	if fn == nil || !ValidSignal(sig) {
		return ErrInvalid
	}
	if e := l.sigs[sig]; e != nil {
		old := e.release
		e.fn, e.release = fn, release
		if old != nil {
			old()
		}
		return nil
	}
	if l.sigs == nil {
		l.sigs = make(map[int]*sigEntry)
	}
	d := &sigDelivery{loop: l, sig: sig}
	l.sigs[sig] = &sigEntry{fn: fn, release: release, d: d}
	sigSubscribe(d)
	return nil
}

// RemoveSignalHandler removes the handler of sig; it reports whether one was
// set. ErrInvalid for numbers that cannot have a handler.
func (l *Loop) RemoveSignalHandler(sig int) (bool, error) {
	if !ValidSignal(sig) {
		return false, ErrInvalid
	}
	e := l.sigs[sig]
	if e == nil {
		return false, nil
	}
	delete(l.sigs, sig)
	sigUnsubscribe(e.d)
	if r := e.release; r != nil {
		e.release = nil
		r()
	}
	return true, nil
}

// closeSignals removes every handler (Loop.Close, as asyncio's close()).
func (l *Loop) closeSignals() {
	for sig := range l.sigs {
		l.RemoveSignalHandler(sig)
	}
}

// SignalHandled reports whether any loop of the process has a handler for
// sig.
func SignalHandled(sig int) bool {
	sigReg.mu.Lock()
	defer sigReg.mu.Unlock()
	return len(sigReg.loops[sig]) > 0
}
