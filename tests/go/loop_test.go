package gotest

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

func TestVersion(t *testing.T) {
	v, err := asyncloop.LibraryVersion()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d.", asyncloop.VersionMajor)
	if len(v) < 2 || v[:len(want)] != want {
		t.Fatalf("version %q, want major %d", v, asyncloop.VersionMajor)
	}
}

func TestCallSoonOrder(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	var got []int
	for i := range 100 {
		if _, err := l.CallSoon(func() { got = append(got, i) }); err != nil {
			t.Fatal(err)
		}
	}
	// A callback scheduled from a callback runs after the ones queued
	// before it.
	if _, err := l.CallSoon(func() {
		l.CallSoon(func() { got = append(got, 1000); l.Stop() })
		got = append(got, 999)
	}); err != nil {
		t.Fatal(err)
	}
	runWithTimeout(t, l, 5*time.Second)
	if len(got) != 102 {
		t.Fatalf("ran %d callbacks, want 102: %v", len(got), got)
	}
	for i := range 100 {
		if got[i] != i {
			t.Fatalf("order %v", got)
		}
	}
	if got[100] != 999 || got[101] != 1000 {
		t.Fatalf("order tail %v", got[100:])
	}
	checkLeaks(t, base)
}

func TestTimersOrderAndDelay(t *testing.T) {
	l := newLoop(t)
	var got []string
	start := l.Time()
	var at30 time.Time
	add := func(d time.Duration, name string) {
		if _, err := l.CallLater(d, func() {
			got = append(got, name)
			if name == "30ms" {
				at30 = l.Time()
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	add(30*time.Millisecond, "30ms")
	add(10*time.Millisecond, "10ms")
	add(20*time.Millisecond, "20ms-a")
	add(20*time.Millisecond, "20ms-b") // ties run in scheduling order
	add(0, "0")
	if _, err := l.CallAt(start.Add(40*time.Millisecond), func() { got = append(got, "at40"); l.Stop() }); err != nil {
		t.Fatal(err)
	}
	runWithTimeout(t, l, 5*time.Second)
	want := []string{"0", "10ms", "20ms-a", "20ms-b", "30ms", "at40"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("timer order %v, want %v", got, want)
	}
	if el := at30.Sub(start); el < 30*time.Millisecond {
		t.Fatalf("30ms timer ran after %v", el)
	}
}

func TestHandleWhenAndCancel(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	ran := map[string]bool{}
	h1, err := l.CallLater(10*time.Millisecond, func() { ran["timer"] = true })
	if err != nil {
		t.Fatal(err)
	}
	when, err := h1.When()
	if err != nil {
		t.Fatal(err)
	}
	if now := l.Time(); when.Before(now) || when.After(now.Add(11*time.Millisecond)) {
		t.Fatalf("When %v, now %v", when, now)
	}
	h2, err := l.CallSoon(func() { ran["soon"] = true })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h2.When(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("When of a call_soon handle: %v, want EINVAL", err)
	}
	if err := h1.Cancel(); err != nil {
		t.Fatal(err)
	}
	if err := h2.Cancel(); err != nil {
		t.Fatal(err)
	}
	if !h1.Cancelled() || !h2.Cancelled() {
		t.Fatal("Cancelled() false after Cancel")
	}
	// Cancel twice is harmless; When on a cancelled handle is an error.
	if err := h1.Cancel(); err != nil {
		t.Fatalf("second Cancel: %v", err)
	}
	if _, err := h1.When(); !errors.Is(err, asyncloop.ErrBadHandle) {
		t.Fatalf("When after cancel: %v, want ALOOP_EBADF", err)
	}
	l.CallLater(30*time.Millisecond, func() { l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if len(ran) != 0 {
		t.Fatalf("cancelled callbacks ran: %v", ran)
	}
	// A handle whose callback ran: Cancel is a no-op.
	h3, _ := l.CallSoon(func() { ran["h3"] = true; l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if !ran["h3"] || h3.Cancel() != nil || h3.Cancelled() {
		t.Fatalf("ran=%v cancelled=%v", ran, h3.Cancelled())
	}
	checkLeaks(t, base)
}

func TestStop(t *testing.T) {
	l := newLoop(t)
	// Stop before run: one iteration runs, then RunForever returns.
	n := 0
	l.CallSoon(func() { n++ })
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("ran %d callbacks, want 1", n)
	}
	// Stop inside a callback: callbacks scheduled during that iteration
	// run on the next run.
	later := false
	l.CallSoon(func() {
		l.Stop()
		l.CallSoon(func() { later = true })
	})
	if err := l.RunForever(); err != nil {
		t.Fatal(err)
	}
	if later {
		t.Fatal("callback scheduled after Stop ran in the same run")
	}
	l.CallSoon(func() { l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if !later {
		t.Fatal("callback scheduled after Stop did not run on the next run")
	}
	if l.IsRunning() {
		t.Fatal("IsRunning after RunForever returned")
	}
}

func TestStopFromAnotherGoroutine(t *testing.T) {
	l := newLoop(t)
	started := make(chan struct{})
	l.CallSoon(func() { close(started) })
	go func() {
		<-started
		time.Sleep(10 * time.Millisecond)
		if err := l.Stop(); err != nil {
			t.Error(err)
		}
	}()
	runWithTimeout(t, l, 5*time.Second)
}

func TestCallSoonThreadsafe(t *testing.T) {
	l := newLoop(t)
	const goroutines, each = 4, 250
	total := 0
	var wg sync.WaitGroup
	// Keep the loop alive until every callback arrived.
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := l.CallSoonThreadsafe(func() {
					total++
					if total == goroutines*each {
						l.Stop()
					}
				})
				if err != nil {
					t.Errorf("goroutine %d call %d: %v", g, i, err)
					return
				}
			}
		}()
	}
	runWithTimeout(t, l, 10*time.Second)
	wg.Wait()
	if total != goroutines*each {
		t.Fatalf("%d callbacks ran, want %d", total, goroutines*each)
	}
}

func TestFutures(t *testing.T) {
	l := newLoop(t)
	f, err := l.NewFuture()
	if err != nil {
		t.Fatal(err)
	}
	if f.Done() {
		t.Fatal("new future is done")
	}
	if _, err := f.Result(); !errors.Is(err, asyncloop.ErrState) {
		t.Fatalf("Result of a pending future: %v, want ALOOP_ESTATE", err)
	}
	var order []string
	f.AddDoneCallback(func(g *asyncloop.Future[any]) {
		v, err := g.Result()
		order = append(order, fmt.Sprintf("cb1:%v %v", v, err))
	})
	f.AddDoneCallback(func(*asyncloop.Future[any]) { order = append(order, "cb2") })
	l.CallLater(5*time.Millisecond, func() {
		if err := f.SetResult("hello"); err != nil {
			t.Error(err)
		}
		order = append(order, "set")
	})
	if err := untilDone(t, l, f, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(); v != "hello" || err != nil {
		t.Fatalf("Result %v %v", v, err)
	}
	if err := f.SetResult(1); !errors.Is(err, asyncloop.ErrState) {
		t.Fatalf("second SetResult: %v, want ALOOP_ESTATE", err)
	}
	// Done-callbacks are scheduled with call_soon: run them.
	l.CallSoon(func() { l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if !reflect.DeepEqual(order, []string{"set", "cb1:hello <nil>", "cb2"}) {
		t.Fatalf("order %v", order)
	}

	// A failed future keeps the Go error; an errno keeps its code.
	g, _ := l.NewFuture()
	myErr := errors.New("my failure")
	g.SetException(myErr)
	if err := l.RunUntilComplete(g); err != myErr {
		t.Fatalf("RunUntilComplete of a failed future: %v", err)
	}
	h, _ := l.NewFuture()
	h.SetException(syscall.ECONNRESET)
	if _, err := h.Result(); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Result %v, want ECONNRESET", err)
	}

	// Cancellation.
	c, _ := l.NewFuture()
	if !c.Cancel() || !c.Cancelled() || c.Cancel() {
		t.Fatal("Cancel semantics")
	}
	if err := l.RunUntilComplete(c); !errors.Is(err, asyncloop.ErrCanceled) {
		t.Fatalf("RunUntilComplete of a cancelled future: %v", err)
	}
}

func TestRunUntilCompleteStopped(t *testing.T) {
	l := newLoop(t)
	f, _ := l.NewFuture()
	l.CallSoon(func() { l.Stop() })
	if err := l.RunUntilComplete(f); !errors.Is(err, asyncloop.ErrStopped) {
		t.Fatalf("got %v, want ALOOP_ESTOPPED", err)
	}
}

func TestPanicInCallbackPropagates(t *testing.T) {
	l := newLoop(t)
	after := false
	l.CallSoon(func() { panic("boom") })
	l.CallLater(time.Second, func() { after = true })
	var got any
	func() {
		defer func() { got = recover() }()
		l.RunForever()
	}()
	pe, ok := got.(*asyncloop.PanicError)
	if !ok || pe.Value != "boom" {
		t.Fatalf("recovered %#v, want *PanicError{boom}", got)
	}
	if after {
		t.Fatal("the loop kept running after the panic")
	}
	// The loop is still usable.
	ok2 := false
	l.CallSoon(func() { ok2 = true; l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if !ok2 {
		t.Fatal("loop unusable after a panic")
	}
	// Drop the pending 1 s timer so Close succeeds quickly.
	l.Close()
}

func TestExceptionHandler(t *testing.T) {
	l := newLoop(t)
	var got []*asyncloop.ExceptionContext
	if err := l.SetExceptionHandler(func(_ *asyncloop.Loop, c *asyncloop.ExceptionContext) {
		got = append(got, c)
	}); err != nil {
		t.Fatal(err)
	}
	l.CallSoon(func() {
		l.CallExceptionHandler("something happened", syscall.EPIPE)
		l.Stop()
	})
	runWithTimeout(t, l, 5*time.Second)
	if len(got) != 1 || got[0].Message != "something happened" || !errors.Is(got[0].Err, syscall.EPIPE) {
		t.Fatalf("handler got %+v", got)
	}
	if err := l.SetExceptionHandler(nil); err != nil {
		t.Fatal(err)
	}
}

func TestAddReader(t *testing.T) {
	l := newLoop(t)
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	var got []byte
	if err := l.AddReader(p[0], func() {
		var buf [64]byte
		n, _ := syscall.Read(p[0], buf[:])
		if n > 0 {
			got = append(got, buf[:n]...)
		}
		if string(got) == "ping" {
			l.Stop()
		}
	}); err != nil {
		t.Fatal(err)
	}
	l.CallLater(5*time.Millisecond, func() { syscall.Write(p[1], []byte("ping")) })
	runWithTimeout(t, l, 5*time.Second)
	if removed, err := l.RemoveReader(p[0]); !removed || err != nil {
		t.Fatalf("RemoveReader %v %v", removed, err)
	}
	if removed, _ := l.RemoveReader(p[0]); removed {
		t.Fatal("second RemoveReader removed something")
	}
}

func TestDebugModeThreadCheck(t *testing.T) {
	l := newLoop(t) // locked to this goroutine's thread
	if err := l.SetDebug(true); err != nil {
		t.Fatal(err)
	}
	if !l.Debug() {
		t.Fatal("Debug() false after SetDebug(true)")
	}
	// While the loop runs (asyncio checks the thread only then), a
	// non-thread-safe call from another thread fails; the thread-safe one
	// works.
	type res struct{ soon, safe error }
	ch := make(chan res, 1)
	l.CallSoon(func() {
		go func() {
			runtime.LockOSThread() // certainly another thread
			defer runtime.UnlockOSThread()
			var r res
			_, r.soon = l.CallSoon(func() {})
			_, r.safe = l.CallSoonThreadsafe(func() { l.Stop() })
			ch <- r
		}()
	})
	runWithTimeout(t, l, 5*time.Second)
	r := <-ch
	if !errors.Is(r.soon, asyncloop.ErrNotLoopThread) {
		t.Errorf("CallSoon from another thread in debug mode: %v, want ALOOP_ENOTLOOPTHREAD", r.soon)
	}
	if r.safe != nil {
		t.Fatalf("CallSoonThreadsafe from another thread: %v", r.safe)
	}
	// On the loop's own thread, inside callbacks, everything works.
	var inside error
	l.CallSoon(func() { _, inside = l.CallSoon(func() { l.Stop() }) })
	runWithTimeout(t, l, 5*time.Second)
	if inside != nil {
		t.Fatalf("CallSoon inside a callback in debug mode: %v", inside)
	}
	l.SetDebug(false)
}

// Issue 9: a NaN time is an error in every host; +Inf is a time that never
// comes and -Inf is now (as uvloop). The Go binding takes time.Time and
// time.Duration, which have no NaN: the longest Duration (math.MaxInt64) is
// never, the zero time.Time (year 1) is now.
func TestCallAtNeverAndNow(t *testing.T) {
	l := newLoop(t)
	var got []string
	never, err := l.CallLater(math.MaxInt64, func() { got = append(got, "never") })
	if err != nil {
		t.Fatal(err)
	}
	if w, err := never.When(); err != nil || w.Before(time.Now().AddDate(200, 0, 0)) {
		t.Fatalf("When of a never timer: %v %v", w, err)
	}
	if _, err := l.CallAt(time.Time{}, func() { got = append(got, "now") }); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CallLater(50*time.Millisecond, func() { l.Stop() }); err != nil {
		t.Fatal(err)
	}
	runWithTimeout(t, l, 5*time.Second)
	if !reflect.DeepEqual(got, []string{"now"}) {
		t.Fatalf("fired %v, want [now]", got)
	}
	never.Cancel()
}

// LiveHandles (aloop_live_handles) counts the loop and a future while they
// live and is back where it started once both are released (the binding
// releases a future as soon as it is done).
func TestLiveHandles(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base, err := asyncloop.LiveHandles()
	if err != nil {
		t.Fatal(err)
	}
	l, err := asyncloop.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.NewFuture()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := asyncloop.LiveHandles(); n != base+2 {
		t.Errorf("with a loop and a future: %d live handles, want %d", n, base+2)
	}
	if err := f.SetResult(1); err != nil {
		t.Fatal(err)
	}
	if n, _ := asyncloop.LiveHandles(); n != base+1 {
		t.Errorf("with a loop and a done future: %d live handles, want %d", n, base+1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := asyncloop.LiveHandles(); n != base {
		t.Errorf("after release and close: %d live handles, want %d", n, base)
	}
}
