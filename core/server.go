package core

import (
	"golang.org/x/sys/unix"
)

// ServerOptions are the optional arguments of CreateServer.
type ServerOptions struct {
	Backlog     int  // <= 0: 100
	NoReuseAddr bool // SO_REUSEADDR is on unless set
	ReusePort   bool
	NoStart     bool // do not start accepting (start_serving=False)
	Tag         any  // copied to Server.Tag
}

// ConnectionFactory is called for every accepted connection, before
// ConnectionMade; it must set the transport's protocol (SetProtocol). An
// error, or no protocol, closes the connection.
type ConnectionFactory func(t *Transport) error

type listener struct {
	fd int
	e  *fdEntry
	sa unix.Sockaddr
}

// Server is a listening server (asyncio's Server).
type Server struct {
	loop      *Loop
	listeners []*listener
	factory   ConnectionFactory
	backlog   int
	serving   bool
	closed    bool
	conns     int
	waiters   []*Future
	retry     *Handle

	// Tag is free for the host.
	Tag any
}

const acceptRetryDelay = 1.0

// CreateServer listens on host:port ("" = all interfaces, port 0 = any)
// and returns a future whose result is the *Server.
func (l *Loop) CreateServer(host string, port int, factory ConnectionFactory, opts *ServerOptions) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if factory == nil || port < 0 || port > 65535 {
		return nil, ErrInvalid
	}
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	if o.Backlog <= 0 {
		o.Backlog = 100
	}
	fut := l.NewFuture()
	l.resolve(host, port, true, func(addrs []unix.Sockaddr, err error) {
		if fut.Done() {
			return
		}
		if err != nil {
			fut.SetException(err)
			return
		}
		s, err := l.listen(addrs, factory, &o, host == "")
		if err != nil {
			fut.SetException(err)
			return
		}
		fut.SetResult(s)
	})
	return fut, nil
}

func (l *Loop) listen(addrs []unix.Sockaddr, factory ConnectionFactory, o *ServerOptions, anyHost bool) (*Server, error) {
	s := &Server{loop: l, factory: factory, backlog: o.Backlog, Tag: o.Tag}
	fail := func(err error) (*Server, error) {
		for _, ln := range s.listeners {
			unix.Close(ln.fd)
		}
		return nil, err
	}
	for _, sa := range addrs {
		fam := familyOf(sa)
		fd, err := newStreamSocket(fam)
		if err != nil {
			if anyHost && fam == unix.AF_INET6 && Errno(err) == unix.EAFNOSUPPORT {
				continue // no IPv6 on this host
			}
			return fail(err)
		}
		if !o.NoReuseAddr {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}
		if o.ReusePort {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				unix.Close(fd)
				return fail(&OpError{Op: "setsockopt SO_REUSEPORT", Err: err})
			}
		}
		if fam == unix.AF_INET6 {
			// As asyncio: one socket per family.
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			if anyHost && fam == unix.AF_INET6 && Errno(err) == unix.EADDRNOTAVAIL {
				continue
			}
			return fail(&OpError{Op: "bind", Addr: addrString(sa), Err: err})
		}
		if err := unix.Listen(fd, o.Backlog); err != nil {
			unix.Close(fd)
			return fail(&OpError{Op: "listen", Err: err})
		}
		bound, err := unix.Getsockname(fd)
		if err != nil {
			bound = sa
		}
		s.listeners = append(s.listeners, &listener{fd: fd, sa: bound})
	}
	l.objects++
	if !o.NoStart {
		s.StartServing()
	}
	return s, nil
}

// Loop returns the server's loop.
func (s *Server) Loop() *Loop { return s.loop }

// Sockets returns the listening fds.
func (s *Server) Sockets() []int {
	fds := make([]int, 0, len(s.listeners))
	for _, ln := range s.listeners {
		fds = append(fds, ln.fd)
	}
	return fds
}

// Addrs returns the bound addresses of the listening sockets.
func (s *Server) Addrs() []unix.Sockaddr {
	out := make([]unix.Sockaddr, 0, len(s.listeners))
	for _, ln := range s.listeners {
		out = append(out, ln.sa)
	}
	return out
}

// IsServing reports whether the server accepts connections.
func (s *Server) IsServing() bool { return s.serving }

// StartServing starts accepting connections.
func (s *Server) StartServing() error {
	if s.closed {
		return ErrClosed
	}
	if s.serving {
		return nil
	}
	s.serving = true
	for _, ln := range s.listeners {
		s.watch(ln)
	}
	return nil
}

func (s *Server) watch(ln *listener) {
	l := s.loop
	if ln.e == nil {
		ln.e = l.entry(ln.fd, true)
		ln.e.owner = s
	}
	ln.e.reader = func() { s.accept(ln) }
	l.update(ln.e)
}

func (s *Server) unwatch() {
	for _, ln := range s.listeners {
		if ln.e != nil {
			ln.e.reader = nil
			s.loop.update(ln.e)
		}
	}
}

func (s *Server) accept(ln *listener) {
	l := s.loop
	for i := 0; i < s.backlog && s.serving; i++ {
		nfd, _, err := unix.Accept4(ln.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.EINTR:
				return
			case unix.ECONNABORTED, unix.EPROTO:
				continue
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of a resource: stop accepting for a while, as
				// asyncio does, then retry.
				l.CallExceptionHandler(&ExceptionContext{
					Message: "socket.accept() out of system resource",
					Err:     &OpError{Op: "accept", Err: err},
					Server:  s,
				})
				s.unwatch()
				s.retry, _ = l.CallLater(acceptRetryDelay, func() {
					s.retry = nil
					if s.serving {
						for _, ln := range s.listeners {
							s.watch(ln)
						}
					}
				}, nil)
				return
			default:
				l.CallExceptionHandler(&ExceptionContext{
					Message: "Error on accept()",
					Err:     &OpError{Op: "accept", Err: err},
					Server:  s,
				})
				return
			}
		}
		s.newConnection(nfd)
	}
}

func (s *Server) newConnection(fd int) {
	l := s.loop
	if familyOf(s.listeners[0].sa) != unix.AF_UNIX {
		setNoDelay(fd)
	}
	t := l.newTransport(fd)
	t.server = s
	s.conns++
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = &OpError{Op: "protocol_factory", Err: ErrInvalid}
			}
		}()
		err = s.factory(t)
	}()
	if err != nil || t.proto == nil {
		if err == nil {
			err = &OpError{Op: "protocol_factory", Err: ErrInvalid, Addr: "no protocol set"}
		}
		l.CallExceptionHandler(&ExceptionContext{Message: "Error in protocol factory; connection closed", Err: err, Server: s, Transport: t})
		t.forceClose(nil)
		return
	}
	l.CallSoon(t.start, nil)
}

// Close stops listening; accepted connections stay open.
func (s *Server) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.serving = false
	if s.retry != nil {
		s.retry.Cancel()
		s.retry = nil
	}
	for _, ln := range s.listeners {
		if ln.e != nil {
			s.loop.forget(ln.e)
			ln.e.owner = nil
		}
		unix.Close(ln.fd)
	}
	s.loop.objects--
	s.wakeWaiters()
}

// IsClosed reports whether Close was called.
func (s *Server) IsClosed() bool { return s.closed }

// WaitClosed returns a future done once the server is closed and all its
// connections are gone.
func (s *Server) WaitClosed() *Future {
	f := s.loop.NewFuture()
	s.waiters = append(s.waiters, f)
	s.wakeWaiters()
	return f
}

func (s *Server) detach() {
	s.conns--
	s.wakeWaiters()
}

func (s *Server) wakeWaiters() {
	if !s.closed || s.conns > 0 {
		return
	}
	ws := s.waiters
	s.waiters = nil
	for _, f := range ws {
		if !f.Done() {
			f.SetResult(nil)
		}
	}
}
