package asyncloop

import (
	"runtime"
	"unsafe"
)

// Server is a listening TCP server (asyncio.Server). Its methods must be
// called on the loop's thread. Release it when done.
type Server struct {
	h       uintptr
	loop    *Loop
	factory func() Protocol
}

// cServerOptions is aloop_server_options_t.
type cServerOptions struct {
	size         uintptr
	backlog      int32
	reuseAddress int32
	reusePort    int32
	startServing int32
}

// cConnectOptions is aloop_connect_options_t.
type cConnectOptions struct {
	size      uintptr
	localHost *byte
	localPort int32
	_         int32
}

// ServerOption configures CreateServer.
type ServerOption func(*cServerOptions)

// WithBacklog sets the listen backlog (<= 0: 100, asyncio's default).
func WithBacklog(n int) ServerOption { return func(o *cServerOptions) { o.backlog = int32(n) } }

// WithReuseAddress sets SO_REUSEADDR (default on).
func WithReuseAddress(on bool) ServerOption {
	return func(o *cServerOptions) { o.reuseAddress = b2i(on) }
}

// WithReusePort sets SO_REUSEPORT (default off).
func WithReusePort(on bool) ServerOption {
	return func(o *cServerOptions) { o.reusePort = b2i(on) }
}

// WithStartServing(false) creates the server without accepting until
// StartServing (default on).
func WithStartServing(on bool) ServerOption {
	return func(o *cServerOptions) { o.startServing = b2i(on) }
}

// ConnectOption configures CreateConnection.
type ConnectOption func(*connectOpts)

type connectOpts struct {
	localHost string
	localPort int
}

// WithLocalAddr binds the socket to host:port before connecting.
func WithLocalAddr(host string, port int) ConnectOption {
	return func(o *connectOpts) { o.localHost, o.localPort = host, port }
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// CreateServer listens on host:port (host "" = all interfaces, port 0 = any
// free port) and calls factory for every accepted connection, on the loop
// thread, for the Protocol of that connection (nil refuses it). The
// returned future resolves to the *Server (Future.Server); release it.
func (l *Loop) CreateServer(host string, port int, factory func() Protocol, opts ...ServerOption) (*Future, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if factory == nil {
		return nil, errInvalid("nil protocol factory")
	}
	o := cServerOptions{size: unsafe.Sizeof(cServerOptions{}), reuseAddress: -1, startServing: -1}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{loop: l, factory: factory}
	f := &Future{loop: l, server: s}
	key := reg.add(s)
	runtime.LockOSThread()
	err := lib.errorOf(lib.createServer(l.handle(), cString(host), int32(port), cb.connection, key, cb.free, unsafe.Pointer(&o), &f.h))
	runtime.UnlockOSThread()
	if err != nil {
		return nil, err
	}
	return f, nil
}

// CreateConnection connects to host:port with protocol p (asyncio's
// create_connection). The future resolves to the *Transport after
// p.ConnectionMade ran, or fails with the connection error (for example
// errors.Is(err, syscall.ECONNREFUSED)); then no Protocol method runs.
func (l *Loop) CreateConnection(host string, port int, p Protocol, opts ...ConnectOption) (*Future, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errInvalid("nil protocol")
	}
	var co connectOpts
	for _, opt := range opts {
		opt(&co)
	}
	var optp unsafe.Pointer
	var localHost []byte
	if co.localHost != "" {
		localHost = append([]byte(co.localHost), 0)
		optp = unsafe.Pointer(&cConnectOptions{
			size:      unsafe.Sizeof(cConnectOptions{}),
			localHost: &localHost[0],
			localPort: int32(co.localPort),
		})
	}
	c := newConn(l, p)
	f := &Future{loop: l, transport: c.transport}
	key := reg.add(c)
	runtime.LockOSThread()
	err := lib.errorOf(lib.createConnection(l.handle(), cString(host), int32(port), unsafe.Pointer(c.cproto()), key, cb.free, optp, &f.h))
	runtime.UnlockOSThread()
	runtime.KeepAlive(localHost)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (s *Server) handle() uintptr {
	if s == nil {
		return 0
	}
	return s.h
}

func (s *Server) call(fn func(uintptr) int32) (int32, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	runtime.LockOSThread()
	rc := fn(s.handle())
	err := lib.errorOf(rc)
	runtime.UnlockOSThread()
	return rc, err
}

// Loop returns the server's loop.
func (s *Server) Loop() *Loop {
	if s == nil {
		return nil
	}
	return s.loop
}

// Close stops listening; accepted connections stay open. Idempotent.
func (s *Server) Close() error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := s.call(lib.serverClose)
	return err
}

// Release closes the server if needed and releases its handle.
func (s *Server) Release() error {
	if lib == nil {
		return ErrBadHandle
	}
	_, err := s.call(lib.serverFree)
	if err == nil && s.loop != nil {
		delete(s.loop.servers, s.h)
	}
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
	if lib == nil {
		return false
	}
	rc, err := s.call(lib.serverIsServing)
	return err == nil && rc > 0
}

// WaitClosed returns a future that resolves when the server is closed and
// its connections are gone. Release it.
func (s *Server) WaitClosed() (*Future, error) {
	if lib == nil || s == nil {
		return nil, ErrBadHandle
	}
	f := &Future{loop: s.loop}
	_, err := s.call(func(h uintptr) int32 { return lib.serverWaitClosed(h, &f.h) })
	if err != nil {
		return nil, err
	}
	return f, nil
}

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

// SockName returns the numeric host and port of listening socket i.
func (s *Server) SockName(i int) (host string, port int, err error) {
	if lib == nil {
		return "", 0, ErrBadHandle
	}
	return sockname(func(buf unsafe.Pointer, n uintptr, p *int32) int32 {
		return lib.serverSockname(s.handle(), int32(i), buf, n, p)
	})
}

// Port returns the port of the first listening socket (0 if none).
func (s *Server) Port() int {
	_, p, err := s.SockName(0)
	if err != nil {
		return 0
	}
	return p
}
