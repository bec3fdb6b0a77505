package core

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// ConnectOptions are the optional arguments of CreateConnection.
type ConnectOptions struct {
	LocalHost string // local_addr host ("" = none)
	LocalPort int
	// HappyEyeballsDelay > 0 enables Happy Eyeballs (RFC 8305): a new
	// connection attempt starts every HappyEyeballsDelay seconds while the
	// earlier ones are in progress (asyncio's happy_eyeballs_delay; 0.25 is
	// the RFC's value). <= 0: one address after another.
	HappyEyeballsDelay float64
	// Interleave reorders the addresses by family (asyncio's interleave):
	// 0 = default (1 with Happy Eyeballs, else no reordering), > 0 = that
	// many addresses of the first family first, < 0 = no reordering.
	Interleave int
	Family     int // AF_UNSPEC, AF_INET or AF_INET6: restricts resolution
	Flags      int // getaddrinfo AI_* flags
	// HasSock: wrap Sock, an already connected stream socket (asyncio's
	// sock=), instead of connecting; host must be "" and port 0. The
	// transport owns the socket from then on.
	HasSock bool
	Sock    int
	// TLS runs a TLS handshake on the connection (asyncio's ssl=); the
	// future resolves, and the protocol's ConnectionMade runs, after it.
	// TLS.ServerHostname defaults to host.
	TLS *TLSOptions
}

func newStreamSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, &OpError{Op: "socket", Err: err}
	}
	return fd, nil
}

func setNoDelay(fd int) {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}

// CreateConnection connects to host:port and returns a future whose result
// is the *Transport, set after proto.ConnectionMade ran. Every resolved
// address is tried (see ConnectOptions for Happy Eyeballs); the error of a
// failed connection names every attempt.
func (l *Loop) CreateConnection(host string, port int, proto Protocol, opts *ConnectOptions) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if proto == nil || port < 0 || port > 65535 {
		return nil, ErrInvalid
	}
	var o ConnectOptions
	if opts != nil {
		o = *opts
	}
	if o.TLS != nil {
		return l.createConnectionTLS(host, port, proto, o)
	}
	if o.HasSock {
		if host != "" || port != 0 || o.LocalHost != "" {
			return nil, &OpError{Op: "create_connection", Addr: "host, port and local address must not be given with a socket", Err: ErrInvalid}
		}
		if err := l.adoptSock(o.Sock, unix.SOCK_STREAM); err != nil {
			return nil, err
		}
		fut := l.NewFuture()
		l.connected(fut, o.Sock, proto)
		return fut, nil
	}
	var local unix.Sockaddr
	if o.LocalHost != "" {
		addrs, ok := numericAddrs(o.LocalHost, o.LocalPort, true)
		if !ok {
			return nil, &OpError{Op: "bind", Addr: o.LocalHost, Err: ErrInvalid}
		}
		local = addrs[0]
	}
	if err := gaiCheck(o.Family, o.Flags); err != nil {
		return nil, &OpError{Op: "create_connection", Err: ErrInvalid, Addr: err.Error()}
	}
	interleave := o.Interleave
	if interleave == 0 && o.HappyEyeballsDelay > 0 {
		interleave = 1
	}
	fut := l.NewFuture()
	// host "" is getaddrinfo's NULL host: the loopback addresses.
	l.lookup(host, itoa(port), o.Family, unix.SOCK_STREAM, 0, o.Flags, func(res []AddrInfo, err error) {
		if fut.Done() {
			return
		}
		if err != nil {
			fut.SetException(err)
			return
		}
		addrs := make([]unix.Sockaddr, 0, len(res))
		for _, ai := range res {
			addrs = append(addrs, ai.Addr)
		}
		if interleave > 0 {
			addrs = interleaveAddrs(addrs, interleave)
		}
		l.connectAddrs(fut, addrs, local, proto, o.HappyEyeballsDelay)
	}, fut)
	return fut, nil
}

// adoptSock prepares a caller's socket for a transport or server: it must be
// a socket of the given type that the loop does not use yet; it is made
// non-blocking.
func (l *Loop) adoptSock(fd, typ int) error {
	if fd < 0 {
		return &OpError{Op: "sock", Err: unix.EBADF}
	}
	if e := l.entry(fd, false); e != nil && (e.owner != nil || e.watchers > 0) {
		return &OpError{Op: "sock", Addr: "fd is already used by the loop", Err: unix.EBUSY}
	}
	st, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return &OpError{Op: "sock", Err: err}
	}
	if st != typ {
		return &OpError{Op: "sock", Addr: "a socket of another type", Err: ErrInvalid}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return &OpError{Op: "sock", Err: err}
	}
	return nil
}

// combinedConnectError is the error of a connection attempt over several
// addresses (asyncio's create_connection): the only error, the common one
// when all are alike, else one naming every attempt that keeps the errno of
// the last attempt so callers can still match it. errs is not empty.
func combinedConnectError(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	first := errs[0].Error()
	same := true
	for _, e := range errs[1:] {
		if e.Error() != first {
			same = false
		}
	}
	if same {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &OpError{Op: "connect", Addr: "multiple exceptions: " + strings.Join(msgs, ", "), Err: errors.Unwrap(errs[len(errs)-1])}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
