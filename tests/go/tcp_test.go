package gotest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// echoServer echoes everything back; on EOF it closes.
type echoServer struct {
	asyncloop.BaseProtocol
	t     *testing.T
	tr    *asyncloop.Transport
	lost  chan error
	bytes int
}

func (e *echoServer) ConnectionMade(t *asyncloop.Transport) { e.tr = t }
func (e *echoServer) DataReceived(b []byte) {
	e.bytes += len(b)
	if _, err := e.tr.Write(b); err != nil {
		e.t.Errorf("server write: %v", err)
	}
}
func (e *echoServer) ConnectionLost(err error) { e.lost <- err }

// echoClient sends data and collects the echo.
type echoClient struct {
	asyncloop.BaseProtocol
	tr      *asyncloop.Transport
	want    int
	got     []byte
	done    *asyncloop.Future[any]
	lost    *asyncloop.Future[any]
	made    int
	pauses  int
	resumes int
}

func (c *echoClient) ConnectionMade(t *asyncloop.Transport) { c.tr = t; c.made++ }
func (c *echoClient) DataReceived(b []byte) {
	c.got = append(c.got, b...) // copy: b is only valid during the call
	if len(c.got) >= c.want && !c.done.Done() {
		c.done.SetResult(len(c.got))
	}
}
func (c *echoClient) PauseWriting()  { c.pauses++ }
func (c *echoClient) ResumeWriting() { c.resumes++ }
func (c *echoClient) ConnectionLost(err error) {
	if err != nil {
		c.lost.SetException(err)
	} else {
		c.lost.SetResult(nil)
	}
}

func startEchoServer(t *testing.T, l *asyncloop.Loop, lost chan error) (*asyncloop.Server, int) {
	t.Helper()
	sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol {
		return &echoServer{t: t, lost: lost}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, sf, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	srv, err := sf.Result()
	if err != nil {
		t.Fatal(err)
	}
	if !srv.IsServing() || srv.SocketCount() != 1 {
		t.Fatalf("serving %v, %d sockets", srv.IsServing(), srv.SocketCount())
	}
	host, port, err := srv.SockName(0)
	if err != nil || host != "127.0.0.1" || port == 0 {
		t.Fatalf("SockName %q %d %v", host, port, err)
	}
	return srv, port
}

func TestTCPEcho1MiB(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	lost := make(chan error, 1)
	srv, port := startEchoServer(t, l, lost)

	const size = 1 << 20
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	done, _ := l.NewFuture()
	clientLost, _ := l.NewFuture()
	c := &echoClient{want: size, done: done, lost: clientLost}
	cf, err := l.CreateConnection(bg, "127.0.0.1", port, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, cf, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	tr, err := cf.Result()
	if err != nil {
		t.Fatal(err)
	}
	if tr != c.tr || c.made != 1 {
		t.Fatalf("future transport %p, ConnectionMade got %p (%d calls)", tr, c.tr, c.made)
	}
	if v, err := cf.Result(); v != tr || err != nil {
		t.Fatalf("Result %v %v", v, err)
	}
	if h, p, err := tr.PeerName(); err != nil || h != "127.0.0.1" || p != port {
		t.Fatalf("PeerName %q %d %v", h, p, err)
	}
	if fd, err := tr.Fd(); err != nil || fd < 0 {
		t.Fatalf("Fd %d %v", fd, err)
	}
	// One 1 MiB write: the library buffers what the socket does not take.
	if n, err := tr.Write(payload); n != size || err != nil {
		t.Fatalf("Write %d %v", n, err)
	}
	if err := untilDone(t, l, done, 20*time.Second); err != nil {
		t.Fatalf("echo: %v (got %d bytes)", err, len(c.got))
	}
	if !bytes.Equal(c.got, payload) {
		t.Fatalf("echoed data differs (%d bytes)", len(c.got))
	}
	if c.pauses != c.resumes {
		t.Errorf("%d PauseWriting, %d ResumeWriting", c.pauses, c.resumes)
	}
	// Clean close: the server sees EOF and closes, both sides lose the
	// connection without error.
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, clientLost, 5*time.Second); err != nil {
		t.Fatalf("client ConnectionLost: %v", err)
	}
	l.CallLater(20*time.Millisecond, func() { l.Stop() })
	l.RunForever()
	select {
	case err := <-lost:
		if err != nil {
			t.Fatalf("server ConnectionLost(%v)", err)
		}
	default:
		t.Fatal("server ConnectionLost not called")
	}
	// The transport is stale now: calls fail, never crash.
	if _, err := tr.Write([]byte("x")); err == nil {
		t.Fatal("Write on a lost transport succeeded")
	}
	if !tr.IsClosing() || !tr.Lost() {
		t.Fatal("lost transport not closing")
	}
	closeServer(t, l, srv)
	settle(l)
	checkLeaks(t, base)
}

func closeServer(t *testing.T, l *asyncloop.Loop, srv *asyncloop.Server) {
	t.Helper()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	wc, err := srv.WaitClosed(bg)
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, wc, 5*time.Second); err != nil {
		t.Fatalf("WaitClosed: %v", err)
	}
}

// bufferedClient receives into its own buffer (BufferedProtocol).
type bufferedClient struct {
	asyncloop.BaseProtocol
	buf  []byte
	n    int
	want int
	done *asyncloop.Future[any]
	gets int
}

func (b *bufferedClient) GetBuffer(hint int) []byte {
	b.gets++
	return b.buf[b.n:]
}
func (b *bufferedClient) BufferUpdated(n int) {
	b.n += n
	if b.n >= b.want && !b.done.Done() {
		b.done.SetResult(nil)
	}
}

func TestTCPBufferedProtocol(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	srv, port := startEchoServer(t, l, make(chan error, 1))
	payload := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	done, _ := l.NewFuture()
	c := &bufferedClient{buf: make([]byte, len(payload)+1), want: len(payload), done: done}
	cf, err := l.CreateConnection(bg, "127.0.0.1", port, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, cf, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	tr, _ := cf.Result()
	tr.Write(payload)
	if err := untilDone(t, l, done, 10*time.Second); err != nil {
		t.Fatalf("%v after %d bytes", err, c.n)
	}
	if !bytes.Equal(c.buf[:c.n], payload) || c.gets == 0 {
		t.Fatalf("buffered echo differs (%d bytes, %d GetBuffer)", c.n, c.gets)
	}
	tr.Abort()
	l.CallLater(20*time.Millisecond, func() { l.Stop() })
	l.RunForever()
	closeServer(t, l, srv)
	settle(l)
	checkLeaks(t, base)
}

// freePort returns a loopback port with nothing listening on it.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestConnectionRefused(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	c := &echoClient{}
	f, err := l.CreateConnection(bg, "127.0.0.1", freePort(t), c)
	if err != nil {
		t.Fatal(err)
	}
	err = untilDone(t, l, f, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v, want ECONNREFUSED", err)
	}
	var ae *asyncloop.Error
	if !errors.As(err, &ae) || ae.Code != asyncloop.ECONNREFUSED || ae.Name != "ALOOP_ECONNREFUSED" {
		t.Fatalf("error %#v", err)
	}
	if _, err := f.Result(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Result(): %v", err)
	}
	if c.made != 0 || c.tr != nil {
		t.Fatal("protocol called for a refused connection")
	}
	checkLeaks(t, base)
}

// A server whose factory refuses connections (nil protocol): the client
// sees the connection closed.
func TestServerRefusesConnection(t *testing.T) {
	l := newLoop(t)
	var reported []*asyncloop.ExceptionContext
	l.SetExceptionHandler(func(_ *asyncloop.Loop, c *asyncloop.ExceptionContext) { reported = append(reported, c) })
	sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, sf, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	srv, _ := sf.Result()
	lost, _ := l.NewFuture()
	c := &echoClient{lost: lost}
	cf, err := l.CreateConnection(bg, "127.0.0.1", srv.Port(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, cf, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, lost, 5*time.Second); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client ConnectionLost: %v", err)
	}
	if len(reported) != 1 || reported[0].Message == "" {
		t.Fatalf("exception handler got %+v, want one report of the refused connection", reported)
	}
	closeServer(t, l, srv)
}
