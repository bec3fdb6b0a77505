package core

// Every byte that write() accepted before close() reaches a peer that is
// still reading (issue 9, item 1): over TCP, Unix sockets, pipes and TLS,
// whether the peer is sending, half-closed, or sends close_notify.

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// slowPeer reads c until EOF or an error, slowly (so that the writer's
// kernel buffers stay full), answering every read with 64 bytes when echo is
// set; after closeNotifyAt bytes it calls CloseWrite on a *tls.Conn (its
// close_notify) and keeps reading.
type peerResult struct {
	data []byte
	err  error // the error that ended the reads (nil: a clean EOF)
}

func slowPeer(c net.Conn, echo bool, closeNotifyAt int, out chan<- peerResult) {
	defer c.Close()
	var got []byte
	buf := make([]byte, 16<<10)
	notified := false
	for {
		time.Sleep(200 * time.Microsecond)
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if n > 0 && echo {
			c.Write(buf[:64]) // errors show up in the next Read
		}
		if tc, ok := c.(*tls.Conn); ok && !notified && closeNotifyAt >= 0 && len(got) >= closeNotifyAt {
			notified = true
			tc.CloseWrite()
		}
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			out <- peerResult{got, err}
			return
		}
	}
}

func (h *harness) awaitPeer(ch <-chan peerResult) peerResult {
	h.t.Helper()
	var r peerResult
	h.runUntil("the peer's EOF", 30*time.Second, func() bool {
		select {
		case r = <-ch:
			return true
		default:
			return false
		}
	})
	return r
}

func checkDelivered(t *testing.T, what string, r peerResult, want []byte) {
	t.Helper()
	if !bytes.Equal(r.data, want) {
		t.Fatalf("%s: the peer got %d of %d bytes (%s), its read ended with %v",
			what, len(r.data), len(want), firstDiff(r.data, want), r.err)
	}
}

// A peer that keeps sending while the transport closes: the close must not
// turn into a RST that drops the kernel's unsent bytes.
func TestCloseKeepsBytesWhilePeerSends(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			h := newHarness(t)
			var ln net.Listener
			var err error
			if network == "tcp" {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			} else {
				ln, err = net.Listen("unix", filepath.Join(t.TempDir(), "s"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			out := make(chan peerResult, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					out <- peerResult{err: err}
					return
				}
				slowPeer(c, true, -1, out)
			}()
			p := newRec(h, "client")
			var f *Future
			if network == "tcp" {
				f, err = h.l.CreateConnection("127.0.0.1", ln.Addr().(*net.TCPAddr).Port, p, nil)
			} else {
				f, err = h.l.CreateUnixConnection(ln.Addr().String(), p)
			}
			if err != nil {
				t.Fatal(err)
			}
			v, err := h.await(f, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			tr := v.(*Transport)
			msg := pattern(4<<20, 11)
			if err := tr.Write(msg); err != nil {
				t.Fatal(err)
			}
			tr.Close()
			r := h.awaitPeer(out)
			checkDelivered(t, network, r, msg)
			if r.err != nil {
				t.Fatalf("%s: the peer's read ended with %v, want a clean EOF", network, r.err)
			}
			h.runUntil("connection_lost", 5*time.Second, func() bool { return p.losts == 1 })
			if p.lostErr != nil {
				t.Fatalf("connection_lost(%v)", p.lostErr)
			}
		})
	}
}

// layeredProto keeps its own buffer above the transport, as asyncio's
// sslproto (or a framing library) does: it writes to the transport only
// while the transport does not push back, and hands over the rest from
// resume_writing — also after it asked the transport to close.
type layeredProto struct {
	BaseProtocol
	t      *Transport
	own    [][]byte
	paused bool
	err    error
	lost   bool
}

func (p *layeredProto) ConnectionMade(t *Transport) { p.t = t }
func (p *layeredProto) PauseWriting(*Transport)     { p.paused = true }
func (p *layeredProto) ResumeWriting(*Transport)    { p.paused = false; p.flush() }
func (p *layeredProto) ConnectionLost(*Transport, error) {
	p.lost = true
}

func (p *layeredProto) write(b []byte) {
	p.own = append(p.own, b)
	p.flush()
}

func (p *layeredProto) flush() {
	for len(p.own) > 0 && !p.paused {
		if err := p.t.Write(p.own[0]); err != nil && p.err == nil {
			p.err = err
		}
		p.own = p.own[1:]
	}
}

// The layered protocol's own buffer is non-empty when it closes the
// transport; the transport still drains, calls resume_writing, and must take
// what the protocol hands over then.
func TestWriteFromResumeWritingAfterClose(t *testing.T) {
	for _, kind := range []string{"tcp", "unix", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			h := newHarness(t)
			p := &layeredProto{}
			out := make(chan peerResult, 1)
			switch kind {
			case "tcp", "unix":
				var ln net.Listener
				var err error
				if kind == "tcp" {
					ln, err = net.Listen("tcp", "127.0.0.1:0")
				} else {
					ln, err = net.Listen("unix", filepath.Join(t.TempDir(), "s"))
				}
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				go func() {
					c, err := ln.Accept()
					if err != nil {
						out <- peerResult{err: err}
						return
					}
					slowPeer(c, false, -1, out)
				}()
				var f *Future
				if kind == "tcp" {
					f, err = h.l.CreateConnection("127.0.0.1", ln.Addr().(*net.TCPAddr).Port, p, nil)
				} else {
					f, err = h.l.CreateUnixConnection(ln.Addr().String(), p)
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, err := h.await(f, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				// Small kernel buffers, so that the transport pushes back.
				unix.SetsockoptInt(p.t.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10)
			case "pipe":
				r, w := newPipe(t)
				h.pipeTransport(false, w, p)
				go slowPeer(fileConn(t, r), false, -1, out)
			}
			var msg []byte
			for i := 0; i < 64; i++ {
				chunk := pattern(64<<10, uint32(i+1))
				msg = append(msg, chunk...)
				p.write(chunk)
			}
			if len(p.own) == 0 {
				t.Fatal("the transport never pushed back: the test proves nothing")
			}
			p.t.Close()
			r := h.awaitPeer(out)
			checkDelivered(t, kind, r, msg)
			h.runUntil("connection_lost", 5*time.Second, func() bool { return p.lost })
			if p.err != nil {
				t.Fatalf("a write from resume_writing during the close failed: %v", p.err)
			}
			// Once connection_lost is scheduled, a write is refused.
			if err := p.t.Write([]byte("late")); !errors.Is(err, ErrClosed) {
				t.Fatalf("write after connection_lost: %v", err)
			}
		})
	}
}

// fileConn wraps a pipe's read end as a net.Conn-like reader for slowPeer.
type pipeReader struct {
	net.Conn
	fd int
}

func (p *pipeReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(p.fd, b)
		if err == unix.EAGAIN || err == unix.EINTR {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}
func (p *pipeReader) Write(b []byte) (int, error) { return len(b), nil }
func (p *pipeReader) Close() error                { return unix.Close(p.fd) }

func fileConn(t *testing.T, fd int) net.Conn {
	unix.SetNonblock(fd, true)
	return &pipeReader{fd: fd}
}

// TLS: the peer (crypto/tls) sends close_notify while it is still reading —
// before our client's data is all sent (the case: the client's write
// buffer is full when close_notify arrives), or after our client closed.
func TestTLSCloseNotifyWhilePeerReads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		notifyAt int  // the peer's close_notify after this many bytes
		close    bool // our client closes right after writing
	}{
		{"peer-notifies-first", 0, false},
		{"peer-notifies-after-our-close", 256 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			p := getPKI()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			out := make(chan peerResult, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					out <- peerResult{err: err}
					return
				}
				conn := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{p.server}})
				if err := conn.Handshake(); err != nil {
					out <- peerResult{err: err}
					return
				}
				slowPeer(conn, false, tc.notifyAt, out)
			}()
			cli := &tlsRecorder{h: h}
			f, _ := h.l.CreateConnection("127.0.0.1", ln.Addr().(*net.TCPAddr).Port, cli, &ConnectOptions{TLS: clientTLS()})
			v, err := h.await(f, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			tr := v.(*Transport)
			msg := pattern(4<<20, 3)
			for off := 0; off < len(msg); off += 16 << 10 {
				if err := tr.Write(msg[off : off+16<<10]); err != nil {
					t.Fatalf("write at %d: %v", off, err)
				}
			}
			if tc.close {
				tr.Close()
			}
			r := h.awaitPeer(out)
			checkDelivered(t, tc.name, r, msg)
			if r.err != nil {
				t.Fatalf("the peer's read ended with %v, want close_notify (EOF)", r.err)
			}
			h.runUntil("connection_lost", 5*time.Second, func() bool { return cli.lost == 1 })
			if !tc.close && cli.eofs != 1 {
				t.Fatalf("eof_received ran %d times, want 1", cli.eofs)
			}
		})
	}
}

// The linger set empties once the peers took the data.
func TestLingerEnds(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	for lingerCount() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := lingerCount(); n > 0 {
		t.Fatalf("%d sockets still lingering", n)
	}
}

// A host on the queued seam sees resume_writing only when Poll returns and
// its answer is flushed at the start of the next Poll: a closing transport
// must still be there to take it (issue 9: the Python binding, whose
// asyncio sslproto hands over its last records from resume_writing after
// asking the transport to close, lost them when the close ended in the
// iteration that drained the buffer).
func TestQueuedHostWritesFromResumeAfterClose(t *testing.T) {
	h := newHarness(t)
	q := newQHost(h, 64, 256<<10)
	p := &QueuedProtocol{Fallback: newRec(h, "fallback"), Userdata: 9}
	tr, peer := accepted(h, p)
	q.pollUntil("connection_made", func() bool { return *tr != nil })
	unix.SetsockoptInt((*tr).Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, 32<<10)
	// resume_writing only once the buffer is empty: the drain that resumes
	// the host is also the one that finds the close done (with asyncio's
	// low water mark this happens whenever the kernel takes the last 16 KiB
	// at once).
	if err := (*tr).SetWriteBufferLimits(DefaultWriteBufferHigh, 0); err != nil {
		t.Fatal(err)
	}
	out := make(chan peerResult, 1)
	go slowPeer(fileConn(t, peer), false, -1, out)
	var msg, own []byte
	for i := 0; i < 32; i++ {
		msg = append(msg, pattern(64<<10, uint32(i+100))...)
	}
	// Write while the transport does not push back; keep the rest.
	off := 0
	for off < len(msg) && (*tr).WriteBufferSize() <= DefaultWriteBufferHigh {
		(*tr).Write(msg[off : off+64<<10])
		off += 64 << 10
	}
	own = msg[off:]
	if len(own) == 0 {
		t.Fatal("the transport never pushed back")
	}
	(*tr).Close()
	var pending [][]byte // the host's answers, flushed by the next Poll
	var werr error
	q.onEv = func(ev Event) {
		if ev.Kind == EventResumeWriting && len(own) > 0 {
			pending = append(pending, own)
			own = nil
		}
	}
	q.before = func() {
		for _, b := range pending {
			if err := (*tr).Write(b); err != nil && werr == nil {
				werr = err
			}
		}
		pending = nil
	}
	q.pollUntil("connection_lost", func() bool { return len(q.lost) == 1 })
	if werr != nil {
		t.Fatalf("the host's write after resume_writing: %v", werr)
	}
	r := h.awaitPeer(out)
	checkDelivered(t, "queued", r, msg)
}
