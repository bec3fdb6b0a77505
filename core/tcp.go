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
// is the *Transport, set after proto.ConnectionMade ran.
func (l *Loop) CreateConnection(host string, port int, proto Protocol, opts *ConnectOptions) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if proto == nil || port < 0 || port > 65535 {
		return nil, ErrInvalid
	}
	fut := l.NewFuture()
	var local unix.Sockaddr
	if opts != nil && opts.LocalHost != "" {
		addrs, ok := numericAddrs(opts.LocalHost, opts.LocalPort, true)
		if !ok {
			return nil, &OpError{Op: "bind", Addr: opts.LocalHost, Err: ErrInvalid}
		}
		local = addrs[0]
	}
	l.resolve(host, port, false, func(addrs []unix.Sockaddr, err error) {
		if fut.Done() {
			return
		}
		if err != nil {
			fut.SetException(err)
			return
		}
		if len(addrs) == 0 {
			fut.SetException(&OpError{Op: "getaddrinfo", Addr: host, Err: ErrResolve})
			return
		}
		c := &connector{loop: l, fut: fut, addrs: addrs, local: local, proto: proto}
		c.next()
	})
	return fut, nil
}

// connector tries addresses one after another.
type connector struct {
	loop  *Loop
	fut   *Future
	addrs []unix.Sockaddr
	local unix.Sockaddr
	proto Protocol
	errs  []error
	fd    int
	e     *fdEntry
}

func (c *connector) next() {
	l := c.loop
	for len(c.addrs) > 0 {
		if c.fut.Done() { // cancelled
			return
		}
		sa := c.addrs[0]
		c.addrs = c.addrs[1:]
		if c.local != nil && familyOf(c.local) != familyOf(sa) {
			continue
		}
		fd, err := newStreamSocket(familyOf(sa))
		if err != nil {
			c.errs = append(c.errs, err)
			continue
		}
		if c.local != nil {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if err := unix.Bind(fd, c.local); err != nil {
				unix.Close(fd)
				h, p := SockaddrString(c.local)
				c.errs = append(c.errs, &OpError{Op: "bind", Addr: h + ":" + itoa(p), Err: err})
				continue
			}
		}
		err = unix.Connect(fd, sa)
		if err == nil {
			c.connected(fd)
			return
		}
		if err != unix.EINPROGRESS && err != unix.EINTR {
			unix.Close(fd)
			c.errs = append(c.errs, &OpError{Op: "connect", Addr: addrString(sa), Err: err})
			continue
		}
		// Wait for the connection to complete.
		c.fd = fd
		c.e = l.entry(fd, true)
		c.e.owner = c
		l.objects++
		target := sa
		c.e.writer = func() { c.onWritable(target) }
		if err := l.update(c.e); err != nil {
			l.forget(c.e)
			l.objects--
			unix.Close(fd)
			c.errs = append(c.errs, &OpError{Op: "connect", Err: err})
			continue
		}
		return
	}
	if !c.fut.Done() {
		c.fut.SetException(c.combinedError())
	}
}

func (c *connector) combinedError() error {
	if len(c.errs) == 0 {
		return &OpError{Op: "connect", Err: unix.EHOSTUNREACH}
	}
	if len(c.errs) == 1 {
		return c.errs[0]
	}
	first := c.errs[0].Error()
	same := true
	for _, e := range c.errs[1:] {
		if e.Error() != first {
			same = false
		}
	}
	if same {
		return c.errs[0]
	}
	msgs := make([]string, len(c.errs))
	for i, e := range c.errs {
		msgs[i] = e.Error()
	}
	// Keep the errno of the last attempt so callers can still match it.
	return &OpError{Op: "connect", Addr: "multiple exceptions: " + strings.Join(msgs, ", "), Err: errors.Unwrap(c.errs[len(c.errs)-1])}
}

func (c *connector) onWritable(sa unix.Sockaddr) {
	l := c.loop
	fd := c.fd
	l.forget(c.e)
	c.e.owner = nil
	l.objects--
	if c.fut.Done() { // cancelled while connecting
		unix.Close(fd)
		return
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = unix.Errno(soerr)
	}
	if err != nil {
		unix.Close(fd)
		c.errs = append(c.errs, &OpError{Op: "connect", Addr: addrString(sa), Err: err})
		c.next()
		return
	}
	c.connected(fd)
}

func (c *connector) connected(fd int) {
	l := c.loop
	setNoDelay(fd)
	t := l.newTransport(fd)
	t.SetProtocol(c.proto)
	fut := c.fut
	l.CallSoon(func() {
		if fut.Done() { // cancelled meanwhile: never connected for the caller
			t.forceClose(nil)
			return
		}
		t.start()
		if t.lostScheduled && !t.started {
			return
		}
		fut.SetResult(t)
	}, nil)
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
