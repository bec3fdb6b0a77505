package gotest

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
	"golang.org/x/sys/unix"
)

// Errors of network operations look like the net package's: a *net.OpError
// with the operation and the address, around the library's *Error, which
// errors.Is matches against syscall errnos.
func TestConnectErrorIsNetOpError(t *testing.T) {
	l := newLoop(t)
	port := freePort(t)
	f, err := l.CreateConnection(bg, "127.0.0.1", port, &asyncloop.BaseProtocol{})
	if err != nil {
		t.Fatal(err)
	}
	err = untilDone(t, l, f, 5*time.Second)
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("%T %v, want *net.OpError", err, err)
	}
	if op.Op != "dial" || op.Net != "tcp" || op.Addr == nil || op.Addr.String() != "127.0.0.1:"+strconv.Itoa(port) {
		t.Fatalf("OpError %+v", op)
	}
	if _, ok := op.Addr.(*net.TCPAddr); !ok {
		t.Fatalf("Addr is %T, want *net.TCPAddr", op.Addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%v is not ECONNREFUSED", err)
	}
	var ae *asyncloop.Error
	if !errors.As(err, &ae) || ae.Code != asyncloop.ECONNREFUSED {
		t.Fatalf("no *asyncloop.Error inside: %v", err)
	}
	t.Logf("error text: %v", err)
}

// A name lookup failure is a *net.DNSError (no network: a name with
// AI_NUMERICHOST, and getnameinfo of something that is not an address).
func TestDNSErrorIsNetDNSError(t *testing.T) {
	l := newLoop(t)
	f, err := l.GetAddrInfo(bg, "not-a-number.invalid", "80", 0, syscall.SOCK_STREAM, 0, asyncloop.AINumericHost)
	if err != nil {
		t.Fatal(err)
	}
	err = untilDone(t, l, f, 5*time.Second)
	var de *net.DNSError
	if !errors.As(err, &de) || de.Name != "not-a-number.invalid" || !errors.Is(err, asyncloop.ErrResolve) {
		t.Fatalf("%T %v, want *net.DNSError wrapping ALOOP_ERESOLVE", err, err)
	}
	g, err := l.GetNameInfo(bg, "not-an-address", 80, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, g, 5*time.Second); !errors.As(err, &de) {
		t.Fatalf("getnameinfo: %T %v", err, err)
	}
}

// A context deadline ends a waiting operation with an error that is
// context.DeadlineExceeded, os.ErrDeadlineExceeded and a net.Error time-out,
// as the net package's; the operation is removed from the loop.
func TestContextDeadline(t *testing.T) {
	l := newLoop(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	f, err := l.SockRecv(ctx, fds[0], 100)
	if err != nil {
		t.Fatal(err)
	}
	err = untilDone(t, l, f, 5*time.Second)
	if el := time.Since(start); el < 50*time.Millisecond || el > 2*time.Second {
		t.Fatalf("ended after %v", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%v: not a deadline error", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v: not a net.Error time-out", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "read" {
		t.Fatalf("%T %v, want a read *net.OpError", err, err)
	}
	if !f.Cancelled() {
		t.Fatal("the future is not cancelled")
	}
	// The operation no longer waits on the fd: a reader may take it.
	if err := l.AddReader(fds[0], func() {}); err != nil {
		t.Fatalf("AddReader after the deadline: %v", err)
	}
	l.RemoveReader(fds[0])

	// Cancelled from another goroutine: context.Canceled.
	ctx2, cancel2 := context.WithCancel(bg)
	g, err := l.SockRecv(ctx2, fds[0], 100)
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
	if err := untilDone(t, l, g, 5*time.Second); !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want context.Canceled", err)
	}
	// A context that is done already: the operation does not start.
	if _, err := l.SockRecv(ctx2, fds[0], 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
}

// The library's ETIMEDOUT is os.ErrDeadlineExceeded and a time-out.
func TestErrorIsTimeout(t *testing.T) {
	l := newLoop(t)
	f, _ := asyncloop.NewFuture[int](l)
	f.SetException(&asyncloop.Error{Code: asyncloop.ETIMEDOUT, Name: "ALOOP_ETIMEDOUT"})
	_, err := f.Result()
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("%v", err)
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("%v is not a net.Error time-out", err)
	}
	if errors.Is(asyncloop.ErrClosed, os.ErrDeadlineExceeded) || !errors.Is(asyncloop.ErrClosed, net.ErrClosed) {
		t.Fatal("ErrClosed comparisons")
	}
}

// Times are time.Time and time.Duration: CallAt(t) runs at t, When reports
// it, and Loop.Time is the loop's clock in Go's terms.
func TestTimeTypes(t *testing.T) {
	l := newLoop(t)
	if d := time.Since(l.Time()); d < -5*time.Millisecond || d > 5*time.Millisecond {
		t.Fatalf("Loop.Time is %v away from time.Now", d)
	}
	deadline := time.Now().Add(30 * time.Millisecond)
	var ranAt time.Time
	h, err := l.CallAt(deadline, func() { ranAt = time.Now(); l.Stop() })
	if err != nil {
		t.Fatal(err)
	}
	when, err := h.When()
	if err != nil {
		t.Fatal(err)
	}
	if d := when.Sub(deadline); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("When %v differs from the deadline by %v", when, d)
	}
	runWithTimeout(t, l, 5*time.Second)
	if ranAt.Before(deadline) {
		t.Fatalf("ran %v before the deadline", deadline.Sub(ranAt))
	}
	// A time in the past runs on the next iteration; CallAt(Time()+d) and
	// CallLater(d) agree.
	var order []string
	l.CallAt(time.Now().Add(-time.Hour), func() { order = append(order, "past") })
	l.CallLater(20*time.Millisecond, func() { order = append(order, "later") })
	l.CallAt(l.Time().Add(10*time.Millisecond), func() { order = append(order, "at") })
	l.CallLater(40*time.Millisecond, func() { l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if len(order) != 3 || order[0] != "past" || order[1] != "at" || order[2] != "later" {
		t.Fatalf("order %v", order)
	}
	if err := l.SetSlowCallbackDuration(250 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d, err := l.SlowCallbackDuration(); err != nil || d != 250*time.Millisecond {
		t.Fatalf("SlowCallbackDuration %v %v", d, err)
	}
}
