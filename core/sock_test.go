package core

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// socketPair returns a connected non-blocking AF_UNIX stream pair, closed at
// the end of the test.
func socketPair(t *testing.T, typ int) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// tcpListener returns a non-blocking listening socket on 127.0.0.1 and its port.
func tcpListener(t *testing.T, backlog int) (int, int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	return fd, sa.(*unix.SockaddrInet4).Port
}

func tcpSocket(t *testing.T, fam int) int {
	t.Helper()
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestSockRecvWaitsThenReceives(t *testing.T) {
	h := newHarness(t)
	a, b := socketPair(t, unix.SOCK_STREAM)
	f, err := h.l.SockRecv(a, 100)
	if err != nil {
		t.Fatal(err)
	}
	h.runFor(10 * time.Millisecond)
	if f.Done() {
		t.Fatal("sock_recv finished with no data")
	}
	if !h.l.Alive() {
		t.Fatal("a pending sock_recv does not keep the loop alive")
	}
	if err := h.l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close with a pending sock_recv: %v, want ErrBusy", err)
	}
	unix.Write(b, []byte("hello"))
	v, err := h.await(f, 2*time.Second)
	if err != nil || string(v.([]byte)) != "hello" {
		t.Fatalf("sock_recv = %q, %v", v, err)
	}
	// Data already there: done at once (no loop iteration needed).
	unix.Write(b, []byte("again"))
	f2, _ := h.l.SockRecv(a, 3)
	if !f2.Done() {
		t.Fatal("sock_recv with data available did not complete at once")
	}
	if v, _ := f2.Result(); string(v.([]byte)) != "aga" {
		t.Fatalf("got %q", v)
	}
	// EOF: an empty result.
	f3, _ := h.l.SockRecv(a, 10)
	unix.Shutdown(b, unix.SHUT_WR)
	h.await(f3, time.Second)
	if v, _ := f3.Result(); string(v.([]byte)) != "in" {
		t.Fatalf("got %q", v)
	}
	f4, _ := h.l.SockRecv(a, 10)
	if v, err := h.await(f4, time.Second); err != nil || len(v.([]byte)) != 0 {
		t.Fatalf("at EOF: %q %v", v, err)
	}
	h.runFor(5 * time.Millisecond)
	if h.l.Alive() {
		t.Fatal("loop alive after every operation finished")
	}
}

func TestSockFIFOAndCancel(t *testing.T) {
	h := newHarness(t)
	a, b := socketPair(t, unix.SOCK_STREAM)
	f1, _ := h.l.SockRecv(a, 4)
	f2, _ := h.l.SockRecv(a, 4)
	buf := make([]byte, 4)
	f3, _ := h.l.SockRecvInto(a, buf)
	f4, _ := h.l.SockRecv(a, 4)
	f3.Cancel("")
	h.runFor(5 * time.Millisecond)
	unix.Write(b, []byte("1111222233334444"))
	h.runUntil("recvs", 2*time.Second, func() bool { return f1.Done() && f2.Done() && f4.Done() })
	for i, c := range []struct {
		f    *Future
		want string
	}{{f1, "1111"}, {f2, "2222"}, {f4, "3333"}} {
		v, err := c.f.Result()
		if err != nil || string(v.([]byte)) != c.want {
			t.Errorf("recv %d = %q, %v; want %q", i, v, err, c.want)
		}
	}
	if !bytes.Equal(buf, make([]byte, 4)) {
		t.Errorf("a cancelled sock_recv_into wrote its buffer: %q", buf)
	}
	// Cancel removes the watcher: nothing is left, the data stays queued.
	f5, _ := h.l.SockRecv(a, 100)
	if !f5.Done() {
		t.Fatal("data was there")
	}
	f6, _ := h.l.SockRecv(a, 100)
	f6.Cancel("")
	h.runFor(5 * time.Millisecond)
	if h.l.Alive() {
		t.Fatal("a cancelled sock_recv keeps the loop alive")
	}
	unix.Write(b, []byte("xyz"))
	h.runFor(5 * time.Millisecond)
	got := make([]byte, 10)
	n, _ := unix.Read(a, got)
	if string(got[:n]) != "xyz" {
		t.Fatalf("after cancel, data was consumed: read %q", got[:n])
	}
	// An fd whose operations are all gone can be watched again.
	if err := h.l.AddReader(a, func() {}, nil); err != nil {
		t.Fatalf("AddReader after the sock ops ended: %v", err)
	}
	h.l.RemoveReader(a)
}

func TestSockSendallLargeInOrder(t *testing.T) {
	h := newHarness(t)
	a, b := socketPair(t, unix.SOCK_STREAM)
	data := pattern(8<<20, 3)
	src := append([]byte(nil), data...)
	f1, err := h.l.SockSendall(a, src[:5<<20])
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := h.l.SockSendall(a, src[5<<20:])
	// The caller's memory is borrowed only during the call.
	for i := range src {
		src[i] = 0
	}
	var got []byte
	buf := make([]byte, 100000)
	var rf *Future
	h.runUntil("all data", 20*time.Second, func() bool {
		if rf == nil {
			rf, _ = h.l.SockRecvInto(b, buf)
		} else if rf.Done() {
			v, err := rf.Result()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:v.(int)]...)
			rf = nil
		}
		return len(got) == len(data)
	})
	if !bytes.Equal(got, data) {
		t.Fatalf("sendall data: %s", firstDiff(got, data))
	}
	v1, e1 := f1.Result()
	v2, e2 := f2.Result()
	if e1 != nil || e2 != nil || v1.(int) != 5<<20 || v2.(int) != 3<<20 {
		t.Fatalf("sendall results %v %v %v %v", v1, e1, v2, e2)
	}
}

func TestSockChecks(t *testing.T) {
	h := newHarness(t)
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0) // blocking
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := h.l.SockRecv(fds[0], 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("blocking socket: %v, want ErrInvalid", err)
	}
	if _, err := h.l.SockRecv(-1, 1); Errno(err) != unix.EBADF {
		t.Errorf("fd -1: %v", err)
	}
	if _, err := h.l.SockRecv(987, 1); Errno(err) != unix.EBADF {
		t.Errorf("closed fd: %v", err)
	}
	a, _ := socketPair(t, unix.SOCK_STREAM)
	h.l.AddReader(a, func() {}, nil)
	if _, err := h.l.SockRecv(a, 1); Errno(err) != unix.EBUSY {
		t.Errorf("fd with a reader: %v, want EBUSY", err)
	}
	h.l.RemoveReader(a)
	// While an op waits, add_reader on the fd is refused.
	f, _ := h.l.SockRecv(a, 1)
	if err := h.l.AddReader(a, func() {}, nil); err == nil {
		t.Errorf("AddReader on an fd with a pending sock_recv succeeded")
		h.l.RemoveReader(a)
	}
	f.Cancel("")
	// A transport's fd.
	s, port := h.serve(func() Protocol { return BaseProtocol{} })
	tr := h.dial(port, BaseProtocol{})
	if _, err := h.l.SockRecv(tr.Fd(), 1); Errno(err) != unix.EBUSY {
		t.Errorf("transport fd: %v, want EBUSY", err)
	}
	if _, err := h.l.SockSendall(s.Sockets()[0], []byte("x")); Errno(err) != unix.EBUSY {
		t.Errorf("server fd: %v, want EBUSY", err)
	}
	tr.Close()
	s.Close()
	h.runFor(10 * time.Millisecond)
}

func TestSockConnectAccept(t *testing.T) {
	h := newHarness(t)
	lfd, port := tcpListener(t, 10)
	af, _ := h.l.SockAccept(lfd)
	h.runFor(5 * time.Millisecond)
	if af.Done() {
		t.Fatal("accept finished with nobody connecting")
	}
	c := tcpSocket(t, unix.AF_INET)
	cf, err := h.l.SockConnect(c, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.await(cf, 2*time.Second); err != nil {
		t.Fatalf("sock_connect: %v", err)
	}
	v, err := h.await(af, 2*time.Second)
	if err != nil {
		t.Fatalf("sock_accept: %v", err)
	}
	acc := v.(*Accepted)
	defer unix.Close(acc.Fd)
	fl, _ := unix.FcntlInt(uintptr(acc.Fd), unix.F_GETFL, 0)
	if fl&unix.O_NONBLOCK == 0 {
		t.Error("accepted fd is blocking")
	}
	local, _ := unix.Getsockname(c)
	if h1, p1 := SockaddrString(acc.Addr); h1 != "127.0.0.1" || p1 != local.(*unix.SockaddrInet4).Port {
		t.Errorf("accepted peer %s:%d", h1, p1)
	}
	sf, _ := h.l.SockSendall(acc.Fd, []byte("ping"))
	rf, _ := h.l.SockRecv(c, 10)
	h.await(sf, time.Second)
	if v, err := h.await(rf, time.Second); err != nil || string(v.([]byte)) != "ping" {
		t.Fatalf("recv over the accepted connection: %q %v", v, err)
	}

	// Refused, and by name.
	_, closed := tcpListener(t, 1)
	unix.Close(lfd)
	c2 := tcpSocket(t, unix.AF_INET)
	f2, _ := h.l.SockConnect(c2, "127.0.0.1", port)
	if _, err := h.await(f2, 2*time.Second); Errno(err) != unix.ECONNREFUSED {
		t.Errorf("connect to a closed port: %v, want ECONNREFUSED", err)
	}
	_ = closed
	lfd2, port2 := tcpListener(t, 10)
	c3 := tcpSocket(t, unix.AF_INET)
	f3, _ := h.l.SockConnect(c3, "localhost", port2)
	if f3.Done() {
		t.Fatal("connect by name finished before resolution")
	}
	if _, err := h.await(f3, 5*time.Second); err != nil {
		t.Fatalf("connect to localhost: %v", err)
	}
	_ = lfd2
	// IPv4 address on an IPv6 socket: v4-mapped.
	c4 := tcpSocket(t, unix.AF_INET6)
	f4, _ := h.l.SockConnect(c4, "127.0.0.1", port2)
	if _, err := h.await(f4, 2*time.Second); err != nil {
		t.Fatalf("connect an IPv6 socket to 127.0.0.1: %v", err)
	}
}

func TestSockDatagrams(t *testing.T) {
	h := newHarness(t)
	mk := func() (int, int) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		sa, _ := unix.Getsockname(fd)
		return fd, sa.(*unix.SockaddrInet4).Port
	}
	a, ap := mk()
	b, bp := mk()
	rf, _ := h.l.SockRecvfrom(b, 2048)
	sf, err := h.l.SockSendtoHost(a, []byte("datagram one"), "127.0.0.1", bp)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := h.await(sf, time.Second); err != nil || v.(int) != 12 {
		t.Fatalf("sendto: %v %v", v, err)
	}
	v, err := h.await(rf, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := v.(*Received)
	if string(r.Data) != "datagram one" || r.N != 12 {
		t.Fatalf("recvfrom %q", r.Data)
	}
	if host, port := SockaddrString(r.Addr); host != "127.0.0.1" || port != ap {
		t.Fatalf("recvfrom address %s:%d, want 127.0.0.1:%d", host, port, ap)
	}
	buf := make([]byte, 5)
	rf2, _ := h.l.SockRecvfromInto(b, buf)
	h.l.SockSendto(a, []byte("truncated datagram"), &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: bp})
	v, err = h.await(rf2, time.Second)
	if err != nil || v.(*Received).N != 5 || string(buf) != "trunc" || v.(*Received).Data != nil {
		t.Fatalf("recvfrom_into: %+v %v %q", v, err, buf)
	}
}
