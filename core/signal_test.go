package core

import (
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary keeps its own interest in SIGUSR1/SIGUSR2 so that a
// signal arriving after a test removed its last handler does not kill it
// (in a plain Go program the default action would apply).
func init() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGUSR1, unix.SIGUSR2)
	go func() {
		for range ch {
		}
	}()
}

func TestSignalValidation(t *testing.T) {
	h := newHarness(t)
	for _, sig := range []int{0, -1, NSIG, 1000, int(unix.SIGKILL), int(unix.SIGSTOP), 32, 33} {
		if err := h.l.AddSignalHandler(sig, func(int) {}, nil); err != ErrInvalid {
			t.Errorf("AddSignalHandler(%d): %v, want ErrInvalid", sig, err)
		}
		if _, err := h.l.RemoveSignalHandler(sig); err != ErrInvalid {
			t.Errorf("RemoveSignalHandler(%d): %v, want ErrInvalid", sig, err)
		}
	}
	if err := h.l.AddSignalHandler(int(unix.SIGUSR1), nil, nil); err != ErrInvalid {
		t.Errorf("nil fn: %v", err)
	}
	if ok, err := h.l.RemoveSignalHandler(int(unix.SIGUSR1)); ok || err != nil {
		t.Errorf("remove with none set: %v %v", ok, err)
	}
}

func TestSignalHandlerRunsOnLoop(t *testing.T) {
	h := newHarness(t)
	calls := 0
	rel1, rel2 := 0, 0
	if err := h.l.AddSignalHandler(int(unix.SIGUSR1), func(int) { calls += 100 }, func() { rel1++ }); err != nil {
		t.Fatal(err)
	}
	// Replacing releases the previous handler.
	if err := h.l.AddSignalHandler(int(unix.SIGUSR1), func(sig int) {
		h.onLoop("signal handler")
		if sig != int(unix.SIGUSR1) {
			t.Errorf("handler got signal %d", sig)
		}
		calls++
	}, func() { rel2++ }); err != nil {
		t.Fatal(err)
	}
	if rel1 != 1 {
		t.Fatalf("replaced handler released %d times", rel1)
	}
	if h.l.Alive() {
		t.Fatalf("a signal handler alone must not keep the loop alive")
	}
	unix.Kill(os.Getpid(), unix.SIGUSR1)
	h.runUntil("handler call", 5*time.Second, func() bool { return calls > 0 })
	if calls != 1 {
		t.Fatalf("calls %d, want 1", calls)
	}
	ok, err := h.l.RemoveSignalHandler(int(unix.SIGUSR1))
	if !ok || err != nil || rel2 != 1 {
		t.Fatalf("remove: %v %v released %d", ok, err, rel2)
	}
	unix.Kill(os.Getpid(), unix.SIGUSR1)
	h.runFor(50 * time.Millisecond)
	if calls != 1 {
		t.Fatalf("a removed handler ran")
	}
}

func TestSignalBurstKeepsLast(t *testing.T) {
	h := newHarness(t)
	const n = 1000
	var sent atomic.Int64
	calls := 0
	lastSeen := int64(-1)
	if err := h.l.AddSignalHandler(int(unix.SIGUSR2), func(int) {
		calls++
		lastSeen = sent.Load()
	}, nil); err != nil {
		t.Fatal(err)
	}
	defer h.l.RemoveSignalHandler(int(unix.SIGUSR2))
	go func() {
		pid := os.Getpid()
		for i := 1; i <= n; i++ {
			unix.Kill(pid, unix.SIGUSR2)
			sent.Store(int64(i))
		}
	}()
	// A handler call must start after the last kill returned.
	h.runUntil("a call after the last signal", 10*time.Second, func() bool { return lastSeen == n })
	if calls < 1 || calls > n {
		t.Fatalf("%d calls for %d signals", calls, n)
	}
	t.Logf("%d signals -> %d handler calls", n, calls)
}

// Two loops in two threads: each gets its own handlers, and both get a
// signal they both handle.
func TestSignalTwoLoops(t *testing.T) {
	h := newHarness(t)
	var mainUsr1, mainUsr2 atomic.Int32
	h.l.AddSignalHandler(int(unix.SIGUSR1), func(int) { mainUsr1.Add(1) }, nil)

	var otherUsr1, otherUsr2 atomic.Int32
	ready := make(chan *Loop)
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		l2, err := NewLoop()
		if err != nil {
			done <- err
			return
		}
		tid := unix.Gettid()
		l2.AddSignalHandler(int(unix.SIGUSR2), func(int) {
			if unix.Gettid() != tid {
				t.Errorf("second loop's handler off its thread")
			}
			otherUsr2.Add(1)
		}, nil)
		l2.AddSignalHandler(int(unix.SIGUSR1), func(int) { otherUsr1.Add(1) }, nil)
		ready <- l2
		err = l2.Run(RunDefault)
		if err == nil {
			err = l2.Close() // removes its handlers
		}
		done <- err
	}()
	l2 := <-ready
	pid := os.Getpid()
	unix.Kill(pid, unix.SIGUSR2)
	h.runUntil("second loop's SIGUSR2", 5*time.Second, func() bool { return otherUsr2.Load() == 1 })
	if mainUsr2.Load() != 0 {
		t.Fatalf("main loop got a signal it has no handler for")
	}
	unix.Kill(pid, unix.SIGUSR1)
	h.runUntil("both loops' SIGUSR1", 5*time.Second, func() bool { return mainUsr1.Load() == 1 && otherUsr1.Load() == 1 })
	l2.Stop()
	if err := <-done; err != nil {
		t.Fatalf("second loop: %v", err)
	}
	// The closed loop's handlers are gone; the main loop's still works.
	unix.Kill(pid, unix.SIGUSR1)
	h.runUntil("main SIGUSR1 again", 5*time.Second, func() bool { return mainUsr1.Load() == 2 })
	if otherUsr1.Load() != 1 {
		t.Fatalf("a closed loop's handler ran")
	}
	h.l.RemoveSignalHandler(int(unix.SIGUSR1))
	sigReg.mu.Lock()
	left := len(sigReg.loops) + len(sigReg.chans)
	sigReg.mu.Unlock()
	if left != 0 {
		t.Fatalf("signal registry not empty after every handler was removed: %d", left)
	}
}

func TestSignalCloseReleases(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	released := 0
	l.AddSignalHandler(int(unix.SIGUSR1), func(int) {}, func() { released++ })
	l.AddSignalHandler(int(unix.SIGUSR2), func(int) {}, func() { released++ })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if released != 2 {
		t.Fatalf("Close released %d handlers, want 2", released)
	}
	if err := l.AddSignalHandler(int(unix.SIGUSR1), func(int) {}, nil); err != ErrClosed {
		t.Fatalf("add after close: %v", err)
	}
}
