package core

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// CloseForce closes a loop with transports, a server, a watcher, a timer,
// pending futures and a sock_* operation on it: no protocol callback or
// other callback runs, every release runs once, nothing stays open.
func TestCloseForce(t *testing.T) {
	h := newHarness(t)
	l := h.l
	fds0 := openFds(t)
	srvProto := newRec(h, "server side")
	s, port := h.serve(func() Protocol { return srvProto })
	cli := newRec(h, "client")
	tr := h.dial(port, cli)
	h.runUntil("accepted", 5*time.Second, func() bool { return srvProto.made == 1 })
	tr.Write(make([]byte, 8<<20)) // more than the socket takes: buffered
	released := map[string]int{}
	rel := func(name string) func() { return func() { released[name]++ } }
	ran := 0
	p := make([]int, 2)
	if err := pipe2(p); err != nil {
		t.Fatal(err)
	}
	if err := l.AddReader(p[0], func() { ran++ }, rel("reader")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CallLater(1000, func() { ran++ }, rel("timer")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CallSoon(func() { ran++ }, rel("soon")); err != nil {
		t.Fatal(err)
	}
	own := l.NewFuture()
	own.AddDoneCallback(func(*Future) { ran++ }, rel("done-callback"), nil)
	sv := make([]int, 2)
	if err := socketpairNB(sv); err != nil {
		t.Fatal(err)
	}
	recv, err := l.SockRecv(sv[0], 10)
	if err != nil {
		t.Fatal(err)
	}
	trReleased, srvTrReleased := 0, 0
	tr.OnRelease = func(*Transport) { trReleased++ }
	srvProto.tr.OnRelease = func(*Transport) { srvTrReleased++ }
	var closed []any
	if err := l.Close(); err == nil {
		t.Fatal("Close succeeded with live objects")
	}
	if err := l.CloseForce(func(o any) { closed = append(closed, o) }); err != nil {
		t.Fatal(err)
	}
	if !l.IsClosed() {
		t.Fatal("not closed")
	}
	if ran != 0 || cli.losts != 0 || srvProto.losts != 0 {
		t.Fatalf("callbacks ran: %d, connection_lost %d/%d", ran, cli.losts, srvProto.losts)
	}
	for _, name := range []string{"reader", "timer", "soon", "done-callback"} {
		if released[name] != 1 {
			t.Errorf("%s released %d times", name, released[name])
		}
	}
	if trReleased != 1 || srvTrReleased != 1 {
		t.Errorf("transports released %d/%d times", trReleased, srvTrReleased)
	}
	if len(closed) != 1 || closed[0] != s || !s.IsClosed() {
		t.Errorf("servers reported: %v", closed)
	}
	if !own.Cancelled() || !recv.Cancelled() {
		t.Errorf("pending futures not cancelled: %v %v", own.Cancelled(), recv.Cancelled())
	}
	if err := l.CloseForce(nil); err != nil { // a closed loop: nothing
		t.Fatal(err)
	}
	closeFds(p[0], p[1], sv[0], sv[1])
	if n := openFds(t); n != fds0-2 { // the loop's epoll and eventfd are gone too
		t.Errorf("%d fds open, %d before (with the loop's 2)", n, fds0)
	}
}

func pipe2(p []int) error { return unix.Pipe2(p, unix.O_CLOEXEC|unix.O_NONBLOCK) }

func socketpairNB(sv []int) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	copy(sv, fds[:])
	return err
}

func closeFds(fds ...int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
