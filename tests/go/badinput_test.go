package gotest

import (
	"errors"
	"reflect"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// Bad input never crashes the host: every call below returns an error.

func TestClosedLoop(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l, err := asyncloop.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	l.CallSoon(func() { ran = true })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !l.IsClosed() {
		t.Fatal("IsClosed false")
	}
	checks := map[string]error{}
	_, checks["CallSoon"] = l.CallSoon(func() {})
	_, checks["CallSoonThreadsafe"] = l.CallSoonThreadsafe(func() {})
	_, checks["CallLater"] = l.CallLater(time.Millisecond, func() {})
	_, checks["CallAt"] = l.CallAt(time.Time{}, func() {})
	checks["RunForever"] = l.RunForever()
	checks["RunOnce"] = l.RunOnce(0)
	checks["Stop"] = l.Stop()
	_, checks["NewFuture"] = l.NewFuture()
	_, checks["CreateServer"] = l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return nil })
	_, checks["CreateConnection"] = l.CreateConnection(bg, "127.0.0.1", 1, &asyncloop.BaseProtocol{})
	checks["AddReader"] = l.AddReader(0, func() {})
	checks["SetExceptionHandler"] = l.SetExceptionHandler(nil)
	for name, err := range checks {
		if !errors.Is(err, asyncloop.ErrClosed) {
			t.Errorf("%s on a closed loop: %v, want ALOOP_ECLOSED", name, err)
		}
	}
	if ran {
		t.Fatal("a callback of a closed loop ran")
	}
	checkLeaks(t, base)
}

// The library's own checks: NULL and stale handles give ALOOP_EBADF.
func TestBadHandles(t *testing.T) {
	var zero asyncloop.Loop // NULL handle
	if _, err := zero.CallSoon(func() {}); !errors.Is(err, syscall.EBADF) {
		t.Errorf("CallSoon on a zero Loop: %v, want EBADF", err)
	}
	if err := zero.RunForever(); !errors.Is(err, asyncloop.ErrBadHandle) {
		t.Errorf("RunForever on a zero Loop: %v", err)
	}
	if zero.IsRunning() || zero.Alive() {
		t.Error("zero Loop reports running/alive")
	}
	var tr asyncloop.Transport
	if _, err := tr.Write([]byte("x")); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Write on a zero Transport: %v", err)
	}
	if err := tr.Close(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Close on a zero Transport: %v", err)
	}
	if _, _, err := tr.PeerName(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("PeerName on a zero Transport: %v", err)
	}
	var srv asyncloop.Server
	if err := srv.Close(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Close on a zero Server: %v", err)
	}
	if srv.Port() != 0 || srv.IsServing() {
		t.Error("zero Server serving")
	}
	var h asyncloop.Handle
	if err := h.Cancel(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Cancel on a zero Handle: %v", err)
	}
	var f asyncloop.Future[int]
	if _, err := f.Result(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Result on a zero Future: %v", err)
	}
	if err := f.SetResult(1); !errors.Is(err, syscall.EBADF) {
		t.Errorf("SetResult on a zero Future: %v", err)
	}

	l := newLoop(t)
	if err := l.RunUntilComplete(&f); !errors.Is(err, syscall.EBADF) {
		t.Errorf("RunUntilComplete(zero future): %v", err)
	}
	if err := l.RunUntilComplete(nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("RunUntilComplete(nil): %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	if _, err := l.CallSoon(nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("CallSoon(nil): %v", err)
	}
	if _, err := l.CreateServer(bg, "127.0.0.1", 0, nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("CreateServer(nil factory): %v", err)
	}
	if _, err := l.CreateConnection(bg, "127.0.0.1", 80, nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("CreateConnection(nil protocol): %v", err)
	}
	// Out-of-range ports and bad fds are rejected by the library.
	for _, port := range []int{-1, 70000} {
		f, err := l.CreateConnection(bg, "127.0.0.1", port, &asyncloop.BaseProtocol{})
		if err == nil {
			err = untilDone(t, l, f, 5*time.Second)
		}
		if err == nil {
			t.Errorf("CreateConnection to port %d succeeded", port)
		}
	}
	if err := l.AddReader(-1, func() {}); err == nil {
		t.Error("AddReader(-1) succeeded")
	}
	checkLeaks(t, base)
}

func TestCloseBusy(t *testing.T) {
	l := newLoop(t)
	sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, sf, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	srv, _ := sf.Result()
	if err := l.Close(); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("Close with a live server: %v, want EBUSY", err)
	}
	if l.IsClosed() {
		t.Fatal("closed despite EBUSY")
	}
	// Close from inside a callback (the loop runs): EBUSY too.
	var inside error
	l.CallSoon(func() { inside = l.Close(); l.Stop() })
	l.RunForever()
	if !errors.Is(inside, syscall.EBUSY) {
		t.Fatalf("Close while running: %v, want EBUSY", inside)
	}
	// RunForever from inside a callback: EBUSY, no deadlock.
	var nested error
	l.CallSoon(func() { nested = l.RunForever(); l.Stop() })
	l.RunForever()
	if !errors.Is(nested, syscall.EBUSY) {
		t.Fatalf("nested RunForever: %v, want EBUSY", nested)
	}
	closeServer(t, l, srv)
}

func TestErrorType(t *testing.T) {
	l := newLoop(t)
	_, err := l.CallSoon(nil)
	var e *asyncloop.Error
	if !errors.As(err, &e) || e.Code != asyncloop.EINVAL || e.Name != "ALOOP_EINVAL" || e.Message == "" {
		t.Fatalf("%#v", err)
	}
	if errno, ok := e.Errno(); !ok || errno != syscall.EINVAL {
		t.Fatalf("Errno() %v %v", errno, ok)
	}
	if !errors.Is(asyncloop.ErrClosed, asyncloop.ErrClosed) || errors.Is(asyncloop.ErrClosed, syscall.EBADF) {
		t.Fatal("sentinel comparisons")
	}
	if _, ok := asyncloop.ErrClosed.Errno(); ok {
		t.Fatal("ALOOP_ECLOSED has no errno")
	}
	// The library supplies a detailed message for the failing call.
	srv1, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return nil }, asyncloop.WithReuseAddress(false))
	if err != nil {
		t.Fatal(err)
	}
	untilDone(t, l, srv1, 5*time.Second)
	s1, err := srv1.Result()
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := l.CreateServer(bg, "127.0.0.1", s1.Port(), func() asyncloop.Protocol { return nil }, asyncloop.WithReuseAddress(false))
	if err == nil {
		err = untilDone(t, l, srv2, 5*time.Second)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second listen on port %d: %v, want EADDRINUSE", s1.Port(), err)
	}
	t.Logf("EADDRINUSE error text: %v", err)
	closeServer(t, l, s1)
	// The failed server's on_connection userdata is released by a
	// done-callback of its future: let it run before the loop closes.
	settle(l)
}

// Every method of zero-valued and nil objects, with zero arguments, returns
// without crashing: the library rejects the NULL handles (ALOOP_EBADF).
func TestZeroValuesSweep(t *testing.T) {
	objs := []any{&asyncloop.Loop{}, &asyncloop.Transport{}, &asyncloop.Future[int]{}, &asyncloop.Server{}, &asyncloop.Handle{},
		&asyncloop.DatagramTransport{}, &asyncloop.SubprocessTransport{}, &asyncloop.TLSConfig{},
		(*asyncloop.Loop)(nil), (*asyncloop.Future[any])(nil), (*asyncloop.Transport)(nil), (*asyncloop.Server)(nil), (*asyncloop.Handle)(nil),
		(*asyncloop.DatagramTransport)(nil), (*asyncloop.SubprocessTransport)(nil), (*asyncloop.TLSConfig)(nil)}
	calls := 0
	for _, o := range objs {
		v := reflect.ValueOf(o)
		ty := v.Type()
		for i := range ty.NumMethod() {
			m := ty.Method(i)
			args := []reflect.Value{v}
			for j := 1; j < m.Type.NumIn(); j++ {
				in := m.Type.In(j)
				a := reflect.New(in).Elem()
				if in.Kind() == reflect.Func {
					a = reflect.MakeFunc(in, func([]reflect.Value) []reflect.Value {
						out := make([]reflect.Value, in.NumOut())
						for k := range out {
							out[k] = reflect.New(in.Out(k)).Elem()
						}
						return out
					})
				}
				args = append(args, a)
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%v.%s panicked: %v", ty, m.Name, r)
					}
				}()
				var out []reflect.Value
				if m.Type.IsVariadic() {
					out = m.Func.CallSlice(args)
				} else {
					out = m.Func.Call(args)
				}
				calls++
				// Methods that return an error must report one (except the
				// idempotent Close/Release/Cancel of nothing).
				errType := reflect.TypeFor[error]()
				if n := len(out); n > 0 && out[n-1].Type() == errType {
					if out[n-1].IsNil() {
						switch m.Name {
						case "Close", "Write", "WriteString", "WriteLines": // idempotent; empty writes are no-ops (asyncio)
						default:
							t.Errorf("%v.%s returned no error", ty, m.Name)
						}
					}
				}
			}()
		}
	}
	if calls < 50 {
		t.Fatalf("only %d methods called", calls)
	}
}

// Closing a loop releases every Go value the library held for it.
func TestCloseReleasesUserdata(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l, err := asyncloop.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	l.SetExceptionHandler(func(*asyncloop.Loop, *asyncloop.ExceptionContext) {})
	f, _ := l.NewFuture()
	f.AddDoneCallback(func(*asyncloop.Future[any]) {})
	l.CallSoon(func() {})
	l.CallLater(time.Hour, func() {})
	if asyncloop.LiveCallbacks()-base != 4 {
		t.Fatalf("%d live entries, want 4", asyncloop.LiveCallbacks()-base)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkLeaks(t, base)
}
