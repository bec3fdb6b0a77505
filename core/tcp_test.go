package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoServer serves protocols that write back what they receive and close on
// EOF; the recorded server-side protocols are returned through *[]*recProto.
func (h *harness) echoServer() (*Server, int, *[]*recProto) {
	var protos []*recProto
	s, port := h.serve(func() Protocol {
		p := newRec(h, fmt.Sprintf("server%d", len(protos)))
		p.onData = func(t *Transport, b []byte) {
			if err := t.Write(b); err != nil {
				h.t.Errorf("echo Write: %v", err)
			}
		}
		protos = append(protos, p)
		return p
	})
	return s, port, &protos
}

func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestTCPEcho1MiB(t *testing.T) {
	fdsBefore := openFds(t)
	h := newHarness(t)
	l := h.l
	s, port, sprotos := h.echoServer()
	if !s.IsServing() || len(s.Sockets()) != 1 {
		t.Fatalf("server: serving=%v sockets=%v", s.IsServing(), s.Sockets())
	}
	want := pattern(1<<20, 1)
	c := newRec(h, "client")
	var madeBeforeResult bool
	f, err := l.CreateConnection("127.0.0.1", port, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.AddDoneCallback(func(*Future) { madeBeforeResult = c.made == 1 }, nil, nil)
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	tr := v.(*Transport)
	if tr != c.tr || c.made != 1 {
		t.Fatalf("future done before ConnectionMade, or its result is another transport (made=%d)", c.made)
	}
	l.Run(RunNoWait)
	if !madeBeforeResult {
		t.Fatalf("done callback of the connect future did not see ConnectionMade")
	}
	if tr.Loop() != l || tr.Protocol() != c || tr.Fd() < 0 {
		t.Fatalf("transport accessors")
	}
	peer, err := tr.Peername()
	if err != nil || peer.(*unix.SockaddrInet4).Port != port {
		t.Fatalf("Peername = %#v, %v", peer, err)
	}
	if host, p := SockaddrString(peer); host != "127.0.0.1" || p != port {
		t.Fatalf("SockaddrString(peer) = %s %d", host, p)
	}
	if _, err := tr.Sockname(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Write(want); err != nil {
		t.Fatal(err)
	}
	h.runUntil("1 MiB echo", 10*time.Second, func() bool { return len(c.data) >= len(want) })
	if !bytes.Equal(c.data, want) {
		t.Fatalf("echoed data differs: %s", firstDiff(c.data, want))
	}
	if len(*sprotos) != 1 {
		t.Fatalf("server made %d protocols", len(*sprotos))
	}
	sp := (*sprotos)[0]
	if !bytes.Equal(sp.data, want) {
		t.Fatalf("server received: %s", firstDiff(sp.data, want))
	}
	if err := l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close with live transports: %v, want ErrBusy", err)
	}
	tr.Close()
	if !tr.IsClosing() || tr.IsReading() {
		t.Fatalf("after Close: IsClosing=%v IsReading=%v", tr.IsClosing(), tr.IsReading())
	}
	if c.losts != 0 {
		t.Fatalf("ConnectionLost called inline by Close")
	}
	// Until connection_lost runs, a write is still taken and sent before
	// the close (asyncio's socket transport does the same).
	if err := tr.Write([]byte("x")); err != nil {
		t.Fatalf("Write right after Close: %v", err)
	}
	tr.Close() // harmless twice
	h.runUntil("both sides lost", 5*time.Second, func() bool { return c.losts == 1 && sp.losts == 1 })
	if c.lostErr != nil || sp.lostErr != nil {
		t.Fatalf("clean close: client err %v, server err %v", c.lostErr, sp.lostErr)
	}
	if !bytes.Equal(sp.data, append(append([]byte(nil), want...), 'x')) {
		t.Fatalf("server received after the close: %s", firstDiff(sp.data, append(want, 'x')))
	}
	if err := tr.Write([]byte("y")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after connection_lost: %v", err)
	}
	if sp.eofs != 1 || strings.Join(sp.log, ",") != "made,eof,lost" {
		t.Fatalf("server callbacks: %v", sp.log)
	}
	if tr.Fd() != -1 {
		t.Fatalf("Fd after connection lost = %d", tr.Fd())
	}
	if _, err := tr.Peername(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Peername after close: %v", err)
	}
	s.Close()
	wc := s.WaitClosed()
	if !wc.Done() {
		h.runUntil("WaitClosed", 2*time.Second, wc.Done)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("loop Close: %v", err)
	}
	if n := openFds(t); n != fdsBefore {
		t.Fatalf("%d fds open at the end, %d at the start", n, fdsBefore)
	}
}

func TestTCP100Connections(t *testing.T) {
	h := newHarness(t)
	l := h.l
	s, port, sprotos := h.echoServer()
	const N = 100
	clients := make([]*recProto, N)
	futs := make([]*Future, N)
	for i := 0; i < N; i++ {
		c := newRec(h, fmt.Sprintf("client%d", i))
		msg := fmt.Sprintf("hello from %d", i)
		c.onMade = func(t *Transport) { t.Write([]byte(msg)) }
		c.onData = func(t *Transport, b []byte) {
			if len(c.data) >= len(msg) {
				t.Close()
			}
		}
		clients[i] = c
		f, err := l.CreateConnection("127.0.0.1", port, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		futs[i] = f
	}
	h.runUntil("100 echoes", 15*time.Second, func() bool {
		for _, c := range clients {
			if c.losts == 0 {
				return false
			}
		}
		return true
	})
	for i, c := range clients {
		if string(c.data) != fmt.Sprintf("hello from %d", i) || c.lostErr != nil {
			t.Fatalf("client %d: got %q, lost err %v", i, c.data, c.lostErr)
		}
		if v, err := futs[i].Result(); err != nil || v.(*Transport) != c.tr {
			t.Fatalf("client %d future: %v", i, err)
		}
	}
	h.runUntil("server side closed", 5*time.Second, func() bool {
		n := 0
		for _, p := range *sprotos {
			n += p.losts
		}
		return n == N
	})
	if len(*sprotos) != N {
		t.Fatalf("server accepted %d connections", len(*sprotos))
	}
	s.Close()
	if err := l.Close(); err != nil {
		t.Fatalf("loop Close: %v", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	h := newHarness(t)
	port := closedPort(t)
	c := newRec(h, "client")
	f, err := h.l.CreateConnection("127.0.0.1", port, c, nil)
	if err != nil {
		t.Fatalf("CreateConnection: %v", err)
	}
	_, err = h.await(f, 5*time.Second)
	if !errors.Is(err, unix.ECONNREFUSED) || !errors.Is(err, syscall.ECONNREFUSED) || Errno(err) != unix.ECONNREFUSED {
		t.Fatalf("connect to a closed port: %v (%T), want ECONNREFUSED", err, err)
	}
	h.runFor(20 * time.Millisecond)
	if c.made != 0 || len(c.log) != 0 {
		t.Fatalf("protocol callbacks after a refused connection: %v", c.log)
	}
	if err := h.l.Close(); err != nil {
		t.Fatalf("loop Close after a refused connection: %v", err)
	}
}

func TestCreateConnectionBadArgs(t *testing.T) {
	h := newHarness(t)
	if _, err := h.l.CreateConnection("127.0.0.1", 80, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil protocol: %v", err)
	}
	for _, p := range []int{-1, 65536} {
		if _, err := h.l.CreateConnection("127.0.0.1", p, BaseProtocol{}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("port %d: %v", p, err)
		}
	}
	if _, err := h.l.CreateServer("127.0.0.1", 0, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil factory: %v", err)
	}
	// Binding to a port in use fails through the future.
	s, port := h.serve(func() Protocol { return BaseProtocol{} })
	f, err := h.l.CreateServer("127.0.0.1", port, func(t *Transport) error { return nil }, &ServerOptions{NoReuseAddr: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.await(f, 2*time.Second); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("second server on the same port: %v, want EADDRINUSE", err)
	}
	s.Close()
}

// write_eof, and EOFReceived returning true keeps the transport open for
// writing (asyncio half-close).
func TestWriteEOFHalfClose(t *testing.T) {
	h := newHarness(t)
	l := h.l
	var sp *recProto
	s, port := h.serve(func() Protocol {
		sp = newRec(h, "server")
		sp.onEOF = func(t *Transport) bool {
			// Reply after returning true, from a later callback.
			l.CallSoon(func() {
				if t.IsClosing() {
					h.t.Errorf("transport closing after EOFReceived returned true")
				}
				if err := t.Write([]byte(fmt.Sprintf("got %d bytes", len(sp.data)))); err != nil {
					h.t.Errorf("Write after EOFReceived returned true: %v", err)
				}
				t.Close()
			}, nil)
			return true
		}
		return sp
	})
	c := newRec(h, "client")
	tr := h.dial(port, c)
	if !tr.CanWriteEOF() {
		t.Fatalf("CanWriteEOF false")
	}
	tr.Write(pattern(100000, 3))
	if err := tr.WriteEOF(); err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteEOF(); err != nil {
		t.Fatalf("second WriteEOF: %v", err)
	}
	if err := tr.Write([]byte("more")); err == nil || Errno(err) != unix.EPIPE {
		t.Fatalf("Write after WriteEOF: %v, want an EPIPE error", err)
	}
	if tr.IsClosing() {
		t.Fatalf("WriteEOF made the transport closing")
	}
	h.runUntil("client lost", 5*time.Second, func() bool { return c.losts == 1 && sp != nil && sp.losts == 1 })
	if string(c.data) != "got 100000 bytes" {
		t.Fatalf("client received %q", c.data)
	}
	if strings.Join(c.log, ",") != "made,eof,lost" || c.lostErr != nil {
		t.Fatalf("client callbacks %v err %v", c.log, c.lostErr)
	}
	if strings.Join(sp.log, ",") != "made,eof,lost" || sp.lostErr != nil {
		t.Fatalf("server callbacks %v err %v", sp.log, sp.lostErr)
	}
	s.Close()
}

// EOFReceived returning false closes the transport (ConnectionLost(nil)).
func TestEOFReceivedFalseCloses(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			conn.Write([]byte("bye"))
			conn.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, conn)
			conn.Close()
		}
	}()
	c2 := newRec(h, "client2")
	h.dial(ln.Addr().(*net.TCPAddr).Port, c2)
	h.runUntil("lost after EOF", 5*time.Second, func() bool { return c2.losts == 1 })
	if string(c2.data) != "bye" || strings.Join(c2.log, ",") != "made,eof,lost" || c2.lostErr != nil {
		t.Fatalf("client2: data %q log %v err %v", c2.data, c2.log, c2.lostErr)
	}
}

func TestPauseResumeReading(t *testing.T) {
	h := newHarness(t)
	var sp *recProto
	s, port := h.serve(func() Protocol {
		sp = newRec(h, "server")
		sp.onMade = func(t *Transport) { t.PauseReading() }
		return sp
	})
	conn, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("paused-data")); err != nil {
		t.Fatal(err)
	}
	h.runUntil("accepted", 5*time.Second, func() bool { return sp != nil && sp.made == 1 })
	h.runFor(100 * time.Millisecond)
	if len(sp.data) != 0 {
		t.Fatalf("DataReceived while reading is paused: %q", sp.data)
	}
	if sp.tr.IsReading() {
		t.Fatalf("IsReading true while paused")
	}
	sp.tr.PauseReading() // twice: harmless
	sp.tr.ResumeReading()
	if !sp.tr.IsReading() {
		t.Fatalf("IsReading false after ResumeReading")
	}
	h.runUntil("data after resume", 5*time.Second, func() bool { return len(sp.data) == len("paused-data") })
	if string(sp.data) != "paused-data" {
		t.Fatalf("got %q", sp.data)
	}
	// Pausing from DataReceived stops further deliveries.
	sp.onData = func(t *Transport, b []byte) { t.PauseReading() }
	conn.Write([]byte("one"))
	h.runUntil("one", 5*time.Second, func() bool { return len(sp.data) > len("paused-data") })
	n := len(sp.data)
	conn.Write([]byte("two"))
	h.runFor(60 * time.Millisecond)
	if len(sp.data) != n {
		t.Fatalf("data delivered after PauseReading inside DataReceived")
	}
	sp.onData = nil
	sp.tr.ResumeReading()
	h.runUntil("rest", 5*time.Second, func() bool { return strings.HasSuffix(string(sp.data), "two") })
	conn.Close()
	h.runUntil("server lost", 5*time.Second, func() bool { return sp.losts == 1 })
	s.Close()
}

// Flow control: a slow reader makes the write buffer pass the high-water
// mark (PauseWriting) and drain below the low-water mark (ResumeWriting);
// every byte arrives, in order.
func TestWriteFlowControl(t *testing.T) {
	h := newHarness(t)
	l := h.l
	const total = 4 << 20
	want := pattern(total, 7)

	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<10)
		})
	}}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		data []byte
		err  error
	}
	res := make(chan result, 1)
	var peerRead atomic.Int64
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer conn.Close()
		time.Sleep(100 * time.Millisecond) // let the writer hit the high-water mark
		var got []byte
		buf := make([]byte, 8192)
		for {
			n, err := conn.Read(buf)
			got = append(got, buf[:n]...)
			peerRead.Store(int64(len(got)))
			if err == io.EOF {
				break
			}
			if err != nil {
				res <- result{got, err}
				return
			}
			if len(got) < total/4 {
				time.Sleep(time.Millisecond) // slow at first
			}
		}
		res <- result{got, nil}
	}()

	c := newRec(h, "writer")
	sent := 0
	paused := false
	var maxBuf int
	pump := func(t *Transport) {
		for !paused && sent < total {
			n := min(32<<10, total-sent)
			if err := t.Write(want[sent : sent+n]); err != nil {
				h.t.Errorf("Write: %v", err)
				return
			}
			sent += n
			maxBuf = max(maxBuf, t.WriteBufferSize())
		}
		if sent == total && !t.IsClosing() {
			t.Close()
		}
	}
	c.onMade = func(t *Transport) {
		unix.SetsockoptInt(t.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10)
		if err := t.SetWriteBufferLimits(64<<10, 16<<10); err != nil {
			h.t.Errorf("SetWriteBufferLimits: %v", err)
		}
		if hi, lo := t.WriteBufferLimits(); hi != 64<<10 || lo != 16<<10 {
			h.t.Errorf("WriteBufferLimits = %d, %d", hi, lo)
		}
		pump(t)
	}
	c.onPause = func(t *Transport) {
		if t.WriteBufferSize() <= 64<<10 {
			h.t.Errorf("PauseWriting with %d buffered (high 64 KiB)", t.WriteBufferSize())
		}
		paused = true
	}
	c.onResume = func(t *Transport) {
		if t.WriteBufferSize() > 16<<10 {
			h.t.Errorf("ResumeWriting with %d buffered (low 16 KiB)", t.WriteBufferSize())
		}
		paused = false
		l.CallSoon(func() { pump(t) }, nil)
	}
	_ = h.dial(ln.Addr().(*net.TCPAddr).Port, c)
	h.runUntil("all data written and connection closed", 20*time.Second, func() bool { return c.losts == 1 })
	var r result
	select {
	case r = <-res:
	case <-time.After(10 * time.Second):
		t.Fatalf("peer did not finish reading (read %d of %d)", peerRead.Load(), total)
	}
	if r.err != nil {
		t.Fatalf("peer read error: %v", r.err)
	}
	if c.pauses < 1 || c.resumes < 1 {
		t.Fatalf("PauseWriting %d times, ResumeWriting %d times; want both >= 1 (max buffer %d)", c.pauses, c.resumes, maxBuf)
	}
	if c.lostErr != nil {
		t.Fatalf("ConnectionLost(%v)", c.lostErr)
	}
	if !bytes.Equal(r.data, want) {
		t.Fatalf("peer received: %s", firstDiff(r.data, want))
	}
	t.Logf("pauses %d resumes %d max buffer %d", c.pauses, c.resumes, maxBuf)
}

// Close flushes the write buffer first; ConnectionLost comes after.
func TestCloseFlushesBuffer(t *testing.T) {
	h := newHarness(t)
	const total = 3 << 20
	want := pattern(total, 9)
	var sp *recProto
	s, port := h.serve(func() Protocol { sp = newRec(h, "server"); return sp })
	c := newRec(h, "client")
	c.onMade = func(t *Transport) { unix.SetsockoptInt(t.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10) }
	tr := h.dial(port, c)
	h.runUntil("server made", 5*time.Second, func() bool { return sp != nil && sp.made == 1 })
	sp.tr.PauseReading()
	if err := tr.Write(want); err != nil {
		t.Fatal(err)
	}
	if tr.WriteBufferSize() == 0 {
		t.Fatalf("socket took all %d bytes at once; the test needs buffered data", total)
	}
	tr.Close()
	if err := tr.WriteEOF(); err != nil {
		t.Fatalf("WriteEOF after Close: %v", err)
	}
	h.runFor(30 * time.Millisecond)
	if c.losts != 0 {
		t.Fatalf("ConnectionLost before the buffer was flushed (%d bytes buffered)", tr.WriteBufferSize())
	}
	sp.tr.ResumeReading()
	h.runUntil("server got EOF", 10*time.Second, func() bool { return sp.losts == 1 && c.losts == 1 })
	if !bytes.Equal(sp.data, want) {
		t.Fatalf("server received: %s", firstDiff(sp.data, want))
	}
	if c.lostErr != nil {
		t.Fatalf("client ConnectionLost(%v)", c.lostErr)
	}
	s.Close()
}

// Abort: buffered data is dropped, ConnectionLost(nil) follows (scheduled).
func TestAbort(t *testing.T) {
	h := newHarness(t)
	l := h.l
	var sp *recProto
	s, port := h.serve(func() Protocol {
		sp = newRec(h, "server")
		sp.onMade = func(t *Transport) { t.PauseReading() }
		return sp
	})
	c := newRec(h, "client")
	c.onMade = func(t *Transport) {
		unix.SetsockoptInt(t.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10)
	}
	tr := h.dial(port, c)
	h.runUntil("server made", 5*time.Second, func() bool { return sp != nil && sp.made == 1 })
	const total = 8 << 20
	chunk := pattern(1<<20, 5)
	for i := 0; i < total/len(chunk); i++ {
		if err := tr.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	h.runFor(30 * time.Millisecond)
	if tr.WriteBufferSize() == 0 {
		t.Fatalf("write buffer empty: the peer is not reading, the test needs buffered data")
	}
	if c.pauses != 1 {
		t.Fatalf("PauseWriting called %d times", c.pauses)
	}
	tr.Abort()
	if tr.WriteBufferSize() != 0 || !tr.IsClosing() {
		t.Fatalf("after Abort: buffer %d closing %v", tr.WriteBufferSize(), tr.IsClosing())
	}
	if c.losts != 0 {
		t.Fatalf("ConnectionLost called inline by Abort")
	}
	if err := tr.Write([]byte("x")); err == nil {
		t.Fatalf("Write after Abort succeeded")
	}
	tr.Abort()
	tr.Close()
	l.Run(RunNoWait)
	if c.losts != 1 || c.lostErr != nil {
		t.Fatalf("after Abort: ConnectionLost called %d times, err %v; want once with nil", c.losts, c.lostErr)
	}
	if c.resumes != 0 {
		t.Fatalf("ResumeWriting called after Abort")
	}
	sp.tr.ResumeReading()
	h.runUntil("server lost", 10*time.Second, func() bool { return sp.losts == 1 })
	if len(sp.data) >= total {
		t.Fatalf("peer received all %d bytes although the buffer was dropped", len(sp.data))
	}
	if !bytes.Equal(sp.data, bytes.Repeat(chunk, total/len(chunk))[:len(sp.data)]) {
		t.Fatalf("peer received corrupted data before the abort")
	}
	t.Logf("peer received %d of %d bytes", len(sp.data), total)
	s.Close()
}

// The peer resets the connection (SO_LINGER 0) mid-stream: ConnectionLost
// gets ECONNRESET; connection errors are not reported to the exception
// handler outside debug mode (asyncio).
func TestPeerReset(t *testing.T) {
	h := newHarness(t)
	l := h.l
	var handlerCalls int
	l.SetExceptionHandler(func(_ *Loop, c *ExceptionContext) { handlerCalls++ })
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reset := make(chan struct{})
	peerDone := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			peerDone <- err
			return
		}
		conn.Write([]byte("first"))
		<-reset
		tc := conn.(*net.TCPConn)
		if err := tc.SetLinger(0); err != nil {
			peerDone <- err
			return
		}
		peerDone <- conn.Close()
	}()
	c := newRec(h, "client")
	c.onData = func(t *Transport, b []byte) {
		if len(c.data) == len("first") {
			// Keep writing mid-stream while the reset arrives.
			t.Write([]byte("ping"))
			close(reset)
		}
	}
	tr := h.dial(ln.Addr().(*net.TCPAddr).Port, c)
	h.runUntil("connection lost", 5*time.Second, func() bool { return c.losts == 1 })
	if err := <-peerDone; err != nil {
		t.Fatalf("peer: %v", err)
	}
	if !errors.Is(c.lostErr, unix.ECONNRESET) {
		t.Fatalf("ConnectionLost(%v), want ECONNRESET", c.lostErr)
	}
	if string(c.data) != "first" {
		t.Fatalf("data %q", c.data)
	}
	if handlerCalls != 0 {
		t.Fatalf("connection reset reported to the exception handler outside debug mode")
	}
	if tr.Fd() != -1 {
		t.Fatalf("fd not released after reset")
	}
}

// Server.Close stops accepting; WaitClosed is done only after the last
// connection is gone.
func TestServerCloseWaitClosed(t *testing.T) {
	h := newHarness(t)
	l := h.l
	var sp *recProto
	s, port := h.serve(func() Protocol { sp = newRec(h, "server"); return sp })
	early := s.WaitClosed()
	c := newRec(h, "client")
	tr := h.dial(port, c)
	h.runUntil("accepted", 5*time.Second, func() bool { return sp != nil && sp.made == 1 })
	s.Close()
	s.Close()
	if s.IsServing() || !s.IsClosed() {
		t.Fatalf("after Close: serving=%v closed=%v", s.IsServing(), s.IsClosed())
	}
	if err := s.StartServing(); !errors.Is(err, ErrClosed) {
		t.Fatalf("StartServing after Close: %v", err)
	}
	wc := s.WaitClosed()
	var lostBeforeDone = -1
	wc.AddDoneCallback(func(*Future) { lostBeforeDone = sp.losts }, nil, nil)
	// New connections are refused once the server is closed.
	f, _ := l.CreateConnection("127.0.0.1", port, newRec(h, "late"), nil)
	if _, err := h.await(f, 5*time.Second); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("connect to a closed server: %v, want ECONNREFUSED", err)
	}
	h.runFor(50 * time.Millisecond)
	if wc.Done() || early.Done() {
		t.Fatalf("WaitClosed done while a connection is still open")
	}
	if err := l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("loop Close with a live connection of a closed server: %v", err)
	}
	// The existing connection still works.
	tr.Write([]byte("still here"))
	h.runUntil("data on the old connection", 5*time.Second, func() bool { return string(sp.data) == "still here" })
	tr.Close()
	h.runUntil("WaitClosed", 5*time.Second, func() bool {
		if wc.Done() && sp.losts != 1 {
			t.Fatalf("WaitClosed future done before the server-side ConnectionLost ran")
		}
		return wc.Done() && early.Done()
	})
	h.runUntil("WaitClosed callback", 2*time.Second, func() bool { return lostBeforeDone != -1 })
	if lostBeforeDone != 1 {
		t.Fatalf("WaitClosed completed before the server-side ConnectionLost ran (losts=%d)", lostBeforeDone)
	}
	if v, err := wc.Result(); v != nil || err != nil {
		t.Fatalf("WaitClosed result %v %v", v, err)
	}
	if late := s.WaitClosed(); !late.Done() {
		t.Fatalf("WaitClosed on a fully closed server is not done")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("loop Close: %v", err)
	}
}

// A host name is resolved on a goroutine (the future cannot be done at
// once), then connected.
func TestConnectByName(t *testing.T) {
	h := newHarness(t)
	l := h.l
	s, port, sprotos := h.echoServer()
	c := newRec(h, "client")
	c.onMade = func(t *Transport) { t.Write([]byte("by name")) }
	f, err := l.CreateConnection("localhost", port, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Done() {
		t.Fatalf("future done before the loop ran: name resolution did not go to a goroutine")
	}
	if err := l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("loop Close during a name resolution: %v, want ErrBusy", err)
	}
	if _, err := h.await(f, 10*time.Second); err != nil {
		t.Fatalf("connect to localhost: %v", err)
	}
	h.runUntil("echo", 5*time.Second, func() bool { return string(c.data) == "by name" })
	if peer, _ := c.tr.Peername(); peer != nil {
		host, p := SockaddrString(peer)
		if p != port || (host != "127.0.0.1" && host != "::1") {
			t.Fatalf("connected to %s:%d", host, p)
		}
	}
	c.tr.Close()
	h.runUntil("closed", 5*time.Second, func() bool { return c.losts == 1 && len(*sprotos) == 1 && (*sprotos)[0].losts == 1 })
	s.Close()
}

// A panic in a protocol callback is a fatal error of that transport: the
// exception handler gets it and ConnectionLost follows with the error.
func TestProtocolPanicIsFatal(t *testing.T) {
	h := newHarness(t)
	l := h.l
	var ctxs []*ExceptionContext
	l.SetExceptionHandler(func(_ *Loop, c *ExceptionContext) { ctxs = append(ctxs, c) })
	var sp *recProto
	s, port := h.serve(func() Protocol {
		sp = newRec(h, "server")
		sp.onData = func(*Transport, []byte) { panic("proto-panic") }
		return sp
	})
	c := newRec(h, "client")
	tr := h.dial(port, c)
	tr.Write([]byte("boom"))
	h.runUntil("both lost", 5*time.Second, func() bool { return sp != nil && sp.losts == 1 && c.losts == 1 })
	if len(ctxs) != 1 || ctxs[0].Transport != sp.tr || !strings.Contains(ctxs[0].Err.Error(), "proto-panic") {
		t.Fatalf("exception contexts: %+v", ctxs)
	}
	if sp.lostErr == nil || !strings.Contains(sp.lostErr.Error(), "proto-panic") {
		t.Fatalf("server ConnectionLost(%v)", sp.lostErr)
	}
	s.Close()
}

// A factory error closes the accepted connection; the handler is told.
func TestServerFactoryError(t *testing.T) {
	h := newHarness(t)
	l := h.l
	var msgs []string
	l.SetExceptionHandler(func(_ *Loop, c *ExceptionContext) { msgs = append(msgs, c.Message) })
	f, _ := l.CreateServer("127.0.0.1", 0, func(t *Transport) error { return errors.New("no thanks") }, nil)
	v, err := h.await(f, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := v.(*Server)
	port := s.Addrs()[0].(*unix.SockaddrInet4).Port
	c := newRec(h, "client")
	h.dial(port, c)
	h.runUntil("client lost", 5*time.Second, func() bool { return c.losts == 1 })
	if len(msgs) != 1 || c.made != 1 || c.eofs+boolInt(c.lostErr != nil) != 1 {
		t.Fatalf("handler %q, client log %v err %v", msgs, c.log, c.lostErr)
	}
	s.Close()
	wc := s.WaitClosed()
	h.runUntil("WaitClosed", 2*time.Second, wc.Done)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bufProto is a BufferedProtocol echo client.
type bufProto struct {
	*recProto
	buf     []byte
	gets    int
	updated []byte
}

func (p *bufProto) GetBuffer(t *Transport, hint int) []byte { p.gets++; return p.buf }
func (p *bufProto) BufferUpdated(t *Transport, n int) {
	p.h.onLoop("BufferUpdated")
	p.updated = append(p.updated, p.buf[:n]...)
}

func TestBufferedProtocol(t *testing.T) {
	h := newHarness(t)
	s, port, sprotos := h.echoServer()
	p := &bufProto{recProto: newRec(h, "buffered"), buf: make([]byte, 1000)}
	tr := h.dial(port, p)
	want := pattern(300000, 11)
	tr.Write(want)
	h.runUntil("echo", 10*time.Second, func() bool { return len(p.updated) >= len(want) })
	if !bytes.Equal(p.updated, want) {
		t.Fatalf("buffered echo: %s", firstDiff(p.updated, want))
	}
	if len(p.data) != 0 {
		t.Fatalf("DataReceived called on a BufferedProtocol")
	}
	if p.gets < len(want)/1000 {
		t.Fatalf("GetBuffer called %d times for %d bytes into a 1000-byte buffer", p.gets, len(want))
	}
	tr.Close()
	h.runUntil("lost", 5*time.Second, func() bool { return p.losts == 1 && (*sprotos)[0].losts == 1 })
	s.Close()
}

// Cancelling the connect future while the connection is in progress: no
// protocol callback ever runs and nothing leaks (the loop closes).
func TestCancelConnect(t *testing.T) {
	h := newHarness(t)
	s, port := h.serve(func() Protocol { return BaseProtocol{} })
	var clients []*recProto
	for i := 0; i < 5; i++ {
		c := newRec(h, fmt.Sprintf("cancelled%d", i))
		clients = append(clients, c)
		f, err := h.l.CreateConnection("127.0.0.1", port, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			f.Cancel("")
		} else {
			// Cancel after the socket connected but before ConnectionMade.
			h.l.CallSoon(func() { f.Cancel("") }, nil)
		}
	}
	h.runFor(50 * time.Millisecond)
	for _, c := range clients {
		if len(c.log) != 0 {
			t.Fatalf("%s: protocol callbacks %v after the connect future was cancelled", c.name, c.log)
		}
	}
	s.Close()
	h.runUntil("loop closable", 5*time.Second, func() bool { return h.l.Close() == nil })
}

// start_serving=False: connections wait in the backlog until StartServing.
func TestServerNoStart(t *testing.T) {
	h := newHarness(t)
	var sp *recProto
	f, err := h.l.CreateServer("127.0.0.1", 0, func(t *Transport) error {
		sp = newRec(h, "server")
		t.SetProtocol(sp)
		return nil
	}, &ServerOptions{NoStart: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.await(f, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := v.(*Server)
	if s.IsServing() {
		t.Fatalf("IsServing with NoStart")
	}
	c := newRec(h, "client")
	tr := h.dial(s.Addrs()[0].(*unix.SockaddrInet4).Port, c)
	h.runFor(50 * time.Millisecond)
	if sp != nil {
		t.Fatalf("connection accepted before StartServing")
	}
	if err := s.StartServing(); err != nil || !s.IsServing() {
		t.Fatalf("StartServing: %v serving=%v", err, s.IsServing())
	}
	h.runUntil("accepted", 5*time.Second, func() bool { return sp != nil && sp.made == 1 })
	tr.Close()
	h.runUntil("closed", 5*time.Second, func() bool { return sp.losts == 1 && c.losts == 1 })
	s.Close()
}

func TestConnectLocalAddr(t *testing.T) {
	h := newHarness(t)
	s, port, sprotos := h.echoServer()
	c := newRec(h, "client")
	f, err := h.l.CreateConnection("127.0.0.1", port, c, &ConnectOptions{LocalHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.await(f, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	sa, err := c.tr.Sockname()
	if err != nil {
		t.Fatal(err)
	}
	if host, p := SockaddrString(sa); host != "127.0.0.1" || p == 0 {
		t.Fatalf("local address %s:%d", host, p)
	}
	if _, err := h.l.CreateConnection("127.0.0.1", port, newRec(h, "x"), &ConnectOptions{LocalHost: "not-an-ip"}); err == nil {
		t.Fatalf("a non-numeric local host was accepted")
	}
	c.tr.Close()
	h.runUntil("closed", 5*time.Second, func() bool { return c.losts == 1 && (*sprotos)[0].losts == 1 })
	s.Close()
}
