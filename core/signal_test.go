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

// raise sends sig to the calling thread. Unlike kill(getpid()), which the
// kernel may deliver to another thread after kill returns, a signal sent to
// the calling thread reaches the Go runtime before the call returns, so a
// test knows when its signal has arrived.
func raise(t *testing.T, sig int) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.Signal(sig)); err != nil {
		t.Errorf("tgkill(%d): %v", sig, err)
	}
}

// settleSignals returns once the Go runtime has handed every signal that
// has arrived to the os/signal channels (signal.Stop waits for that). The
// init channel above keeps the signals caught meanwhile.
func settleSignals(sigs ...os.Signal) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	signal.Stop(ch)
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
	// Raised on this thread so that it has arrived when runFor starts, and
	// settled so that it cannot reach a handler of the next test.
	raise(t, int(unix.SIGUSR1))
	h.runFor(50 * time.Millisecond)
	settleSignals(unix.SIGUSR1)
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
	// The first n-1 signals come from another thread while the loop runs
	// their handlers. Each is raised on the sending thread, so every one
	// has arrived when the goroutine ends (and, with the handler removal
	// that retires the channel, none is left for the next test).
	burst := make(chan struct{})
	go func() {
		defer close(burst)
		for i := 1; i < n; i++ {
			raise(t, int(unix.SIGUSR2))
			sent.Store(int64(i))
		}
	}()
	defer func() { <-burst }()
	h.runUntil("the burst to be sent", 10*time.Second, func() bool {
		select {
		case <-burst:
			return true
		default:
			return false
		}
	})
	// The last one is raised by the loop thread, between iterations: no
	// handler can start between its arrival and sent.Store(n), so
	// lastSeen == n proves a call started after the last signal arrived.
	// (Raised from the burst goroutine, the whole call could run before
	// that goroutine got to sent.Store(n): no call would see n.)
	raise(t, int(unix.SIGUSR2))
	sent.Store(n)
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
	ready := make(chan *Loop, 1)
	done := make(chan error, 1)
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
	var l2 *Loop
	select {
	case l2 = <-ready:
	case err := <-done:
		t.Fatalf("second loop: %v", err)
	}
	// If the test fails before the end, stop and close the second loop
	// anyway: left running, its handlers would stay registered.
	joined := false
	join := func() error {
		if joined {
			return nil
		}
		joined = true
		l2.Stop()
		return <-done
	}
	t.Cleanup(func() { join() })
	pid := os.Getpid()
	unix.Kill(pid, unix.SIGUSR2)
	h.runUntil("second loop's SIGUSR2", 5*time.Second, func() bool { return otherUsr2.Load() == 1 })
	if mainUsr2.Load() != 0 {
		t.Fatalf("main loop got a signal it has no handler for")
	}
	unix.Kill(pid, unix.SIGUSR1)
	h.runUntil("both loops' SIGUSR1", 5*time.Second, func() bool { return mainUsr1.Load() == 1 && otherUsr1.Load() == 1 })
	if err := join(); err != nil {
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

// A signal that reached a channel before its last handler was removed must
// not be delivered to a handler added afterwards. The dispatcher of the
// retired channel is held (posting to this loop, whose thread-safe queue the
// test locks) while the second signal waits in the channel; the handler is
// removed and a new one added; then the old dispatcher is let go.
func TestSignalRetiredChannelNotDelivered(t *testing.T) {
	h := newHarness(t)
	sig := int(unix.SIGUSR2)
	dispatchers := func() int {
		sigReg.mu.Lock()
		defer sigReg.mu.Unlock()
		return sigReg.dispatchers
	}
	waitDispatchers := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for dispatchers() != n {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %d dispatchers, want %d", what, dispatchers(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Dispatchers of channels retired by earlier tests end by themselves.
	waitDispatchers("earlier dispatchers to end", 0)

	calls1, calls2 := 0, 0
	if err := h.l.AddSignalHandler(sig, func(int) { calls1++ }, nil); err != nil {
		t.Fatal(err)
	}
	sigReg.mu.Lock()
	ch1 := sigReg.chans[sig]
	sigReg.mu.Unlock()
	if ch1 == nil || dispatchers() != 1 {
		t.Fatalf("no channel or dispatcher after AddSignalHandler")
	}

	unlocked := false
	h.l.tsMu.Lock()
	defer func() {
		if !unlocked {
			h.l.tsMu.Unlock()
		}
	}()
	// First signal: the dispatcher takes it and blocks posting it here.
	raise(t, sig)
	settleSignals(unix.Signal(sig))
	deadline := time.Now().Add(5 * time.Second)
	for len(ch1) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher did not take the first signal")
		}
		time.Sleep(time.Millisecond)
	}
	// Second signal: it stays in the channel (the dispatcher is blocked).
	raise(t, sig)
	settleSignals(unix.Signal(sig))
	if len(ch1) != 1 {
		t.Fatalf("second signal not queued in the channel (len %d)", len(ch1))
	}
	if ok, err := h.l.RemoveSignalHandler(sig); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	if err := h.l.AddSignalHandler(sig, func(int) { calls2++ }, nil); err != nil {
		t.Fatal(err)
	}
	defer h.l.RemoveSignalHandler(sig)
	unlocked = true
	h.l.tsMu.Unlock()

	// The old dispatcher posts the first signal (to the removed handler),
	// reads the second from its closed channel, and ends.
	waitDispatchers("the retired channel's dispatcher to end", 1)
	for i := 0; i < 3; i++ {
		if err := h.l.RunOnceTimeout(0); err != nil {
			t.Fatal(err)
		}
	}
	if calls1 != 0 {
		t.Fatalf("a removed handler ran %d times", calls1)
	}
	if calls2 != 0 {
		t.Fatalf("a handler added after a signal arrived was called for it (%d calls)", calls2)
	}
	// The new handler does get the signals that arrive after it was added.
	raise(t, sig)
	h.runUntil("the new handler", 5*time.Second, func() bool { return calls2 == 1 })
}
