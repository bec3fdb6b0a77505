package asyncloop

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Adapters for Go code that expects package net's types: Loop.Dial returns
// a connection of the loop as a net.Conn, Loop.Listen a server of the loop
// as a net.Listener (so http.Serve, or anything written against net.Conn,
// runs over the loop). They are for goroutines other than the loop's: the
// loop runs in its own goroutine (RunForever), and every method of the
// net.Conn and net.Listener is THREAD-SAFE. Data crosses between the
// goroutines through buffers: a reader waits for DataReceived, a writer's
// bytes are handed to the loop thread (one CallSoonThreadsafe per batch of
// writes), with flow control both ways (reading is paused while unread data
// exceeds 256 KiB, writers wait while the transport's buffer is above its
// high-water mark).

const (
	netConnReadHigh  = 256 << 10 // pause reading above this much unread data
	netConnWriteHigh = 256 << 10 // writers wait above this much unsent data
)

// onLoopThread reports whether the calling thread is running l (a blocking
// adapter call there would wait for itself).
func (l *Loop) onLoopThread() bool {
	r, err := GetRunningLoop()
	return err == nil && r == l
}

var errOnLoopThread = errors.New("asyncloop: a blocking net adapter call on the loop's own thread would deadlock; call it from another goroutine")

// Dial connects to address on network ("tcp", "tcp4", "tcp6" or "unix")
// through the loop and returns the connection as a net.Conn (asyncio's
// open_connection, in Go's terms). The loop must be running in another
// goroutine. THREAD-SAFE.
func (l *Loop) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if l.onLoopThread() {
		return nil, errOnLoopThread
	}
	if ctx == nil {
		ctx = context.Background()
	}
	host, port, opts, err := splitNetAddress("dial", network, address)
	if err != nil {
		return nil, err
	}
	c := newNetConn(l, network)
	res := make(chan error, 1)
	if _, err := l.CallSoonThreadsafe(func() {
		var f *Future[*Transport]
		var err error
		if network == "unix" {
			f, err = l.CreateUnixConnection(ctx, address, c)
		} else {
			f, err = l.CreateConnection(ctx, host, port, c, opts...)
		}
		if err != nil {
			res <- err
			return
		}
		f.AddDoneCallback(func(f *Future[*Transport]) { res <- f.Err() })
	}); err != nil {
		return nil, err
	}
	if err := <-res; err != nil {
		return nil, err
	}
	return c, nil
}

// Listen listens on address ("host:port" for "tcp", "tcp4", "tcp6"; a path
// for "unix") through the loop and returns the server as a net.Listener:
// http.Serve(ln, handler) serves HTTP over the loop. The loop must be
// running in another goroutine. THREAD-SAFE.
func (l *Loop) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if l.onLoopThread() {
		return nil, errOnLoopThread
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ln := &netListener{loop: l, notify: make(chan struct{})}
	factory := func() Protocol { return ln.newConn(network) }
	host, port, opts, err := splitNetAddress("listen", network, address)
	if err != nil {
		return nil, err
	}
	res := make(chan error, 1)
	if _, err := l.CallSoonThreadsafe(func() {
		var f *Future[*Server]
		var err error
		if network == "unix" {
			f, err = l.CreateUnixServer(ctx, address, factory)
		} else {
			f, err = l.CreateServer(ctx, host, port, factory, opts...)
		}
		if err != nil {
			res <- err
			return
		}
		f.AddDoneCallback(func(f *Future[*Server]) {
			s, err := f.Result()
			if err == nil {
				ln.srv = s
				ln.addr = s.Addr()
			}
			res <- err
		})
	}); err != nil {
		return nil, err
	}
	if err := <-res; err != nil {
		return nil, err
	}
	return ln, nil
}

// netListener is a Server as a net.Listener.
type netListener struct {
	loop *Loop
	srv  *Server // loop thread only
	addr net.Addr

	mu     sync.Mutex
	queue  []*netConn
	closed bool
	notify chan struct{} // closed and replaced whenever queue or closed change
}

func (ln *netListener) newConn(network string) Protocol {
	c := newNetConn(ln.loop, network)
	c.listener = ln
	return c
}

// accepted queues a connection (loop thread, from ConnectionMade).
func (ln *netListener) accepted(c *netConn) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.closed {
		return false
	}
	ln.queue = append(ln.queue, c)
	close(ln.notify)
	ln.notify = make(chan struct{})
	return true
}

// Accept waits for the next connection. THREAD-SAFE.
func (ln *netListener) Accept() (net.Conn, error) {
	for {
		ln.mu.Lock()
		if ln.closed {
			ln.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: ln.addr.Network(), Addr: ln.addr, Err: net.ErrClosed}
		}
		if len(ln.queue) > 0 {
			c := ln.queue[0]
			ln.queue[0] = nil
			ln.queue = ln.queue[1:]
			ln.mu.Unlock()
			return c, nil
		}
		ch := ln.notify
		ln.mu.Unlock()
		<-ch
	}
}

// Close stops listening; connections not accepted yet are closed.
// THREAD-SAFE.
func (ln *netListener) Close() error {
	ln.mu.Lock()
	if ln.closed {
		ln.mu.Unlock()
		return nil
	}
	ln.closed = true
	pending := ln.queue
	ln.queue = nil
	close(ln.notify)
	ln.notify = make(chan struct{})
	ln.mu.Unlock()
	_, err := ln.loop.CallSoonThreadsafe(func() {
		ln.srv.Close()
		for _, c := range pending {
			if c.t != nil {
				c.t.Abort()
			}
		}
	})
	return err
}

// Addr returns the listening address.
func (ln *netListener) Addr() net.Addr { return ln.addr }

// netConn is a Transport as a net.Conn: it is the transport's Protocol on
// the loop thread and a net.Conn for other goroutines.
type netConn struct {
	loop     *Loop
	network  string
	listener *netListener
	t        *Transport // loop thread only

	local, remote net.Addr // set before the conn is handed out

	mu      sync.Mutex
	notify  chan struct{} // closed and replaced on every state change
	rbuf    []byte        // received, not read yet
	rerr    error         // after rbuf: io.EOF or the connection's error
	rpaused bool          // reading paused for flow control
	wbuf    []byte        // written, not handed to the loop yet
	wspare  []byte        // the other write buffer, reused
	wsched  bool          // a flush is scheduled
	wpaused bool          // the transport is above its high-water mark
	werr    error         // the transport failed: writes fail
	lost    bool
	closed  bool
	rdl     deadline
	wdl     deadline
}

type deadline struct {
	timer   *time.Timer
	expired bool
}

func newNetConn(l *Loop, network string) *netConn {
	return &netConn{loop: l, network: network, notify: make(chan struct{})}
}

// wake wakes every waiter; c.mu is held.
func (c *netConn) wake() {
	close(c.notify)
	c.notify = make(chan struct{})
}

// Protocol side (loop thread).

func (c *netConn) ConnectionMade(t *Transport) {
	c.t = t
	c.local, c.remote = t.LocalAddr(), t.RemoteAddr()
	if c.listener != nil && !c.listener.accepted(c) {
		t.Abort()
	}
}

func (c *netConn) DataReceived(b []byte) {
	c.mu.Lock()
	c.rbuf = append(c.rbuf, b...)
	if len(c.rbuf) > netConnReadHigh && !c.rpaused {
		c.rpaused = true
		c.t.PauseReading()
	}
	c.wake()
	c.mu.Unlock()
}

func (c *netConn) EOFReceived() bool {
	c.mu.Lock()
	if c.rerr == nil {
		c.rerr = io.EOF
	}
	c.wake()
	c.mu.Unlock()
	return true // half-open: the Go side may still write
}

func (c *netConn) ConnectionLost(err error) {
	c.mu.Lock()
	if c.rerr == nil {
		if err != nil {
			c.rerr = c.opError("read", err)
		} else {
			c.rerr = io.EOF
		}
	}
	if c.werr == nil {
		if err != nil {
			c.werr = c.opError("write", err)
		} else {
			c.werr = c.opError("write", syscall.EPIPE)
		}
	}
	c.lost = true
	c.wake()
	c.mu.Unlock()
}

func (c *netConn) PauseWriting() {
	c.mu.Lock()
	c.wpaused = true
	c.mu.Unlock()
}

func (c *netConn) ResumeWriting() {
	c.mu.Lock()
	c.wpaused = false
	c.wake()
	c.mu.Unlock()
}

// flush hands the written bytes to the transport (loop thread).
func (c *netConn) flush() {
	c.mu.Lock()
	data := c.wbuf
	c.wbuf = c.wspare[:0]
	c.wspare = nil
	c.wsched = false
	c.wake() // writers waiting for room
	c.mu.Unlock()
	if len(data) > 0 && c.t != nil {
		if _, err := c.t.Write(data); err != nil {
			c.mu.Lock()
			if c.werr == nil {
				c.werr = err
			}
			c.wake()
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	if c.wspare == nil && cap(data) <= 4*netConnWriteHigh {
		c.wspare = data[:0]
	}
	c.mu.Unlock()
}

// net.Conn side (any goroutine).

func (c *netConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.local, Addr: c.remote, Err: err}
}

// Read reads received data, waiting for some.
func (c *netConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	for {
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, c.opError("read", net.ErrClosed)
		case len(c.rbuf) > 0:
			n := copy(b, c.rbuf)
			c.rbuf = c.rbuf[n:]
			if len(c.rbuf) == 0 {
				c.rbuf = c.rbuf[:0:0] // let a large buffer go
			}
			resume := c.rpaused && len(c.rbuf) < netConnReadHigh/2
			if resume {
				c.rpaused = false
			}
			c.mu.Unlock()
			if resume {
				c.loop.CallSoonThreadsafe(func() {
					if c.t != nil && !c.t.Lost() {
						c.t.ResumeReading()
					}
				})
			}
			return n, nil
		case c.rerr != nil:
			err := c.rerr
			c.mu.Unlock()
			return 0, err
		case c.rdl.expired:
			c.mu.Unlock()
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case len(b) == 0:
			c.mu.Unlock()
			return 0, nil
		}
		ch := c.notify
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// Write copies b for the loop thread; it waits while too much is unsent.
func (c *netConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	for {
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, c.opError("write", net.ErrClosed)
		case c.werr != nil:
			err := c.werr
			c.mu.Unlock()
			return 0, err
		case c.wdl.expired:
			c.mu.Unlock()
			return 0, c.opError("write", os.ErrDeadlineExceeded)
		case !c.wpaused && len(c.wbuf) < netConnWriteHigh:
			c.wbuf = append(c.wbuf, b...)
			sched := !c.wsched
			c.wsched = true
			c.mu.Unlock()
			if sched {
				if _, err := c.loop.CallSoonThreadsafe(c.flush); err != nil {
					return 0, c.opError("write", err)
				}
			}
			return len(b), nil
		}
		ch := c.notify
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// Close closes the connection after the written data is sent.
func (c *netConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	c.rdl.stop()
	c.wdl.stop()
	c.wake()
	c.mu.Unlock()
	_, err := c.loop.CallSoonThreadsafe(func() {
		c.flush()
		if c.t != nil {
			c.t.Close()
		}
	})
	return err
}

// CloseWrite shuts down the writing side once the written data is sent
// (as *net.TCPConn's CloseWrite).
func (c *netConn) CloseWrite() error {
	_, err := c.loop.CallSoonThreadsafe(func() {
		c.flush()
		if c.t != nil {
			c.t.WriteEOF()
		}
	})
	return err
}

func (c *netConn) LocalAddr() net.Addr  { return c.local }
func (c *netConn) RemoteAddr() net.Addr { return c.remote }

func (c *netConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *netConn) SetReadDeadline(t time.Time) error { return c.setDeadline(&c.rdl, t) }

func (c *netConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(&c.wdl, t) }

func (c *netConn) setDeadline(d *deadline, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opError("set", net.ErrClosed)
	}
	d.stop()
	d.expired = false
	if t.IsZero() {
		return nil
	}
	if dur := time.Until(t); dur <= 0 {
		d.expired = true
		c.wake()
		return nil
	} else {
		var timer *time.Timer
		timer = time.AfterFunc(dur, func() {
			c.mu.Lock()
			if d.timer == timer {
				d.expired = true
				c.wake()
			}
			c.mu.Unlock()
		})
		d.timer = timer
	}
	return nil
}

func (d *deadline) stop() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// splitNetAddress reads Dial's and Listen's (network, address): host, port
// and the family option for "tcp", "tcp4" and "tcp6"; nothing for "unix"
// (the address is a path); a *net.OpError of op for anything else.
func splitNetAddress(op, network, address string) (host string, port int, opts []Option, err error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		h, p, err := net.SplitHostPort(address)
		if err != nil {
			return "", 0, nil, &net.OpError{Op: op, Net: network, Err: err}
		}
		if port, err = strconv.Atoi(p); err != nil {
			return "", 0, nil, &net.OpError{Op: op, Net: network, Err: errInvalid("bad port " + p)}
		}
		if network == "tcp4" {
			opts = append(opts, WithFamily(syscall.AF_INET))
		} else if network == "tcp6" {
			opts = append(opts, WithFamily(syscall.AF_INET6))
		}
		return h, port, opts, nil
	case "unix":
		return "", 0, nil, nil
	}
	return "", 0, nil, &net.OpError{Op: op, Net: network, Err: net.UnknownNetworkError(network)}
}
