package asyncloop

import (
	"context"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Every operation that waits takes a context.Context first: when ctx is
// done before the operation, the operation's future is cancelled (on the
// loop's thread) and fails with ctx's error (context.Canceled, or an
// i/o time-out that is context.DeadlineExceeded and os.ErrDeadlineExceeded)
// inside the operation's *net.OpError. A nil ctx never cancels.

// transportResult reads a transport future's result: the Go wrapper of the
// connection the binding made.
func transportResult(c *conn) func(uintptr) (*Transport, error) {
	return func(h uintptr) (*Transport, error) {
		var th uintptr
		if _, err := do(func() int32 { return lib.futureResultTransport(h, &th) }); err != nil {
			return nil, err
		}
		if c.transport.h == 0 {
			c.transport.h = th
			c.loop.transports[th] = c.transport
		}
		return c.transport, nil
	}
}

// CreateConnection connects to host:port with protocol p (asyncio's
// create_connection). The future resolves to the *Transport after
// p.ConnectionMade ran, or fails with the connection error, a *net.OpError
// (errors.Is(err, syscall.ECONNREFUSED), ...); then no Protocol method runs.
//
// Options: WithLocalAddr, WithHappyEyeballs, WithInterleave, WithFamily,
// WithTLS and WithServerHostname (TLS: the future resolves after the
// handshake), WithSocket (an already connected socket; host "" and port 0).
func (l *Loop) CreateConnection(ctx context.Context, host string, port int, p Protocol, opts ...Option) (*Future[*Transport], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errInvalid("nil protocol")
	}
	o, err := collect(opts, optLocalAddr|optHappyEyeballs|optInterleave|optFamily|optTLS|optServerHostname|optSocket, "CreateConnection")
	if err != nil {
		return nil, err
	}
	co := cConnectOptions{
		size:               unsafe.Sizeof(cConnectOptions{}),
		localHost:          cStringOrNil(o.localHost),
		localPort:          int32(o.localPort),
		happyEyeballsDelay: o.happyEyeballs.Seconds(),
		interleave:         int32(o.interleave),
		family:             int32(o.family),
	}
	if o.serverHostname != "" {
		co.serverHostname = cString(o.serverHostname)
	}
	if o.tls != nil {
		if co.tls, err = o.tls.handle(); err != nil {
			return nil, err
		}
	}
	network := "tcp"
	var addr net.Addr
	hostp := cString(host)
	if o.sock != nil {
		fd, err := dupConn(o.sock)
		if err != nil {
			return nil, err
		}
		co.hasSock, co.sock = 1, int32(fd)
		hostp = nil
		if sa, err := unix.Getsockname(fd); err == nil {
			if _, ok := sa.(*unix.SockaddrUnix); ok {
				network = "unix"
			}
		}
		if pa, err := unix.Getpeername(fd); err == nil {
			addr = sockaddrAddr(network, pa)
		}
	} else {
		addr = makeAddr("tcp", host, port)
	}
	var local net.Addr
	if o.localHost != nil {
		local = makeAddr("tcp", *o.localHost, o.localPort)
	}
	c := newConn(l, p, network)
	key := reg.add(c)
	f, err := newOpFuture(l, ctx, opWrapper("dial", network, local, addr), transportResult(c), func(out *uintptr) int32 {
		return lib.createConnection(l.handle(), hostp, int32(port), unsafe.Pointer(c.cproto()), key, cb.free, unsafe.Pointer(&co), out)
	})
	runtime.KeepAlive(&co)
	runtime.KeepAlive(o)
	if err != nil && co.hasSock != 0 {
		unix.Close(int(co.sock))
	}
	return f, err
}

func sockaddrAddr(network string, sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return makeAddr(network, net.IP(a.Addr[:]).String(), a.Port)
	case *unix.SockaddrInet6:
		ip := net.IP(a.Addr[:]).String()
		if a.ZoneId != 0 {
			if ifc, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				ip += "%" + ifc.Name
			}
		}
		return makeAddr(network, ip, a.Port)
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: network}
	}
	return nil
}

// CreateServer listens on host:port (host "" = all interfaces, port 0 = any
// free port) and calls factory for every accepted connection, on the loop
// thread, for the Protocol of that connection (nil refuses it). The future
// resolves to the *Server; Close it when done.
//
// Options: WithBacklog, WithReuseAddress, WithReusePort, WithStartServing,
// WithFamily, WithHosts, WithSocket (a bound socket; host "" and port 0),
// WithTLS (a server config).
func (l *Loop) CreateServer(ctx context.Context, host string, port int, factory func() Protocol, opts ...Option) (*Future[*Server], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	o, err := collect(opts, optBacklog|optReuseAddress|optReusePort|optStartServing|optFamily|optHosts|optSocket|optTLS, "CreateServer")
	if err != nil {
		return nil, err
	}
	so := cServerOptions{
		size:         unsafe.Sizeof(cServerOptions{}),
		backlog:      int32(o.backlog),
		reuseAddress: o.reuseAddress,
		reusePort:    b2i(o.reusePort),
		startServing: o.startServing,
		family:       int32(o.family),
	}
	hostp := cString(host)
	var hostsKeep []byte
	var hostsPtrs *[]*byte
	if len(o.hosts) > 0 {
		if host != "" {
			return nil, errInvalid("WithHosts needs host \"\"")
		}
		hostsPtrs, hostsKeep = cStrings(o.hosts)
		so.hosts = unsafe.Pointer(&(*hostsPtrs)[0])
		hostp = nil
	}
	if o.tls != nil {
		if so.tls, err = o.tls.handle(); err != nil {
			return nil, err
		}
	}
	if o.sock != nil {
		fd, err := dupConn(o.sock)
		if err != nil {
			return nil, err
		}
		so.hasSock, so.sock = 1, int32(fd)
		hostp = nil
	}
	addr := makeAddr("tcp", host, port)
	f, err := newServerFuture(l, ctx, "tcp", factory, opWrapper("listen", "tcp", nil, addr),
		func(connCb, key, free uintptr, out *uintptr) int32 {
			return lib.createServer(l.handle(), hostp, int32(port), connCb, key, free, unsafe.Pointer(&so), out)
		})
	runtime.KeepAlive(&so)
	runtime.KeepAlive(o)
	runtime.KeepAlive(hostsKeep)
	runtime.KeepAlive(hostsPtrs)
	if err != nil && so.hasSock != 0 {
		unix.Close(int(so.sock))
	}
	return f, err
}

// CreateUnixConnection connects to the Unix stream socket at path
// (asyncio's create_unix_connection; "@name" is an abstract socket).
// Otherwise as CreateConnection (for TLS over a Unix socket, connect it with
// net.Dial and pass it to CreateConnection with WithSocket and WithTLS).
func (l *Loop) CreateUnixConnection(ctx context.Context, path string, p Protocol) (*Future[*Transport], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errInvalid("nil protocol")
	}
	c := newConn(l, p, "unix")
	key := reg.add(c)
	return newOpFuture(l, ctx, opWrapper("dial", "unix", nil, &net.UnixAddr{Name: path, Net: "unix"}), transportResult(c),
		func(out *uintptr) int32 {
			return lib.createUnixConnection(l.handle(), cString(path), unsafe.Pointer(c.cproto()), key, cb.free, out)
		})
}

// CreateUnixServer listens on the Unix stream socket at path (asyncio's
// create_unix_server); a socket file left at path by a dead server is
// replaced. Otherwise as CreateServer.
//
// Options: WithBacklog, WithStartServing, WithCleanupSocket, WithTLS.
func (l *Loop) CreateUnixServer(ctx context.Context, path string, factory func() Protocol, opts ...Option) (*Future[*Server], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	o, err := collect(opts, optBacklog|optStartServing|optCleanupSocket|optTLS, "CreateUnixServer")
	if err != nil {
		return nil, err
	}
	uo := cUnixServerOptions{
		size:          unsafe.Sizeof(cUnixServerOptions{}),
		backlog:       int32(o.backlog),
		startServing:  o.startServing,
		cleanupSocket: o.cleanupSocket,
	}
	if o.tls != nil {
		if uo.tls, err = o.tls.handle(); err != nil {
			return nil, err
		}
	}
	f, err := newServerFuture(l, ctx, "unix", factory, opWrapper("listen", "unix", nil, &net.UnixAddr{Name: path, Net: "unix"}),
		func(connCb, key, free uintptr, out *uintptr) int32 {
			return lib.createUnixServer(l.handle(), cString(path), connCb, key, free, unsafe.Pointer(&uo), out)
		})
	runtime.KeepAlive(&uo)
	runtime.KeepAlive(o)
	return f, err
}

// ConnectAcceptedSocket wraps an already connected stream socket (a
// *net.TCPConn or *net.UnixConn from Accept, one end of a socketpair as an
// *os.File, ...) into a transport with protocol p (asyncio's
// connect_accepted_socket). The transport uses a duplicate of c's
// descriptor; on success c is closed (the transport owns the connection).
func (l *Loop) ConnectAcceptedSocket(ctx context.Context, c syscall.Conn, p Protocol) (*Future[*Transport], error) {
	return l.wrapFd(ctx, c, p, "accept", func(fd int32, proto unsafe.Pointer, key uintptr, out *uintptr) int32 {
		return lib.connectAcceptedSocket(l.handle(), fd, proto, key, cb.free, out)
	})
}

// ConnectReadPipe reads the pipe (a FIFO, a socket, a terminal or another
// character device) f with protocol p (asyncio's connect_read_pipe). The
// transport takes f over: it uses a duplicate of f's descriptor and f is
// closed on success. At EOF, p.EOFReceived runs (its result is ignored),
// then ConnectionLost(nil).
func (l *Loop) ConnectReadPipe(ctx context.Context, f *os.File, p Protocol) (*Future[*Transport], error) {
	if f == nil {
		return nil, errInvalid("nil file")
	}
	return l.wrapFd(ctx, f, p, "read", func(fd int32, proto unsafe.Pointer, key uintptr, out *uintptr) int32 {
		return lib.connectReadPipe(l.handle(), fd, proto, key, cb.free, out)
	})
}

// ConnectWritePipe writes to the pipe f with protocol p (asyncio's
// connect_write_pipe): Write never blocks (the rest is buffered, with
// PauseWriting/ResumeWriting at the water marks). When the reader goes
// away the transport closes (ConnectionLost with EPIPE if data was still
// buffered). Takes f over as ConnectReadPipe.
func (l *Loop) ConnectWritePipe(ctx context.Context, f *os.File, p Protocol) (*Future[*Transport], error) {
	if f == nil {
		return nil, errInvalid("nil file")
	}
	return l.wrapFd(ctx, f, p, "write", func(fd int32, proto unsafe.Pointer, key uintptr, out *uintptr) int32 {
		return lib.connectWritePipe(l.handle(), fd, proto, key, cb.free, out)
	})
}

type closer interface{ Close() error }

func (l *Loop) wrapFd(ctx context.Context, sc syscall.Conn, p Protocol, op string,
	call func(fd int32, proto unsafe.Pointer, key uintptr, out *uintptr) int32) (*Future[*Transport], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errInvalid("nil protocol")
	}
	if sc == nil {
		return nil, errInvalid("nil connection")
	}
	fd, err := dupConn(sc)
	if err != nil {
		return nil, err
	}
	network := "pipe"
	var addr net.Addr
	if op == "accept" {
		network = "tcp"
		if sa, err := unix.Getsockname(fd); err == nil {
			if _, ok := sa.(*unix.SockaddrUnix); ok {
				network = "unix"
			}
		}
		if pa, err := unix.Getpeername(fd); err == nil {
			addr = sockaddrAddr(network, pa)
		}
	} else if f, ok := sc.(*os.File); ok {
		addr = &pipeAddr{f.Name()}
	}
	c := newConn(l, p, network)
	key := reg.add(c)
	f, err := newOpFuture(l, ctx, opWrapper(op, network, nil, addr), transportResult(c), func(out *uintptr) int32 {
		return call(int32(fd), unsafe.Pointer(c.cproto()), key, out)
	})
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if cl, ok := sc.(closer); ok {
		cl.Close()
	}
	return f, nil
}

// pipeAddr names a pipe in errors.
type pipeAddr struct{ name string }

func (a *pipeAddr) Network() string { return "pipe" }
func (a *pipeAddr) String() string  { return a.name }

func portString(port int) string { return strconv.Itoa(port) }
