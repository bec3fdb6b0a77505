package core

import (
	"errors"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Unix-domain stream sockets (create_unix_connection, create_unix_server)
// and connect_accepted_socket.
//
// Paths: a path that starts with '@' or with a NUL byte names a socket in
// Linux's abstract namespace (no file is created; the name is the rest of
// the path). Addresses of abstract sockets are reported with a leading '@';
// an unnamed socket (an unbound client) is reported as "".

// UnixServerOptions are the optional arguments of CreateUnixServer.
type UnixServerOptions struct {
	Backlog   int  // <= 0: 100
	NoStart   bool // do not start accepting (start_serving=False)
	NoCleanup bool // leave the socket file when the server closes
	Tag       any  // copied to Server.Tag
}

// isAbstract reports whether path names an abstract socket.
func isAbstract(path string) bool {
	return len(path) > 0 && (path[0] == '@' || path[0] == 0)
}

// unixSockaddr validates path and returns its socket address.
func unixSockaddr(path string) (*unix.SockaddrUnix, error) {
	if path == "" {
		return nil, &OpError{Op: "unix socket", Addr: "empty path", Err: ErrInvalid}
	}
	// sun_path holds 108 bytes including the NUL of a file path.
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, &OpError{Op: "unix socket", Addr: strconv.Quote(path) + " (AF_UNIX path too long)", Err: ErrInvalid}
	}
	if isAbstract(path) {
		return &unix.SockaddrUnix{Name: "@" + path[1:]}, nil
	}
	for i := 0; i < len(path); i++ {
		if path[i] == 0 {
			return nil, &OpError{Op: "unix socket", Addr: "path contains a NUL byte", Err: ErrInvalid}
		}
	}
	return &unix.SockaddrUnix{Name: path}, nil
}

// removeStaleSocket unlinks path if it is a socket file, as asyncio does
// before binding (a left-over of a previous server).
func removeStaleSocket(path string) {
	if isAbstract(path) {
		return
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		unix.Unlink(path)
	}
}

// parseSockaddr converts a raw address of length n (as the kernel returned
// it) into a Sockaddr. Unlike x/sys it honours the length, so an unnamed
// Unix socket is "" and an abstract name keeps every byte.
func parseSockaddr(rsa *unix.RawSockaddrAny, n uint32) unix.Sockaddr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		pp := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		sa := &unix.SockaddrInet4{Addr: pp.Addr}
		p := (*[2]byte)(unsafe.Pointer(&pp.Port))
		sa.Port = int(p[0])<<8 + int(p[1])
		return sa
	case unix.AF_INET6:
		pp := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		sa := &unix.SockaddrInet6{Addr: pp.Addr, ZoneId: pp.Scope_id}
		p := (*[2]byte)(unsafe.Pointer(&pp.Port))
		sa.Port = int(p[0])<<8 + int(p[1])
		return sa
	case unix.AF_UNIX:
		pp := (*unix.RawSockaddrUnix)(unsafe.Pointer(rsa))
		const off = uint32(unsafe.Offsetof(pp.Path))
		if n <= off {
			return &unix.SockaddrUnix{}
		}
		plen := int(n - off)
		if plen > len(pp.Path) {
			plen = len(pp.Path)
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(&pp.Path[0])), plen)
		if b[0] == 0 {
			return &unix.SockaddrUnix{Name: "@" + string(b[1:])}
		}
		end := 0
		for end < plen && b[end] != 0 {
			end++
		}
		return &unix.SockaddrUnix{Name: string(b[:end])}
	}
	return nil
}

func sockaddrOf(fd int, peer bool) (unix.Sockaddr, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	trap := uintptr(unix.SYS_GETSOCKNAME)
	if peer {
		trap = unix.SYS_GETPEERNAME
	}
	_, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return nil, e
	}
	sa := parseSockaddr(&rsa, n)
	if sa == nil {
		return nil, unix.EAFNOSUPPORT
	}
	return sa, nil
}

// Getsockname returns fd's local address (an unnamed Unix socket is "").
func Getsockname(fd int) (unix.Sockaddr, error) { return sockaddrOf(fd, false) }

// Getpeername returns fd's remote address.
func Getpeername(fd int) (unix.Sockaddr, error) { return sockaddrOf(fd, true) }

// CreateUnixConnection connects to the Unix stream socket at path and returns
// a future whose result is the *Transport, set after proto.ConnectionMade ran.
func (l *Loop) CreateUnixConnection(path string, proto Protocol) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if proto == nil {
		return nil, ErrInvalid
	}
	sa, err := unixSockaddr(path)
	if err != nil {
		return nil, err
	}
	fut := l.NewFuture()
	fd, err := newStreamSocket(unix.AF_UNIX)
	if err != nil {
		fut.SetException(err)
		return fut, nil
	}
	for {
		err = unix.Connect(fd, sa)
		if err != unix.EINTR {
			break
		}
	}
	switch err {
	case nil:
		l.connected(fut, fd, proto)
	case unix.EINPROGRESS:
		// Not done by Linux for AF_UNIX, but allowed by POSIX.
		if err := l.newEyeballs(fut, proto).wait(fd, sa); err != nil {
			unix.Close(fd)
			fut.SetException(&OpError{Op: "connect", Addr: strconv.Quote(path), Err: err})
		}
	default:
		// ENOENT (no such socket), ECONNREFUSED (nobody listening),
		// EAGAIN (the listener's backlog is full, as libuv reports it).
		unix.Close(fd)
		fut.SetException(&OpError{Op: "connect", Addr: strconv.Quote(path), Err: err})
	}
	return fut, nil
}

// CreateUnixServer listens on the Unix stream socket path and returns a
// future whose result is the *Server. A socket file already at path is
// replaced (asyncio); any other file makes it fail with EADDRINUSE. Unless
// NoCleanup is set, the socket file is removed when the server closes, if it
// is still the one the server created (Python 3.13's cleanup_socket).
func (l *Loop) CreateUnixServer(path string, factory ConnectionFactory, opts *UnixServerOptions) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if factory == nil {
		return nil, ErrInvalid
	}
	sa, err := unixSockaddr(path)
	if err != nil {
		return nil, err
	}
	var o UnixServerOptions
	if opts != nil {
		o = *opts
	}
	if o.Backlog <= 0 {
		o.Backlog = 100
	}
	fut := l.NewFuture()
	removeStaleSocket(path)
	so := ServerOptions{Backlog: o.Backlog, NoReuseAddr: true, NoStart: o.NoStart, Tag: o.Tag}
	s, err := l.listen([]unix.Sockaddr{sa}, factory, &so, false)
	if err != nil {
		var oe *OpError
		if errors.As(err, &oe) && oe.Op == "bind" {
			oe.Addr = strconv.Quote(path)
			if Errno(err) == unix.EADDRINUSE {
				oe.Addr = "address " + strconv.Quote(path) + " is already in use"
			}
		}
		fut.SetException(err)
		return fut, nil
	}
	if !o.NoCleanup && !isAbstract(path) {
		var st unix.Stat_t
		if unix.Stat(path, &st) == nil {
			dev, ino := st.Dev, st.Ino
			s.onClose = func() {
				var now unix.Stat_t
				if unix.Stat(path, &now) == nil && now.Dev == dev && now.Ino == ino {
					unix.Unlink(path)
				}
			}
		}
	}
	fut.SetResult(s)
	return fut, nil
}

// ConnectAcceptedSocket wraps fd, an already connected stream socket (TCP or
// Unix), into a transport with proto (asyncio's connect_accepted_socket). The
// future's result is the *Transport, set after proto.ConnectionMade ran. On
// success (nil error) the transport owns fd, even if the future is later
// cancelled (fd is then closed); on an error fd is left to the caller.
func (l *Loop) ConnectAcceptedSocket(fd int, proto Protocol) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if proto == nil || fd < 0 {
		return nil, ErrInvalid
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, &OpError{Op: "connect_accepted_socket", Err: err}
	}
	if typ != unix.SOCK_STREAM {
		return nil, &OpError{Op: "connect_accepted_socket", Addr: "a stream socket was expected", Err: ErrInvalid}
	}
	if e := l.entry(fd, false); e != nil {
		return nil, &OpError{Op: "connect_accepted_socket", Addr: "fd is already watched by the loop", Err: unix.EBUSY}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, &OpError{Op: "connect_accepted_socket", Err: err}
	}
	fut := l.NewFuture()
	l.connected(fut, fd, proto) // TCP_NODELAY for TCP
	return fut, nil
}
