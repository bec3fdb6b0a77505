package core

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var abstractSeq atomic.Int64

func abstractName() string {
	return fmt.Sprintf("@asyncloop-core-test-%d-%d", os.Getpid(), abstractSeq.Add(1))
}

// serveUnix starts a Unix server at path whose connections echo.
func (h *harness) serveUnix(path string, opts *UnixServerOptions, newProto func() Protocol) *Server {
	h.t.Helper()
	f, err := h.l.CreateUnixServer(path, func(t *Transport) error {
		t.SetProtocol(newProto())
		return nil
	}, opts)
	if err != nil {
		h.t.Fatalf("CreateUnixServer(%q): %v", path, err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		h.t.Fatalf("CreateUnixServer(%q) future: %v", path, err)
	}
	return v.(*Server)
}

func echoRec(h *harness, name string) *recProto {
	p := newRec(h, name)
	p.onData = func(t *Transport, b []byte) { t.Write(b) }
	return p
}

func unixEcho(t *testing.T, path string) {
	h := newHarness(t)
	var srv []*recProto
	s := h.serveUnix(path, nil, func() Protocol { p := echoRec(h, "server"); srv = append(srv, p); return p })
	addrs := s.Addrs()
	if len(addrs) != 1 {
		t.Fatalf("server has %d sockets", len(addrs))
	}
	if got, _ := SockaddrString(addrs[0]); got != "@"+path[1:] && got != path {
		t.Fatalf("server address %q, want %q", got, path)
	}
	c := newRec(h, "client")
	f, err := h.l.CreateUnixConnection(path, c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatalf("CreateUnixConnection: %v", err)
	}
	tr := v.(*Transport)
	if c.made != 1 {
		t.Fatalf("connection_made ran %d times before the future resolved", c.made)
	}
	msg := pattern(200000, 7)
	if err := tr.Write(msg); err != nil {
		t.Fatal(err)
	}
	h.runUntil("echo", 10*time.Second, func() bool { return len(c.data) >= len(msg) })
	if !bytes.Equal(c.data, msg) {
		t.Fatalf("echo differs: %s", firstDiff(c.data, msg))
	}
	// Addresses: the client is unnamed, the server side is the path.
	peer, err := tr.Peername()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := SockaddrString(peer); got != addrsName(path) {
		t.Fatalf("client peername %q, want %q", got, addrsName(path))
	}
	local, err := tr.Sockname()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := SockaddrString(local); got != "" {
		t.Fatalf("client sockname %q, want \"\" (unnamed)", got)
	}
	if len(srv) != 1 {
		t.Fatalf("%d server connections", len(srv))
	}
	speer, err := srv[0].tr.Peername()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := SockaddrString(speer); got != "" {
		t.Fatalf("server-side peername %q, want \"\"", got)
	}
	tr.WriteEOF()
	h.runUntil("lost", 5*time.Second, func() bool { return c.losts == 1 && srv[0].losts == 1 })
	if c.lostErr != nil || srv[0].lostErr != nil {
		t.Fatalf("lost errors: %v %v", c.lostErr, srv[0].lostErr)
	}
	s.Close()
	h.runUntil("closed", time.Second, func() bool { return true })
}

func addrsName(path string) string {
	if path[0] == 0 {
		return "@" + path[1:]
	}
	return path
}

func TestUnixEchoPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	unixEcho(t, path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file still there after the server closed: %v", err)
	}
}

func TestUnixEchoAbstract(t *testing.T) {
	unixEcho(t, abstractName())
	unixEcho(t, "\x00"+abstractName()[1:])
}

func TestUnixStaleSocketReplaced(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "stale.sock")
	// A socket file left behind by a dead server.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if st, err := os.Stat(path); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket file: %v", err)
	}
	s := h.serveUnix(path, nil, func() Protocol { return echoRec(h, "server") })
	c := newRec(h, "client")
	f, _ := h.l.CreateUnixConnection(path, c)
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to the new server: %v", err)
	}
	v.(*Transport).Write([]byte("ping"))
	h.runUntil("echo", 5*time.Second, func() bool { return string(c.data) == "ping" })
	v.(*Transport).Close()
	s.Close()
	h.runUntil("lost", 5*time.Second, func() bool { return c.losts == 1 })
	h.runFor(20 * time.Millisecond)
}

func TestUnixServerNoCleanupAndRegularFile(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "keep.sock")
	s := h.serveUnix(path, &UnixServerOptions{NoCleanup: true, Backlog: 5}, func() Protocol { return echoRec(h, "s") })
	s.Close()
	if st, err := os.Stat(path); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("NoCleanup: socket file gone: %v", err)
	}
	// A regular file is not replaced: EADDRINUSE.
	file := filepath.Join(dir, "regular")
	os.WriteFile(file, []byte("x"), 0o600)
	f, err := h.l.CreateUnixServer(file, func(*Transport) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.await(f, time.Second)
	if Errno(err) != unix.EADDRINUSE {
		t.Fatalf("server on a regular file: %v, want EADDRINUSE", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "x" {
		t.Fatalf("the regular file was touched")
	}
	// A socket file replaced by another file is not removed on close.
	path2 := filepath.Join(dir, "moved.sock")
	s2 := h.serveUnix(path2, nil, func() Protocol { return echoRec(h, "s") })
	os.Remove(path2)
	os.WriteFile(path2, []byte("y"), 0o600)
	s2.Close()
	if b, _ := os.ReadFile(path2); string(b) != "y" {
		t.Fatalf("close removed a file the server did not create")
	}
}

func TestUnixConnectErrors(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	f, err := h.l.CreateUnixConnection(filepath.Join(dir, "missing.sock"), newRec(h, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.await(f, time.Second); Errno(err) != unix.ENOENT {
		t.Fatalf("missing socket: %v, want ENOENT", err)
	}
	// A socket file nobody listens on.
	path := filepath.Join(dir, "dead.sock")
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Close(fd)
	f, _ = h.l.CreateUnixConnection(path, newRec(h, "c"))
	if _, err := h.await(f, time.Second); Errno(err) != unix.ECONNREFUSED {
		t.Fatalf("dead socket: %v, want ECONNREFUSED", err)
	}
	f, _ = h.l.CreateUnixConnection(abstractName(), newRec(h, "c"))
	if _, err := h.await(f, time.Second); Errno(err) != unix.ECONNREFUSED {
		t.Fatalf("unbound abstract name: %v, want ECONNREFUSED", err)
	}
	for _, bad := range []string{"", string(make([]byte, 200)), "a\x00b"} {
		if _, err := h.l.CreateUnixConnection(bad, newRec(h, "c")); !errors.Is(err, ErrInvalid) {
			t.Fatalf("path %q: %v, want ErrInvalid", bad, err)
		}
		if _, err := h.l.CreateUnixServer(bad, func(*Transport) error { return nil }, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("server path %q: %v, want ErrInvalid", bad, err)
		}
	}
	if h.l.Alive() {
		t.Fatalf("failed connections left the loop alive")
	}
}

func TestConnectAcceptedSocketPair(t *testing.T) {
	h := newHarness(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	p := newRec(h, "accepted")
	f, err := h.l.ConnectAcceptedSocket(fds[0], p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.await(f, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tr := v.(*Transport)
	if tr.Fd() != fds[0] || p.made != 1 {
		t.Fatalf("fd %d made %d", tr.Fd(), p.made)
	}
	if fl, _ := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatalf("the socket was not made non-blocking")
	}
	unix.Write(fds[1], []byte("from peer"))
	h.runUntil("data", 5*time.Second, func() bool { return string(p.data) == "from peer" })
	tr.Write([]byte("to peer"))
	if !readable(t, fds[1], 2000) {
		t.Fatal("peer got nothing")
	}
	buf := make([]byte, 64)
	n, _ := unix.Read(fds[1], buf)
	if string(buf[:n]) != "to peer" {
		t.Fatalf("peer read %q", buf[:n])
	}
	tr.Close()
	h.runUntil("lost", 5*time.Second, func() bool { return p.losts == 1 })
	// The transport owned the fd: it is closed, the peer sees EOF.
	if n, _ := unix.Read(fds[1], buf); n != 0 {
		t.Fatalf("peer read %d bytes after close, want EOF", n)
	}
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("fd still open after connection_lost: %v", err)
	}
}

func TestConnectAcceptedSocketTCP(t *testing.T) {
	h := newHarness(t)
	lfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(lfd)
	unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	unix.Listen(lfd, 1)
	sa, _ := unix.Getsockname(lfd)
	cfd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(cfd)
	if err := unix.Connect(cfd, sa); err != nil {
		t.Fatal(err)
	}
	afd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	p := echoRec(h, "accepted")
	f, err := h.l.ConnectAcceptedSocket(afd, p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.await(f, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if nd, _ := unix.GetsockoptInt(afd, unix.IPPROTO_TCP, unix.TCP_NODELAY); nd == 0 {
		t.Fatalf("TCP_NODELAY not set on an accepted TCP socket")
	}
	unix.Write(cfd, []byte("echo me"))
	deadline := time.Now().Add(5 * time.Second)
	var got []byte
	buf := make([]byte, 64)
	unix.SetNonblock(cfd, true)
	for len(got) < 7 && time.Now().Before(deadline) {
		h.l.RunOnceTimeout(0.01)
		if n, err := unix.Read(cfd, buf); err == nil && n > 0 {
			got = append(got, buf[:n]...)
		}
	}
	if string(got) != "echo me" {
		t.Fatalf("echo over an accepted TCP socket: %q", got)
	}
	peer, _ := v.(*Transport).Peername()
	if host, port := SockaddrString(peer); host != "127.0.0.1" || port == 0 {
		t.Fatalf("peername %s:%d", host, port)
	}
	v.(*Transport).Abort()
	h.runUntil("lost", time.Second, func() bool { return p.losts == 1 })
}

func TestConnectAcceptedSocketErrors(t *testing.T) {
	h := newHarness(t)
	var p [2]int
	unix.Pipe2(p[:], unix.O_CLOEXEC)
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := h.l.ConnectAcceptedSocket(p[0], newRec(h, "x")); Errno(err) != unix.ENOTSOCK {
		t.Fatalf("pipe: %v, want ENOTSOCK", err)
	}
	ufd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(ufd)
	if _, err := h.l.ConnectAcceptedSocket(ufd, newRec(h, "x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("UDP socket: %v, want ErrInvalid", err)
	}
	if _, err := h.l.ConnectAcceptedSocket(-1, newRec(h, "x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("fd -1: %v", err)
	}
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	h.l.AddReader(fds[0], func() {}, nil)
	if _, err := h.l.ConnectAcceptedSocket(fds[0], newRec(h, "x")); Errno(err) != unix.EBUSY {
		t.Fatalf("watched fd: %v, want EBUSY", err)
	}
	h.l.RemoveReader(fds[0])
	if h.l.Alive() {
		t.Fatalf("failed calls left the loop alive")
	}
}
