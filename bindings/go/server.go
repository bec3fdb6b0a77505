package asyncloop

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"unsafe"
	"weak"
)

// Server is a listening TCP or Unix server (asyncio.Server). Its methods
// must be called on the loop's thread. Close it when done. A Server that
// becomes unreachable while open keeps serving (as in asyncio) and is
// released by Loop.Close; debug mode reports it to the loop's exception
// handler.
type Server struct {
	h       uintptr
	loop    *Loop
	network string
	created string
	closed  bool
	addrs   []net.Addr
	waiter  *Future[struct{}] // wait_closed's future, taken at Close
	cleanup runtime.Cleanup
}

// serverEntry is the userdata of a server's connection callback (it must
// not reach the *Server, which the garbage collector may find dropped).
type serverEntry struct {
	loop    *Loop
	factory func() Protocol
	network string
}

func (e *serverEntry) owner() *Loop { return e.loop }

type droppedServer struct {
	loop    *Loop
	h       uintptr
	what    string
	created string
}

// orphanServer runs when the garbage collector finds an open Server
// unreachable. The server keeps serving (the library holds it, as asyncio's
// loop holds a server nobody references); Loop.Close releases it. Debug
// mode reports it.
func orphanServer(d droppedServer) {
	d.loop.CallSoonThreadsafe(func() {
		if d.loop.debug.Load() {
			d.loop.CallExceptionHandler(fmt.Sprintf("unclosed server %s created at %s was garbage collected: "+
				"it serves until the loop closes (keep the *Server and Close it)", d.what, d.created), nil)
		}
		d.loop.orphans = append(d.loop.orphans, d.h)
	})
}

// newServerFuture wraps the future of create_server / create_unix_server.
func newServerFuture(l *Loop, ctx context.Context, network string, factory func() Protocol, wrap func(error) error,
	call func(connCb, key, free uintptr, out *uintptr) int32) (*Future[*Server], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if factory == nil {
		return nil, errInvalid("nil protocol factory")
	}
	created := ""
	if _, file, line, ok := runtime.Caller(2); ok {
		created = fmt.Sprintf("%s:%d", file, line)
	}
	key := reg.add(&serverEntry{loop: l, factory: factory, network: network})
	get := func(h uintptr) (*Server, error) {
		var sh uintptr
		if _, err := do(func() int32 { return lib.futureResultServer(h, &sh) }); err != nil {
			return nil, err
		}
		s := &Server{h: sh, loop: l, network: network, created: created}
		s.addrs = s.fetchAddrs()
		l.servers[sh] = weak.Make(s)
		what := ""
		if len(s.addrs) > 0 {
			what = "on " + s.addrs[0].String()
		}
		s.cleanup = runtime.AddCleanup(s, orphanServer, droppedServer{loop: l, h: sh, what: what, created: created})
		return s, nil
	}
	return newOpFuture(l, ctx, wrap, get, func(out *uintptr) int32 { return call(cb.connection, key, cb.free, out) })
}

func (s *Server) fetchAddrs() []net.Addr {
	n := s.SocketCount()
	addrs := make([]net.Addr, 0, n)
	for i := range n {
		if host, port, err := s.SockName(i); err == nil {
			addrs = append(addrs, makeAddr(s.network, host, port))
		}
	}
	return addrs
}

func (s *Server) handle() uintptr {
	if s == nil || s.closed {
		return 0
	}
	return s.h
}

func (s *Server) call(fn func(uintptr) int32) (int32, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	if s != nil && s.closed {
		return 0, newError(ECLOSED, "the server is closed")
	}
	return do(func() int32 { return fn(s.handle()) })
}

// Loop returns the server's loop.
func (s *Server) Loop() *Loop {
	if s == nil {
		return nil
	}
	return s.loop
}

// Close stops listening and releases the server (asyncio's close; accepted
// connections stay open: WaitClosed waits for them). Idempotent.
func (s *Server) Close() error {
	if lib == nil {
		return ErrBadHandle
	}
	if s == nil || s.h == 0 {
		return ErrBadHandle
	}
	if s.closed {
		return nil
	}
	if _, err := s.call(lib.serverClose); err != nil {
		return err
	}
	if s.waiter == nil {
		s.waiter, _ = newOpFuture(s.loop, nil, nil, resultNone, func(out *uintptr) int32 { return lib.serverWaitClosed(s.h, out) })
	}
	_, err := s.call(lib.serverFree)
	s.closed = true
	s.cleanup.Stop()
	delete(s.loop.servers, s.h)
	return err
}

// StartServing starts accepting (for a server created with
// WithStartServing(false)).
func (s *Server) StartServing() error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := s.call(lib.serverStartServing)
	return err
}

// IsServing reports whether the server is accepting.
func (s *Server) IsServing() bool {
	if lib == nil || s == nil || s.closed {
		return false
	}
	rc, err := s.call(lib.serverIsServing)
	return err == nil && rc > 0
}

// ServeForever starts accepting and runs the loop (asyncio's
// serve_forever) until ctx is done or the loop is stopped; then it closes
// the server. It returns ctx's error when ctx ended it. Call it from the
// goroutine that owns the loop.
func (s *Server) ServeForever(ctx context.Context) error {
	if err := s.StartServing(); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	stop := context.AfterFunc(ctx, func() { s.loop.Stop() })
	err := s.loop.RunForever()
	stop()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// WaitClosed returns a future that resolves when the server is closed and
// its connections are gone (asyncio's wait_closed). ctx cancels the wait,
// not the server.
func (s *Server) WaitClosed(ctx context.Context) (*Future[struct{}], error) {
	if lib == nil || s == nil {
		return nil, ErrBadHandle
	}
	if !s.closed {
		return newOpFuture(s.loop, ctx, nil, resultNone, func(out *uintptr) int32 { return lib.serverWaitClosed(s.handle(), out) })
	}
	// Released: follow the future taken at Close.
	f, err := NewFuture[struct{}](s.loop)
	if err != nil {
		return nil, err
	}
	if s.waiter == nil {
		f.SetResult(struct{}{})
		return f, nil
	}
	s.waiter.AddDoneCallback(func(w *Future[struct{}]) {
		if !f.Done() {
			f.SetResult(struct{}{})
		}
	})
	f.watch(ctx)
	return f, nil
}

func resultNone(h uintptr) (struct{}, error) { return struct{}{}, nil }

// SocketCount returns the number of listening sockets.
func (s *Server) SocketCount() int {
	if lib == nil {
		return 0
	}
	rc, err := s.call(lib.serverSocketCount)
	if err != nil {
		return 0
	}
	return int(rc)
}

// SocketFd returns the fd of listening socket i.
func (s *Server) SocketFd(i int) (int, error) {
	if lib == nil {
		return -1, ErrBadHandle
	}
	rc, err := s.call(func(h uintptr) int32 { return lib.serverSocketFd(h, int32(i)) })
	if err != nil {
		return -1, err
	}
	return int(rc), nil
}

// SockName returns the numeric host and port of listening socket i (the
// path and 0 for a Unix server).
func (s *Server) SockName(i int) (host string, port int, err error) {
	if lib == nil {
		return "", 0, ErrBadHandle
	}
	if s != nil && s.closed {
		return "", 0, newError(ECLOSED, "the server is closed")
	}
	return sockname(func(buf unsafe.Pointer, n uintptr, p *int32) int32 {
		return lib.serverSockname(s.handle(), int32(i), buf, n, p)
	})
}

// Addrs returns the addresses of the listening sockets (asyncio's
// sockets); they stay readable after Close.
func (s *Server) Addrs() []net.Addr {
	if s == nil {
		return nil
	}
	return s.addrs
}

// Addr returns the address of the first listening socket (nil if none).
func (s *Server) Addr() net.Addr {
	if s == nil || len(s.addrs) == 0 {
		return nil
	}
	return s.addrs[0]
}

// Port returns the port of the first listening socket (0 if none).
func (s *Server) Port() int {
	switch a := s.Addr().(type) {
	case *net.TCPAddr:
		return a.Port
	}
	return 0
}
