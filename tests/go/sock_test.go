package gotest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
	"golang.org/x/sys/unix"
)

func nonblockingSocket(t *testing.T, domain, typ int) int {
	t.Helper()
	fd, err := unix.Socket(domain, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// sock_accept, sock_connect, sock_sendall, sock_recv, sock_recv_into,
// sock_sendfile on plain non-blocking sockets.
func TestSockStream(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	lfd := nonblockingSocket(t, unix.AF_INET, unix.SOCK_STREAM)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(lfd, 8)
	sa, _ := unix.Getsockname(lfd)
	port := sa.(*unix.SockaddrInet4).Port

	af, err := l.SockAccept(bg, lfd)
	if err != nil {
		t.Fatal(err)
	}
	cfd := nonblockingSocket(t, unix.AF_INET, unix.SOCK_STREAM)
	cf, err := l.SockConnect(bg, cfd, "127.0.0.1", port)
	await(t, l, cf, err)
	acc := await(t, l, af, nil)
	defer unix.Close(acc.Fd)
	if a, ok := acc.Addr.(*net.TCPAddr); !ok || a.Port == 0 {
		t.Fatalf("accepted from %#v", acc.Addr)
	}

	payload := bytes.Repeat([]byte("sock_sendall "), 100000) // 1.3 MB
	sf, err := l.SockSendAll(bg, cfd, payload)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for len(got) < len(payload) {
		rf, err := l.SockRecvInto(bg, acc.Fd, buf)
		n := await(t, l, rf, err)
		got = append(got, buf[:n]...)
	}
	if n := await(t, l, sf, nil); n != len(payload) || !bytes.Equal(got, payload) {
		t.Fatalf("sendall %d, received %d bytes (equal %v)", n, len(got), bytes.Equal(got, payload))
	}

	// sock_sendfile from a regular file, then sock_recv.
	file := filepath.Join(t.TempDir(), "data")
	os.WriteFile(file, []byte("0123456789abcdefghij"), 0o600)
	f, _ := os.Open(file)
	defer f.Close()
	ff, err := l.SockSendfile(bg, cfd, f, 5, 10, false)
	if n := await(t, l, ff, err); n != 10 {
		t.Fatalf("sendfile sent %d", n)
	}
	if off, _ := f.Seek(0, 1); off != 15 {
		t.Fatalf("file offset %d, want 15", off)
	}
	var recv []byte
	for len(recv) < 10 {
		rf, err := l.SockRecv(bg, acc.Fd, 100)
		recv = append(recv, await(t, l, rf, err)...)
	}
	if string(recv) != "56789abcde" {
		t.Fatalf("recv %q", recv)
	}
	// EOF: an empty result.
	unix.Shutdown(cfd, unix.SHUT_WR)
	rf, err := l.SockRecv(bg, acc.Fd, 100)
	if b := await(t, l, rf, err); len(b) != 0 {
		t.Fatalf("recv at EOF %q", b)
	}
	settle(l)
	checkLeaks(t, base)
}

// Bad arguments fail at once; a cancelled recv_into never writes into the
// buffer.
func TestSockErrors(t *testing.T) {
	l := newLoop(t)
	blocking, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(blocking)
	if _, err := l.SockRecv(bg, blocking, 10); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("blocking socket: %v, want EINVAL", err)
	}
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	buf := make([]byte, 8)
	f, err := l.SockRecvInto(bg, fds[0], buf)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Cancel() {
		t.Fatal("Cancel failed")
	}
	unix.Write(fds[1], []byte("late"))
	settle(l)
	if !bytes.Equal(buf, make([]byte, 8)) {
		t.Fatalf("a cancelled recv_into wrote %q", buf)
	}
	if _, err := f.Result(); !errors.Is(err, asyncloop.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Result of a cancelled op: %v", err)
	}
	// A connect to a closed port: ECONNREFUSED in a dial *net.OpError.
	cfd := nonblockingSocket(t, unix.AF_INET, unix.SOCK_STREAM)
	cf, _ := l.SockConnect(bg, cfd, "127.0.0.1", freePort(t))
	err = untilDone(t, l, cf, 5*time.Second)
	var op *net.OpError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("connect: %v", err)
	}
}

// sock_sendto / sock_recvfrom / sock_recvfrom_into on UDP sockets.
func TestSockDatagram(t *testing.T) {
	l := newLoop(t)
	a := nonblockingSocket(t, unix.AF_INET, unix.SOCK_DGRAM)
	b := nonblockingSocket(t, unix.AF_INET, unix.SOCK_DGRAM)
	unix.Bind(a, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	unix.Bind(b, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	sa, _ := unix.Getsockname(a)
	aAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}
	sb, _ := unix.Getsockname(b)
	bPort := sb.(*unix.SockaddrInet4).Port

	rf, err := l.SockRecvFrom(bg, a, 100)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := l.SockSendTo(bg, b, []byte("datagram"), aAddr)
	if n := await(t, l, sf, err); n != 8 {
		t.Fatalf("sendto %d", n)
	}
	p := await(t, l, rf, nil)
	if string(p.Data) != "datagram" {
		t.Fatalf("recvfrom %q", p.Data)
	}
	if ua, ok := p.Addr.(*net.UDPAddr); !ok || ua.Port != bPort {
		t.Fatalf("from %#v, want port %d", p.Addr, bPort)
	}
	// recvfrom_into: Data is the part of the buffer filled.
	buf := make([]byte, 32)
	rif, err := l.SockRecvFromInto(bg, a, buf)
	if err != nil {
		t.Fatal(err)
	}
	sf2, err := l.SockSendTo(bg, b, []byte("into"), aAddr)
	await(t, l, sf2, err)
	p2 := await(t, l, rif, nil)
	if string(p2.Data) != "into" || &p2.Data[0] != &buf[0] {
		t.Fatalf("recvfrom_into %q", p2.Data)
	}
}

// getaddrinfo / getnameinfo of numeric addresses (no network).
func TestDNSNumeric(t *testing.T) {
	l := newLoop(t)
	f, err := l.GetAddrInfo(bg, "::1", "8080", syscall.AF_INET6, syscall.SOCK_DGRAM, 0, 0)
	infos := await(t, l, f, err)
	if len(infos) != 1 {
		t.Fatalf("%+v", infos)
	}
	ai := infos[0]
	ua, ok := ai.Addr.(*net.UDPAddr)
	if !ok || ai.Family != syscall.AF_INET6 || ai.Type != syscall.SOCK_DGRAM || ua.Port != 8080 || !ua.IP.Equal(net.IPv6loopback) {
		t.Fatalf("%+v (%#v)", ai, ai.Addr)
	}
	g, err := l.GetNameInfo(bg, "127.0.0.1", 80, asyncloop.NINumericHost|asyncloop.NINumericServ)
	ni := await(t, l, g, err)
	if ni.Host != "127.0.0.1" || ni.Service != "80" {
		t.Fatalf("%+v", ni)
	}
	// localhost comes from /etc/hosts (no DNS query).
	h, err := l.GetAddrInfo(bg, "localhost", "http", syscall.AF_INET, syscall.SOCK_STREAM, 0, 0)
	infos = await(t, l, h, err)
	if len(infos) == 0 || infos[0].Addr.(*net.TCPAddr).Port != 80 {
		t.Fatalf("localhost: %+v", infos)
	}
}

// writelines and loop.sendfile over a transport.
func TestWriteLinesAndSendfile(t *testing.T) {
	l := newLoop(t)
	srv, port := startEchoServer(t, l, make(chan error, 1))
	c := newCollector(t, l, 12+26)
	cf, err := l.CreateConnection(bg, "127.0.0.1", port, c)
	tr := await(t, l, cf, err)
	n, err := tr.WriteLines([][]byte{[]byte("one "), nil, []byte("two "), []byte("three")})
	if n != 13 || err != nil {
		t.Fatalf("WriteLines %d %v", n, err)
	}
	file := filepath.Join(t.TempDir(), "abc")
	os.WriteFile(file, []byte("abcdefghijklmnopqrstuvwxyz"), 0o600)
	f, _ := os.Open(file)
	defer f.Close()
	c.want = 13 + 25
	sf, err := tr.Sendfile(bg, f, 1, 0, false)
	if n := await(t, l, sf, err); n != 25 {
		t.Fatalf("sendfile sent %d", n)
	}
	got := await(t, l, c.got, nil)
	if string(got) != "one two threebcdefghijklmnopqrstuvwxyz" {
		t.Fatalf("echo %q", got)
	}
	// A pipe cannot be sent with sendfile(2): ENOSYS without fallback.
	r, w, _ := os.Pipe()
	defer r.Close()
	w.Write([]byte("piped"))
	w.Close()
	pf, err := tr.Sendfile(bg, r, 0, 0, false)
	if err == nil {
		err = untilDone(t, l, pf, 5*time.Second)
	}
	if !errors.Is(err, syscall.ENOSYS) {
		t.Fatalf("sendfile of a pipe without fallback: %v, want ENOSYS", err)
	}
	tr.Close()
	await(t, l, c.lost, nil)
	closeServer(t, l, srv)
}

// The default executor runs Go functions on the library's threads.
func TestExecutor(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	if err := l.SetDefaultExecutorSize(2); err != nil {
		t.Fatal(err)
	}
	var running, most atomic.Int32
	var futs []*asyncloop.Future[int]
	for i := range 6 {
		f, err := asyncloop.RunInExecutor(bg, l, func() (int, error) {
			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond) // blocks a library thread, not the loop
			running.Add(-1)
			return i * i, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	for i, f := range futs {
		if v := await(t, l, f, nil); v != i*i {
			t.Fatalf("job %d returned %d", i, v)
		}
	}
	if m := most.Load(); m != 2 {
		t.Fatalf("%d jobs ran at once with 2 workers", m)
	}
	// Errors and panics come back as the future's error.
	myErr := errors.New("job failed")
	ef, _ := asyncloop.RunInExecutor(bg, l, func() (string, error) { return "", myErr })
	if err := untilDone(t, l, ef, 5*time.Second); err != myErr {
		t.Fatalf("job error %v", err)
	}
	pf, _ := l.RunInExecutor(bg, func() (any, error) { panic("in a job") })
	var pe *asyncloop.PanicError
	if err := untilDone(t, l, pf, 5*time.Second); !errors.As(err, &pe) || pe.Value != "in a job" {
		t.Fatalf("job panic %v", err)
	}
	// Shut down: later jobs fail with ErrClosed.
	sf, err := l.ShutdownDefaultExecutor(bg)
	await(t, l, sf, err)
	if _, err := l.RunInExecutor(bg, func() (any, error) { return nil, nil }); !errors.Is(err, asyncloop.ErrClosed) {
		t.Fatalf("RunInExecutor after shutdown: %v", err)
	}
	settle(l)
	checkLeaks(t, base)
}
