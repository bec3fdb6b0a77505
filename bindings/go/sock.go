package asyncloop

import (
	"context"
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket operations on a caller-owned, non-blocking socket (asyncio's
// loop.sock_*): fd is the socket's descriptor (syscall.RawConn.Control
// gives it for a net.Conn; unix.Socket with SOCK_NONBLOCK makes one). The
// system call is tried at once; when the socket is not ready the loop
// waits for readiness and retries. Operations on one fd run in order per
// direction. Cancelling the future (or ctx) removes the operation: it never
// touches the fd or the buffer again. A blocking socket fails with
// ALOOP_EINVAL, an fd that a transport, server or watcher of the loop uses
// with ALOOP_EBUSY. Do not close fd before the futures are done.

// Packet is a datagram received with SockRecvFrom / SockRecvFromInto.
type Packet struct {
	Data []byte   // the bytes (for SockRecvFromInto: the start of the buffer)
	Addr net.Addr // the sender (*net.UDPAddr, *net.UnixAddr), nil if unknown
}

// Accepted is a connection SockAccept accepted.
type Accepted struct {
	Fd   int      // a new non-blocking, close-on-exec socket: yours to close
	Addr net.Addr // the peer
}

// sockNetwork tells the net.Addr kind of fd's addresses.
func sockNetwork(fd int) string {
	domain := sockDomain(fd)
	typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	switch {
	case domain == unix.AF_UNIX && typ == unix.SOCK_DGRAM:
		return "unixgram"
	case domain == unix.AF_UNIX:
		return "unix"
	case typ == unix.SOCK_DGRAM:
		return "udp"
	}
	return "tcp"
}

func (l *Loop) sockOp(op string, fd int, addr net.Addr) (string, func(error) error) {
	network := sockNetwork(fd)
	return network, opWrapper(op, network, nil, addr)
}

func resultBytes(h uintptr) ([]byte, error) {
	var p unsafe.Pointer
	var n uintptr
	if _, err := do(func() int32 { return lib.futureResultBytes(h, &p, &n) }); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if n > 0 {
		copy(b, unsafe.Slice((*byte)(p), n))
	}
	lib.bufferFree(p)
	return b, nil
}

func resultAddr(network string, h uintptr) (net.Addr, error) {
	return addrOf(network, func(buf unsafe.Pointer, n uintptr, port *int32) int32 {
		return lib.futureResultAddr(h, buf, n, port)
	})
}

// SockRecv receives up to n bytes (asyncio's sock_recv; an empty result at
// EOF).
func (l *Loop) SockRecv(ctx context.Context, fd, n int) (*Future[[]byte], error) {
	if n < 0 {
		return nil, errInvalid("negative size")
	}
	_, wrap := l.sockOp("read", fd, nil)
	return newOpFuture(l, ctx, wrap, resultBytes, func(out *uintptr) int32 {
		return lib.sockRecv(l.handle(), int32(fd), uintptr(n), out)
	})
}

// SockRecvInto receives into buf (asyncio's sock_recv_into); the result is
// the number of bytes. buf must not be used until the future is done.
func (l *Loop) SockRecvInto(ctx context.Context, fd int, buf []byte) (*Future[int], error) {
	_, wrap := l.sockOp("read", fd, nil)
	p := bufPointer(buf)
	return newOpFutureInto(l, ctx, wrap, resultSize, buf, func(out *uintptr) int32 {
		return lib.sockRecvInto(l.handle(), int32(fd), p, uintptr(len(buf)), out)
	})
}

// bufPointer returns a non-nil pointer for buf (a 1-byte dummy when empty).
func bufPointer(buf []byte) unsafe.Pointer {
	if len(buf) == 0 {
		return unsafe.Pointer(new(byte))
	}
	return unsafe.Pointer(unsafe.SliceData(buf))
}

// SockRecvFrom receives one datagram of up to n bytes (asyncio's
// sock_recvfrom).
func (l *Loop) SockRecvFrom(ctx context.Context, fd, n int) (*Future[Packet], error) {
	if n < 0 {
		return nil, errInvalid("negative size")
	}
	network, wrap := l.sockOp("read", fd, nil)
	return newOpFuture(l, ctx, wrap, func(h uintptr) (Packet, error) {
		b, err := resultBytes(h)
		if err != nil {
			return Packet{}, err
		}
		a, _ := resultAddr(network, h)
		return Packet{Data: b, Addr: a}, nil
	}, func(out *uintptr) int32 {
		return lib.sockRecvfrom(l.handle(), int32(fd), uintptr(n), out)
	})
}

// SockRecvFromInto receives one datagram into buf (asyncio's
// sock_recvfrom_into); the result's Data is the part of buf it filled.
func (l *Loop) SockRecvFromInto(ctx context.Context, fd int, buf []byte) (*Future[Packet], error) {
	network, wrap := l.sockOp("read", fd, nil)
	p := bufPointer(buf)
	return newOpFutureInto(l, ctx, wrap, func(h uintptr) (Packet, error) {
		n, err := resultSize(h)
		if err != nil {
			return Packet{}, err
		}
		a, _ := resultAddr(network, h)
		return Packet{Data: buf[:n], Addr: a}, nil
	}, buf, func(out *uintptr) int32 {
		return lib.sockRecvfromInto(l.handle(), int32(fd), p, uintptr(len(buf)), out)
	})
}

// SockSendAll sends all of data (copied; asyncio's sock_sendall); the
// result is len(data). On failure part of it may have been sent.
func (l *Loop) SockSendAll(ctx context.Context, fd int, data []byte) (*Future[int], error) {
	_, wrap := l.sockOp("write", fd, nil)
	return newOpFuture(l, ctx, wrap, resultSize, func(out *uintptr) int32 {
		return lib.sockSendall(l.handle(), int32(fd), bufPointer(data), uintptr(len(data)), out)
	})
}

// SockSendTo sends one datagram (copied) to addr (asyncio's sock_sendto;
// an address with a host name is resolved first).
func (l *Loop) SockSendTo(ctx context.Context, fd int, data []byte, addr net.Addr) (*Future[int], error) {
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	_, wrap := l.sockOp("write", fd, addr)
	return newOpFuture(l, ctx, wrap, resultSize, func(out *uintptr) int32 {
		return lib.sockSendto(l.handle(), int32(fd), bufPointer(data), uintptr(len(data)), cString(host), int32(port), out)
	})
}

// SockConnect connects fd to host:port (asyncio's sock_connect; a name is
// resolved first without blocking the loop; for a Unix socket host is the
// path and port is ignored).
func (l *Loop) SockConnect(ctx context.Context, fd int, host string, port int) (*Future[struct{}], error) {
	network := sockNetwork(fd)
	wrap := opWrapper("dial", network, nil, makeAddr(network, host, port))
	return newOpFuture(l, ctx, wrap, resultNone, func(out *uintptr) int32 {
		return lib.sockConnect(l.handle(), int32(fd), cString(host), int32(port), out)
	})
}

// SockAccept accepts a connection on the listening socket fd (asyncio's
// sock_accept). The result's Fd is yours to close.
func (l *Loop) SockAccept(ctx context.Context, fd int) (*Future[Accepted], error) {
	network, wrap := l.sockOp("accept", fd, nil)
	return newOpFuture(l, ctx, wrap, func(h uintptr) (Accepted, error) {
		var nfd int32
		if _, err := do(func() int32 { return lib.futureResultFd(h, &nfd) }); err != nil {
			return Accepted{Fd: -1}, err
		}
		a, _ := resultAddr(network, h)
		return Accepted{Fd: int(nfd), Addr: a}, nil
	}, func(out *uintptr) int32 {
		return lib.sockAccept(l.handle(), int32(fd), out)
	})
}

// SockSendfile sends count bytes (0: to the end) of f from offset over the
// stream socket fd (asyncio's sock_sendfile): sendfile(2) for a regular
// file, else, with fallback, by reading the file; without fallback such a
// file fails with ENOSYS. f's offset ends at offset + bytes sent; the
// result is the number of bytes sent. f must stay open until the future is
// done.
func (l *Loop) SockSendfile(ctx context.Context, fd int, f *os.File, offset, count int64, fallback bool) (*Future[int64], error) {
	if f == nil {
		return nil, errInvalid("nil file")
	}
	_, wrap := l.sockOp("sendfile", fd, nil)
	fut, err := newOpFuture(l, ctx, wrap, resultInt64, func(out *uintptr) int32 {
		return lib.sockSendfile(l.handle(), int32(fd), int32(f.Fd()), offset, count, int32(b2i(fallback)), out)
	})
	if fut != nil {
		fut.st.keep = f
	}
	return fut, err
}

// AddrInfo is one result of GetAddrInfo (asyncio's (family, type, proto,
// canonname, sockaddr) tuple).
type AddrInfo struct {
	Family    int      // syscall.AF_INET, AF_INET6
	Type      int      // syscall.SOCK_STREAM, SOCK_DGRAM, SOCK_RAW
	Protocol  int      // syscall.IPPROTO_TCP, IPPROTO_UDP, 0
	Addr      net.Addr // *net.TCPAddr, *net.UDPAddr, or *net.IPAddr for raw sockets
	CanonName string   // on the first result with AI_CANONNAME, else ""
}

// GetAddrInfo resolves host and service (a port number or a service name)
// without blocking the loop (asyncio's getaddrinfo): numeric hosts at once,
// names in a library thread. family, sotype, proto and flags are the
// platform's values (syscall.AF_*, SOCK_*, IPPROTO_*, AI_* from
// golang.org/x/sys/unix), 0 for any. A failed lookup fails with a
// *net.DNSError (IsNotFound for an unknown name) whose Unwrap is the
// library's ALOOP_ERESOLVE.
func (l *Loop) GetAddrInfo(ctx context.Context, host, service string, family, sotype, proto, flags int) (*Future[[]AddrInfo], error) {
	return newOpFuture(l, ctx, dnsWrapper(host), resultAddrInfo, func(out *uintptr) int32 {
		return lib.getaddrinfo(l.handle(), cString(host), cString(service), int32(family), int32(sotype), int32(proto), int32(flags), out)
	})
}

func resultAddrInfo(h uintptr) ([]AddrInfo, error) {
	var list unsafe.Pointer
	var count uintptr
	if _, err := do(func() int32 { return lib.futureResultAddrinfo(h, &list, &count) }); err != nil {
		return nil, err
	}
	defer lib.addrinfoFree(list)
	out := make([]AddrInfo, 0, count)
	for ai := (*cAddrinfo)(list); ai != nil; ai = ai.next {
		host := goString(ai.host)
		network := "tcp"
		switch ai.type_ {
		case unix.SOCK_DGRAM:
			network = "udp"
		case unix.SOCK_RAW:
			network = "ip"
		}
		var addr net.Addr
		if network == "ip" {
			a := makeAddr("tcp", host, 0).(*net.TCPAddr)
			addr = &net.IPAddr{IP: a.IP, Zone: a.Zone}
		} else {
			addr = makeAddr(network, host, int(ai.port))
		}
		out = append(out, AddrInfo{
			Family: int(ai.family), Type: int(ai.type_), Protocol: int(ai.protocol),
			Addr: addr, CanonName: goString(ai.canonname),
		})
	}
	return out, nil
}

// NameInfo is the result of GetNameInfo.
type NameInfo struct {
	Host    string
	Service string
}

// GetNameInfo returns the host and service names of the numeric address
// host:port (asyncio's getnameinfo; flags are NI_* values).
func (l *Loop) GetNameInfo(ctx context.Context, host string, port, flags int) (*Future[NameInfo], error) {
	return newOpFuture(l, ctx, dnsWrapper(host), func(h uintptr) (NameInfo, error) {
		var hb [1025]byte
		var sb [64]byte
		if _, err := do(func() int32 {
			return lib.futureResultNameinfo(h, unsafe.Pointer(&hb[0]), uintptr(len(hb)), unsafe.Pointer(&sb[0]), uintptr(len(sb)))
		}); err != nil {
			return NameInfo{}, err
		}
		return NameInfo{Host: goString(&hb[0]), Service: goString(&sb[0])}, nil
	}, func(out *uintptr) int32 {
		return lib.getnameinfo(l.handle(), cString(host), int32(port), int32(flags), out)
	})
}
