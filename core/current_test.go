package core

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// A loop set by a thread that exited is not inherited by a later thread that
// gets the same id (issue 9): the entry remembers its thread's start time.
func TestSetEventLoopOfAGoneThreadIsDropped(t *testing.T) {
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer SetEventLoop(nil)
	SetEventLoop(l)
	if got, _ := GetEventLoop(); got != l {
		t.Fatalf("GetEventLoop: %v", got)
	}
	// Pretend the entry was made by an earlier thread with this id.
	tid := int64(unix.Gettid())
	curMu.Lock()
	e := curSet[tid]
	if e.start == 0 {
		curMu.Unlock()
		t.Skip("no /proc/self/task/<tid>/stat")
	}
	e.start++
	curSet[tid] = e
	curMu.Unlock()
	if got, err := GetEventLoop(); got != nil || !errors.Is(err, ErrNoLoop) {
		t.Fatalf("GetEventLoop inherited %v, %v", got, err)
	}
	// Entries of threads that are gone are pruned by the next SetEventLoop.
	curMu.Lock()
	curSet[1<<30] = setLoop{l: l, start: 1}
	curMu.Unlock()
	SetEventLoop(nil)
	curMu.Lock()
	_, kept := curSet[1<<30]
	curMu.Unlock()
	if kept {
		t.Fatal("the entry of a thread that does not exist was kept")
	}
}
