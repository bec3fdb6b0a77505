package core

import "errors"

type futureState uint8

const (
	futurePending futureState = iota
	futureDone
	futureCancelled
)

// DoneCallback is a registered done-callback; Key identifies it for removal.
type doneCallback struct {
	fn      func(*Future)
	release func()
	key     any
	removed bool
}

// Future is asyncio's Future: a result that arrives later, with callbacks
// scheduled (call_soon) when it is done.
type Future struct {
	loop      *Loop
	state     futureState
	result    any
	err       error
	cancelMsg string
	callbacks []*doneCallback
	onCancel  func() // runs inside Cancel, before the callbacks are scheduled

	// The loop's list of pending futures (CloseForce cancels them).
	prevP, nextP *Future
}

// NewFuture creates a pending future of loop l. Until it is done it is on
// the loop's list of pending futures (CloseForce cancels them): a future
// that will never be done and is dropped stays there until the loop
// closes, unless Forget is called.
func (l *Loop) NewFuture() *Future {
	f := &Future{loop: l}
	f.nextP = l.pendingFuts
	if f.nextP != nil {
		f.nextP.prevP = f
	}
	l.pendingFuts = f
	return f
}

// unlinkPending takes f off its loop's list of pending futures.
func (f *Future) unlinkPending() {
	l := f.loop
	if f.prevP != nil {
		f.prevP.nextP = f.nextP
	} else if l.pendingFuts == f {
		l.pendingFuts = f.nextP
	} else {
		return // not on the list
	}
	if f.nextP != nil {
		f.nextP.prevP = f.prevP
	}
	f.prevP, f.nextP = nil, nil
}

// Forget takes a pending future that nobody can complete any more off its
// loop's list of pending futures (the C layer calls it once the host
// released every reference to a future of its own).
func (f *Future) Forget() {
	if f.state == futurePending {
		f.unlinkPending()
	}
}

// Loop returns the future's loop.
func (f *Future) Loop() *Loop { return f.loop }

// Done reports whether the future has a result, an error, or was cancelled.
func (f *Future) Done() bool { return f.state != futurePending }

// Cancelled reports whether the future was cancelled.
func (f *Future) Cancelled() bool { return f.state == futureCancelled }

// Cancel cancels a pending future; it returns false if already done.
func (f *Future) Cancel(msg string) bool {
	if f.state != futurePending {
		return false
	}
	f.state = futureCancelled
	f.cancelMsg = msg
	if h := f.onCancel; h != nil {
		f.onCancel = nil
		h()
	}
	f.schedule()
	return true
}

// SetResult completes the future.
func (f *Future) SetResult(v any) error {
	if f.state != futurePending {
		return ErrInvalidState
	}
	f.state = futureDone
	f.result = v
	f.schedule()
	return nil
}

// Override completes the future on behalf of its holder rather than the
// operation that made it (the C ABI's set_result / set_exception on the
// future of a connection, a pipe, a server...): the future keeps v (or
// err, when not nil), and the operation is abandoned as by Cancel (its
// onCancel hook runs; the operations check Done and release what they
// made). On a plain future it is SetResult / SetException.
func (f *Future) Override(v any, err error) error {
	if f.state != futurePending {
		return ErrInvalidState
	}
	h := f.onCancel
	f.onCancel = nil
	var e error
	if err != nil {
		e = f.SetException(err)
	} else {
		e = f.SetResult(v)
	}
	if h != nil {
		h()
	}
	return e
}

// SetException fails the future with err (must not be nil).
func (f *Future) SetException(err error) error {
	if err == nil {
		return ErrInvalid
	}
	if f.state != futurePending {
		return ErrInvalidState
	}
	f.state = futureDone
	f.err = err
	f.schedule()
	return nil
}

// Result returns the result, the error, ErrCancelled, or ErrInvalidState if
// not done.
func (f *Future) Result() (any, error) {
	switch f.state {
	case futurePending:
		return nil, ErrInvalidState
	case futureCancelled:
		return nil, f.cancelledError()
	}
	return f.result, f.err
}

// Exception returns the error (nil on success), ErrCancelled, or
// ErrInvalidState if not done.
func (f *Future) Exception() error {
	switch f.state {
	case futurePending:
		return ErrInvalidState
	case futureCancelled:
		return f.cancelledError()
	}
	return f.err
}

func (f *Future) cancelledError() error {
	if f.cancelMsg != "" {
		return &cancelError{msg: f.cancelMsg}
	}
	return ErrCancelled
}

type cancelError struct{ msg string }

func (e *cancelError) Error() string        { return "operation canceled: " + e.msg }
func (e *cancelError) Is(target error) bool { return target == ErrCancelled }

// IsCancelled reports whether err is a cancellation.
func IsCancelled(err error) bool { return errors.Is(err, ErrCancelled) }

// AddDoneCallback registers fn; release (may be nil) runs once fn ran or the
// callback was removed. key identifies it for RemoveDoneCallback.
func (f *Future) AddDoneCallback(fn func(*Future), release func(), key any) *doneCallback {
	cb := &doneCallback{fn: fn, release: release, key: key}
	if f.state != futurePending {
		f.scheduleOne(cb)
		return cb
	}
	if len(f.callbacks) == 0 && release != nil {
		l := f.loop
		if l.waiting == nil {
			l.waiting = map[*Future]struct{}{}
		}
		l.waiting[f] = struct{}{}
	}
	f.callbacks = append(f.callbacks, cb)
	return cb
}

// AddDoneCallbackOpen is AddDoneCallback for a callback that must be able
// to run: on a closed loop it registers nothing and returns ErrClosed
// (release is not run; the caller still owns what it releases).
func (f *Future) AddDoneCallbackOpen(fn func(*Future), release func(), key any) (*doneCallback, error) {
	if f.loop.IsClosed() {
		return nil, ErrClosed
	}
	return f.AddDoneCallback(fn, release, key), nil
}

// dropWaitingFutures releases the done-callbacks of futures still pending
// when the loop closes: they can never run.
func (l *Loop) dropWaitingFutures() {
	for f := range l.waiting {
		cbs := f.callbacks
		f.callbacks = nil
		for _, cb := range cbs {
			cb.removed = true
			if r := cb.release; r != nil {
				cb.release = nil
				r()
			}
		}
	}
	l.waiting = nil
}

// RemoveDoneCallback removes every pending callback whose key equals key and
// returns how many were removed.
func (f *Future) RemoveDoneCallback(key any) int {
	n := 0
	kept := f.callbacks[:0]
	for _, cb := range f.callbacks {
		if cb.key != nil && cb.key == key {
			n++
			cb.removed = true
			if r := cb.release; r != nil {
				cb.release = nil
				r()
			}
			continue
		}
		kept = append(kept, cb)
	}
	for i := len(kept); i < len(f.callbacks); i++ {
		f.callbacks[i] = nil
	}
	f.callbacks = kept
	return n
}

func (f *Future) removeCallback(target *doneCallback) {
	for i, cb := range f.callbacks {
		if cb == target {
			f.callbacks = append(f.callbacks[:i], f.callbacks[i+1:]...)
			return
		}
	}
	target.removed = true
}

func (f *Future) schedule() {
	f.unlinkPending()
	cbs := f.callbacks
	f.callbacks = nil
	delete(f.loop.waiting, f)
	for _, cb := range cbs {
		f.scheduleOne(cb)
	}
}

func (f *Future) scheduleOne(cb *doneCallback) {
	run := func() {
		if !cb.removed {
			cb.fn(f)
		}
	}
	rel := func() {
		if r := cb.release; r != nil {
			cb.release = nil
			r()
		}
	}
	if _, err := f.loop.CallSoon(run, rel); err != nil {
		// Loop closed: the callback can never run.
		rel()
	}
}
