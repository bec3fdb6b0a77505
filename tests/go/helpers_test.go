package gotest

import (
	"context"
	"runtime"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// newLoop creates a loop owned by the calling test goroutine (locked to
// its thread for the test) and closes it at the end.
func newLoop(t *testing.T) *asyncloop.Loop {
	t.Helper()
	runtime.LockOSThread()
	l, err := asyncloop.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("loop.Close: %v", err)
		}
		runtime.UnlockOSThread()
	})
	return l
}

// runFor runs the loop until stop is called by a callback, with a safety
// timeout that stops it and fails the test.
func runWithTimeout(t *testing.T, l *asyncloop.Loop, d time.Duration) {
	t.Helper()
	timedOut := false
	h, err := l.CallLater(d, func() { timedOut = true; l.Stop() })
	if err != nil {
		t.Fatal(err)
	}
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	h.Cancel()
	if timedOut {
		t.Fatalf("loop did not stop within %v", d)
	}
}

// untilDone runs the loop until f is done or d passes.
func untilDone[T any](t *testing.T, l *asyncloop.Loop, f *asyncloop.Future[T], d time.Duration) error {
	t.Helper()
	h, err := l.CallLater(d, func() { f.Cancel() })
	if err != nil {
		t.Fatal(err)
	}
	err = l.RunUntilComplete(f)
	h.Cancel()
	return err
}

// settle runs one full iteration so that callbacks the library scheduled
// (done-callbacks that release userdata, for example) have run.
func settle(l *asyncloop.Loop) {
	l.CallSoon(func() { l.Stop() })
	l.RunForever()
}

// checkLeaks fails if more userdata entries are live than at base (taken
// with asyncloop.LiveCallbacks() when the test started).
func checkLeaks(t *testing.T, base int) {
	t.Helper()
	if n := asyncloop.LiveCallbacks() - base; n != 0 {
		t.Errorf("%d userdata entries leaked (free_cb not called?)", n)
	}
}

// bg is the context of operations that a test does not cancel.
var bg = context.Background()

// await runs the loop until f is done (5 s at most) and returns its value;
// it fails the test on an error. Call it from the test goroutine only.
func await[T any](t *testing.T, l *asyncloop.Loop, f *asyncloop.Future[T], err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, f, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	v, err := f.Result()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
