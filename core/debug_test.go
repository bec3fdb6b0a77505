package core

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

type excLog struct {
	mu   sync.Mutex
	ctxs []*ExceptionContext
}

func (e *excLog) handler(l *Loop, ctx *ExceptionContext) {
	e.mu.Lock()
	e.ctxs = append(e.ctxs, ctx)
	e.mu.Unlock()
}

func (e *excLog) find(sub string) *ExceptionContext {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.ctxs {
		if strings.Contains(c.Message, sub) {
			return c
		}
	}
	return nil
}

func TestDebugSlowCallbackDuration(t *testing.T) {
	h := newHarness(t)
	if d := h.l.SlowCallbackDuration(); d != 0.1 {
		t.Fatalf("default %v", d)
	}
	for _, bad := range []float64{-1, math.NaN()} {
		if err := h.l.SetSlowCallbackDuration(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v: %v", bad, err)
		}
	}
	if err := h.l.SetSlowCallbackDuration(0.03); err != nil {
		t.Fatal(err)
	}
	var log excLog
	h.l.SetExceptionHandler(log.handler)
	slow := func() { time.Sleep(50 * time.Millisecond) }
	// Not reported outside debug mode.
	h.l.CallSoon(slow, nil)
	h.runFor(20 * time.Millisecond)
	if len(log.ctxs) != 0 {
		t.Fatalf("reported outside debug mode: %q", log.ctxs[0].Message)
	}
	h.l.SetDebug(true)
	hd, _ := h.l.CallSoon(slow, nil)
	h.l.CallSoon(func() {}, nil) // fast: not reported
	h.runFor(20 * time.Millisecond)
	// (The duration is not checked: a loaded machine can stretch the sleep
	// past 0.1 s.)
	if len(log.ctxs) != 1 || log.ctxs[0].Handle != hd || !strings.Contains(log.ctxs[0].Message, " took ") {
		t.Fatalf("slow callback reports: %d %+v", len(log.ctxs), log.ctxs)
	}
	if log.ctxs[0].Err != nil {
		t.Fatalf("slow callback with an error: %v", log.ctxs[0].Err)
	}
}

// A protocol callback that is slow is reported with its transport (the
// I/O dispatch is timed, not only the ready queue).
func TestDebugSlowIOCallback(t *testing.T) {
	h := newHarness(t)
	var log excLog
	h.l.SetExceptionHandler(log.handler)
	h.l.SetDebug(true)
	h.l.SetSlowCallbackDuration(0.03)
	var srv *tlsRecorder
	s, port := h.serve(func() Protocol {
		srv = &tlsRecorder{h: h}
		return srv
	})
	defer s.Close()
	slow := &slowProto{}
	f, _ := h.l.CreateConnection("127.0.0.1", port, slow, nil)
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tr := v.(*Transport)
	h.runUntil("server", 5*time.Second, func() bool { return srv != nil && srv.made == 1 })
	srv.t.Write([]byte("x"))
	h.runUntil("report", 5*time.Second, func() bool { return log.find("I/O callback") != nil })
	c := log.find("I/O callback")
	if c.Transport != tr || !strings.Contains(c.Message, "(transport)") {
		t.Fatalf("context %+v", c)
	}
	tr.Close()
	h.runUntil("closed", 5*time.Second, func() bool { return srv.lost == 1 })
}

type slowProto struct{ BaseProtocol }

func (slowProto) DataReceived(*Transport, []byte) { time.Sleep(50 * time.Millisecond) }

func TestDebugThreadCheck(t *testing.T) {
	h := newHarness(t)
	other := func(fn func()) {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			fn()
			close(done)
		}()
		<-done
	}
	var plainErr, debugErr, atErr, tsErr error
	h.l.CallSoon(func() {
		// Loop running: another thread may not schedule with CallSoon.
		other(func() { _, plainErr = h.l.CallSoon(func() {}, nil) })
		h.l.SetDebug(true)
		other(func() {
			_, debugErr = h.l.CallSoon(func() {}, nil)
			_, atErr = h.l.CallLater(1, func() {}, nil)
			_, tsErr = h.l.CallSoonThreadsafe(func() {}, nil)
		})
	}, nil)
	h.runFor(20 * time.Millisecond)
	h.l.SetDebug(false)
	if plainErr != nil {
		t.Fatalf("outside debug mode: %v", plainErr)
	}
	if !errors.Is(debugErr, ErrNotLoopThread) || !errors.Is(atErr, ErrNotLoopThread) {
		t.Fatalf("debug mode: %v / %v", debugErr, atErr)
	}
	if tsErr != nil {
		t.Fatalf("CallSoonThreadsafe: %v", tsErr)
	}
	// Not running: no check (the loop may be prepared from any thread).
	h.l.SetDebug(true)
	other(func() { _, plainErr = h.l.CallSoon(func() {}, nil) })
	if plainErr != nil {
		t.Fatalf("loop not running: %v", plainErr)
	}
	h.runFor(5 * time.Millisecond)
}

func TestDebugUnclosedAtClose(t *testing.T) {
	h := newHarness(t)
	var log excLog
	h.l.SetExceptionHandler(log.handler)
	var srv *tlsRecorder
	s, port := h.serve(func() Protocol { srv = &tlsRecorder{h: h}; return srv })
	cli := &tlsRecorder{h: h}
	f, _ := h.l.CreateConnection("127.0.0.1", port, cli, nil)
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tr := v.(*Transport)
	h.runUntil("server", 5*time.Second, func() bool { return srv != nil && srv.made == 1 })
	// Without debug mode: EBUSY and no report.
	if err := h.l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close: %v", err)
	}
	if len(log.ctxs) != 0 {
		t.Fatalf("reported outside debug mode")
	}
	h.l.SetDebug(true)
	if err := h.l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close: %v", err)
	}
	ct := log.find("unclosed transport")
	sv := log.find("unclosed server")
	if ct == nil || sv == nil || sv.Server != s || !errors.Is(ct.Err, ErrBusy) {
		t.Fatalf("reports: %d", len(log.ctxs))
	}
	n := 0
	for _, c := range log.ctxs {
		if c.Transport == tr || c.Transport == srv.t {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d transports reported, want 2", n)
	}
	tr.Close()
	s.Close()
	h.runUntil("closed", 5*time.Second, func() bool { return srv.lost == 1 && cli.lost == 1 })
	if err := h.l.Close(); err != nil {
		t.Fatalf("Close after closing everything: %v", err)
	}
}

// Debug mode is read from any thread (CheckThread runs in every non-thread-
// safe C entry point, on whatever thread calls) while the loop thread reads
// and another thread may set it: an atomic (issue 9; go test -race caught
// the plain bool).
func TestDebugFlagFromOtherThreads(t *testing.T) {
	h := newHarness(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.l.SetDebug(i%2 == 0)
			_ = h.l.CheckThread()
			_ = h.l.Debug()
		}
	}()
	for i := 0; i < 200; i++ {
		h.l.CallSoon(func() {}, nil)
		h.l.RunOnceTimeout(0)
	}
	close(stop)
	<-done
	h.l.SetDebug(false)
}
