package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hangingListener6 listens on [::1]:port with a full accept queue: a new
// connection to it hangs in SYN_SENT (its SYNs are dropped).
func hangingListener6(t *testing.T, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	lo := &unix.SockaddrInet6{Port: port}
	lo.Addr[15] = 1
	if err := unix.Bind(fd, lo); err != nil {
		t.Skipf("bind [::1]:%d: %v", port, err)
	}
	unix.Listen(fd, 0)
	c, _ := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	t.Cleanup(func() { unix.Close(c) })
	if err := unix.Connect(c, lo); err != nil {
		t.Fatalf("fill the queue: %v", err)
	}
}

func TestHappyEyeballs(t *testing.T) {
	h := newHarness(t)
	s, port, _ := h.echoServer()
	defer s.Close()
	hangingListener6(t, port)

	// Without Happy Eyeballs: ::1 first (host "" = the loopback addresses,
	// IPv6 first), and it hangs.
	f, err := h.l.CreateConnection("", port, BaseProtocol{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.runFor(300 * time.Millisecond)
	if f.Done() {
		v, err := f.Result()
		t.Fatalf("sequential connect finished while ::1 hangs: %v %v", v, err)
	}
	f.Cancel("")

	// With it: 127.0.0.1 is tried 50 ms later and wins.
	fds := openFds(t)
	c := newRec(h, "client")
	f, _ = h.l.CreateConnection("", port, c, &ConnectOptions{HappyEyeballsDelay: 0.05})
	v, err := h.await(f, 900*time.Millisecond)
	if err != nil {
		t.Fatalf("happy eyeballs: %v", err)
	}
	tr := v.(*Transport)
	peer, _ := tr.Peername()
	if host, p := SockaddrString(peer); host != "127.0.0.1" || p != port {
		t.Fatalf("connected to %s:%d", host, p)
	}
	// The losing attempt was closed: only the winner's fd is new (plus the
	// accepted one on the server side).
	h.runFor(20 * time.Millisecond)
	if n := openFds(t); n > fds+2 {
		t.Errorf("%d fds open after the race, %d before: the losing attempt leaked", n, fds)
	}
	tr.Write([]byte("he"))
	h.runUntil("echo", 2*time.Second, func() bool { return string(c.data) == "he" })
	tr.Close()

	// Family filter: AF_INET skips ::1 entirely.
	f, _ = h.l.CreateConnection("", port, BaseProtocol{}, &ConnectOptions{Family: unix.AF_INET})
	v, err = h.await(f, 900*time.Millisecond)
	if err != nil {
		t.Fatalf("AF_INET: %v", err)
	}
	v.(*Transport).Close()
	h.runFor(10 * time.Millisecond)
}

func TestConnectAllRefused(t *testing.T) {
	h := newHarness(t)
	port := closedPort(t)
	f, _ := h.l.CreateConnection("", port, BaseProtocol{}, &ConnectOptions{HappyEyeballsDelay: 0.2})
	_, err := h.await(f, 5*time.Second)
	if Errno(err) != unix.ECONNREFUSED || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("every address refused: %v", err)
	}
	h.runUntil("loop closable", time.Second, func() bool { return h.l.Close() == nil })
}

func TestConnectWithSock(t *testing.T) {
	h := newHarness(t)
	s, port, _ := h.echoServer()
	defer s.Close()
	fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.l.CreateConnection("127.0.0.1", port, BaseProtocol{}, &ConnectOptions{HasSock: true, Sock: fd}); !errors.Is(err, ErrInvalid) {
		t.Errorf("host and sock: %v", err)
	}
	c := newRec(h, "client")
	f, err := h.l.CreateConnection("", 0, c, &ConnectOptions{HasSock: true, Sock: fd})
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.await(f, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tr := v.(*Transport)
	if tr.Fd() != fd {
		t.Fatalf("transport fd %d, want %d", tr.Fd(), fd)
	}
	tr.Write([]byte("wrapped"))
	h.runUntil("echo", 2*time.Second, func() bool { return string(c.data) == "wrapped" })
	tr.Close()
	h.runUntil("lost", time.Second, func() bool { return c.losts == 1 })
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("the transport did not close the wrapped socket")
	}
	s.Close()
	h.runUntil("loop closable", 2*time.Second, func() bool { return h.l.Close() == nil })
}

func TestServerHostsAndSock(t *testing.T) {
	h := newHarness(t)
	f, err := h.l.CreateServer("", 0, func(t *Transport) error { t.SetProtocol(BaseProtocol{}); return nil },
		&ServerOptions{Hosts: []string{"127.0.0.1", "::1", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.await(f, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := v.(*Server)
	if len(s.Addrs()) != 2 {
		t.Fatalf("listening on %d sockets, want 2 (duplicates dropped)", len(s.Addrs()))
	}
	for _, sa := range s.Addrs() {
		host, port := SockaddrString(sa)
		if port == 0 || (host != "127.0.0.1" && host != "::1") {
			t.Errorf("listening on %s:%d", host, port)
		}
		tr := h.dialHost(host, port)
		tr.Close()
	}
	s.Close()

	// An existing socket, bound but not listening.
	fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	sa, _ := unix.Getsockname(fd)
	port := sa.(*unix.SockaddrInet4).Port
	accepted := 0
	f, err = h.l.CreateServer("", 0, func(t *Transport) error { accepted++; t.SetProtocol(BaseProtocol{}); return nil },
		&ServerOptions{HasSock: true, Sock: fd})
	if err != nil {
		t.Fatal(err)
	}
	v, _ = h.await(f, time.Second)
	s = v.(*Server)
	if s.Sockets()[0] != fd {
		t.Fatal("server does not use the given socket")
	}
	tr := h.dial(port, BaseProtocol{})
	h.runUntil("accepted", time.Second, func() bool { return accepted == 1 })
	tr.Close()
	s.Close()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("server close did not close the given socket")
	}

	// Host and hosts together, sock with a host: invalid.
	if _, err := h.l.CreateServer("127.0.0.1", 0, func(*Transport) error { return nil }, &ServerOptions{Hosts: []string{"::1"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("host and hosts: %v", err)
	}
	h.runFor(10 * time.Millisecond)
}

func (h *harness) dialHost(host string, port int) *Transport {
	h.t.Helper()
	f, err := h.l.CreateConnection(host, port, BaseProtocol{}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := h.await(f, 2*time.Second)
	if err != nil {
		h.t.Fatalf("connect %s:%d: %v", host, port, err)
	}
	return v.(*Transport)
}
