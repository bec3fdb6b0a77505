package core

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

func onOtherThread(fn func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		fn()
		close(done)
	}()
	<-done
}

func TestCurrentLoop(t *testing.T) {
	h := newHarness(t)
	defer SetEventLoop(nil)
	SetEventLoop(nil)
	if RunningLoop() != nil {
		t.Fatal("a running loop outside Run")
	}
	if _, err := GetEventLoop(); !errors.Is(err, ErrNoLoop) {
		t.Fatalf("GetEventLoop: %v", err)
	}
	SetEventLoop(h.l)
	if l, err := GetEventLoop(); l != h.l || err != nil {
		t.Fatalf("GetEventLoop after SetEventLoop: %v %v", l, err)
	}
	// Another thread has its own (none).
	onOtherThread(func() {
		if _, err := GetEventLoop(); !errors.Is(err, ErrNoLoop) {
			t.Errorf("other thread: %v", err)
		}
	})
	other, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	SetEventLoop(other)
	var running, current, inner, outerAgain *Loop
	var otherThread *Loop
	h.l.CallSoon(func() {
		running = RunningLoop()
		current, _ = GetEventLoop() // the running loop wins
		onOtherThread(func() { otherThread = RunningLoop() })
		// A nested run of another loop on this thread.
		other.CallSoon(func() { inner = RunningLoop() }, nil)
		if err := other.RunOnceTimeout(0); err != nil {
			t.Errorf("nested run: %v", err)
		}
		outerAgain = RunningLoop()
	}, nil)
	h.runFor(10 * time.Millisecond)
	if running != h.l || current != h.l || otherThread != nil {
		t.Fatalf("inside a callback: running %p current %p other thread %p (loop %p)", running, current, otherThread, h.l)
	}
	if inner != other || outerAgain != h.l {
		t.Fatalf("nested: inner %p (want %p), after %p (want %p)", inner, other, outerAgain, h.l)
	}
	if l, _ := GetEventLoop(); l != other {
		t.Fatal("the set loop is back after the run")
	}
	ClearEventLoop(other)
	if _, err := GetEventLoop(); !errors.Is(err, ErrNoLoop) {
		t.Fatalf("after ClearEventLoop: %v", err)
	}
}
