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
	// Hosts lists several hosts to listen on (asyncio's host sequence; ""
	// = all interfaces); the host argument must be "" then.
	Hosts  []string
	Family int // AF_UNSPEC, AF_INET or AF_INET6: restricts resolution
	Flags  int // getaddrinfo AI_* flags (AI_PASSIVE is implied)
	// HasSock: serve on Sock, an existing bound stream socket (asyncio's
	// sock=; listen is called on it); host must be "" and port 0. The
	// server owns the socket from then on.
	HasSock bool
	Sock    int
	// TLS wraps every accepted connection in TLS (asyncio's ssl=; see
	// TLSOptions); the protocol's ConnectionMade follows the handshake.
	TLS *TLSOptions
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
	claimed   bool // its holder has it (claim.go)
	loop      *Loop
	listeners []*listener
	factory   ConnectionFactory
	backlog   int
	serving   bool
	closed    bool
	conns     int
	waiters   []*Future
	retry     *Handle
	onClose   func() // runs once in Close, after the sockets are closed

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
	if o.TLS != nil {
		f, err := TLSServerFactory(factory, o.TLS)
		if err != nil {
			return nil, err
		}
		factory = f
	}
	if o.HasSock {
		if host != "" || port != 0 || len(o.Hosts) > 0 {
			return nil, &OpError{Op: "create_server", Addr: "host and port must not be given with a socket", Err: ErrInvalid}
		}
		if err := l.adoptSock(o.Sock, unix.SOCK_STREAM); err != nil {
			return nil, err
		}
		s, err := l.serveSock(o.Sock, factory, &o)
		if err != nil {
			return nil, err
		}
		fut := l.NewFuture()
		fut.SetResult(s)
		return fut, nil
	}
	hosts := o.Hosts
	if len(hosts) == 0 {
		hosts = []string{host}
	} else if host != "" {
		return nil, &OpError{Op: "create_server", Addr: "host and hosts both given", Err: ErrInvalid}
	}
	if err := gaiCheck(o.Family, o.Flags); err != nil {
		return nil, &OpError{Op: "create_server", Err: ErrInvalid, Addr: err.Error()}
	}
	anyHost := false
	for _, h := range hosts {
		anyHost = anyHost || h == ""
	}
	fut := l.NewFuture()
	results := make([][]AddrInfo, len(hosts))
	pending := len(hosts)
	var firstErr error
	for i, h := range hosts {
		i := i
		l.lookup(h, itoa(port), o.Family, unix.SOCK_STREAM, 0, o.Flags|AI_PASSIVE, func(res []AddrInfo, err error) {
			pending--
			results[i] = res
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if pending > 0 || fut.Done() {
				return
			}
			if firstErr != nil {
				fut.SetException(firstErr)
				return
			}
			// Every address once (asyncio listens on the set of them).
			var addrs []unix.Sockaddr
			seen := map[string]bool{}
			for _, res := range results {
				for _, ai := range res {
					k := addrString(ai.Addr)
					if !seen[k] {
						seen[k] = true
						addrs = append(addrs, ai.Addr)
					}
				}
			}
			s, err := l.listen(addrs, factory, &o, anyHost)
			if err != nil {
				fut.SetException(err)
				return
			}
			fut.SetResult(s)
		}, fut)
	}
	return fut, nil
}

// serveSock makes a server of an existing stream socket.
func (l *Loop) serveSock(fd int, factory ConnectionFactory, o *ServerOptions) (*Server, error) {
	if err := unix.Listen(fd, o.Backlog); err != nil {
		return nil, &OpError{Op: "listen", Err: err}
	}
	sa, err := Getsockname(fd)
	if err != nil {
		return nil, &OpError{Op: "getsockname", Err: err}
	}
	s := &Server{loop: l, factory: factory, backlog: o.Backlog, Tag: o.Tag}
	s.listeners = append(s.listeners, &listener{fd: fd, sa: sa})
	l.objects++
	if !o.NoStart {
		s.StartServing()
	}
	return s, nil
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
		// claimEntry: a watcher still found on the number belongs to a
		// closed file (its queued removal not flushed yet); kept, its
		// registration would stand for the listener's, never made.
		ln.e = l.claimEntry(ln.fd)
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
		nfd, err := acceptRaw(ln.fd)
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
	if f := s.onClose; f != nil {
		s.onClose = nil
		f()
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

// acceptRaw accepts a connection without asking for its address (the
// transport asks getpeername when someone wants it): unix.Accept4 allocates
// the address twice per connection. A non-blocking accept does not block:
// no scheduler hand-off (RawSyscall), as for reads and writes.
func acceptRaw(fd int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}
