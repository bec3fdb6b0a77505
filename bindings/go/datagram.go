package asyncloop

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DatagramTransport is a datagram endpoint: UDP or a Unix datagram socket
// (asyncio.DatagramTransport). Its methods must be called on the loop's
// thread; after ConnectionLost it is stale.
type DatagramTransport struct {
	h       uintptr
	loop    *Loop
	conn    *dgramConn
	lost    atomic.Bool
	network string // "udp" or "unixgram"
	local   net.Addr
	remote  net.Addr

	// A reply to a recent sender of a queued endpoint goes straight to
	// the socket (sendReply) unless one of these says the library's
	// SendTo could act otherwise. Loop thread only.
	fd       int  // the socket, once asked for (0: not yet)
	noDirect bool // connected, not UDP, or given as a socket
	closing  bool // Close or Abort was called
	viaLib   bool // a datagram went through the library since the last check that its buffer is empty
}

// dgramConn is the userdata of a datagram protocol registration.
type dgramConn struct {
	loop      *Loop
	proto     DatagramProtocol
	transport *DatagramTransport
	// The recent senders: the same net.Addr for a sender that comes back
	// (no allocation per datagram from a steady set of peers), and, for
	// SendTo to one of them (a reply), the numeric host the library gave
	// (no formatting or copy per reply). Loop thread only.
	peers  map[string]*peer       // by host "\x00" port
	byAddr map[*net.UDPAddr]*peer // the same peers, by address
	key    []byte                 // scratch for the peers key
}

// peer is a recent sender.
type peer struct {
	addr net.Addr
	udp  *net.UDPAddr // addr, when it is one
	ip   net.IP       // a copy of udp's IP and zone as they were made, to
	zone string       // notice an address changed by its user
	host []byte       // NUL-terminated numeric host, as the library gave it
	port int
	raw  []byte // the struct sockaddr the kernel gave (queued endpoints)
}

// maxPeers bounds the senders remembered per endpoint; when full, they
// are forgotten and the cache starts again.
const maxPeers = 256

func (c *dgramConn) owner() *Loop { return c.loop }

func (c *dgramConn) senderAddr(host *byte, port int) net.Addr {
	if host == nil {
		return nil
	}
	h := unsafe.Slice(host, cStrlen(host))
	c.key = strconv.AppendInt(append(append(c.key[:0], h...), 0), int64(port), 10)
	if p := c.peers[string(c.key)]; p != nil {
		if p.intact() {
			return p.addr
		}
		delete(c.byAddr, p.udp) // changed by its user: make a new one
	}
	return c.remember(string(c.key), string(h), port).addr
}

// remember makes the address of a new sender (host, port) and keeps it
// under key.
func (c *dgramConn) remember(key, h string, port int) *peer {
	if c.peers == nil || len(c.peers) >= maxPeers {
		c.peers = make(map[string]*peer)
		c.byAddr = make(map[*net.UDPAddr]*peer)
	}
	p := &peer{addr: makeAddr(c.transport.network, h, port), port: port}
	p.host = append(append(make([]byte, 0, len(h)+1), h...), 0)
	if u, ok := p.addr.(*net.UDPAddr); ok {
		p.udp, p.ip, p.zone = u, append(net.IP(nil), u.IP...), u.Zone
		c.byAddr[u] = p
	}
	c.peers[key] = p
	return p
}

// intact reports whether the user left the address as it was made.
func (p *peer) intact() bool {
	u := p.udp
	return u == nil || (u.Port == p.port && u.Zone == p.zone && bytes.Equal(u.IP, p.ip))
}

// replyHost returns the library's host string and the port for an address
// that is one of the recent senders, unchanged (nil otherwise).
func (c *dgramConn) replyHost(addr net.Addr) (*byte, int, []byte) {
	u, ok := addr.(*net.UDPAddr)
	if !ok || u == nil {
		return nil, 0, nil
	}
	p := c.byAddr[u]
	if p == nil || !p.intact() {
		return nil, 0, nil
	}
	return &p.host[0], p.port, p.raw
}

// sendReply sends a datagram to a recent sender of a queued endpoint
// (raw: its address as the kernel gave it) with one sendto from here, as
// the library's aloop_datagram_sendto does from C for a reply inside
// datagram_received (capi/dgsend.c): only while the library's SendTo
// would send it at once in the same way (an open, unconnected UDP
// endpoint with nothing buffered; not in debug mode, where the library
// checks the thread). It reports false when the library must send it
// (a failed sendto, EAGAIN included, sent nothing).
func (t *DatagramTransport) sendReply(data []byte, raw []byte) bool {
	if t.noDirect || t.closing || t.lost.Load() || t.loop.debug.Load() || len(data) > 65507 {
		return false
	}
	if t.viaLib {
		// What went through the library may wait in its buffer.
		if n, err := t.WriteBufferSize(); err != nil || n > 0 {
			return false
		}
		t.viaLib = false
	}
	if t.fd <= 0 {
		fd, err := t.Fd()
		if err != nil || fd <= 0 {
			t.noDirect = true
			return false
		}
		t.fd = fd
	}
	return sendtoRaw(t.fd, data, raw)
}

// CreateDatagramEndpoint creates a datagram endpoint with protocol p
// (asyncio's create_datagram_endpoint). WithLocalAddr binds it ("" is the
// wildcard address), WithRemoteAddr connects it (or, with
// WithAllowBroadcast, makes it the default destination); hosts may be
// names. WithFamily(syscall.AF_UNIX) makes the addresses socket paths; an
// endpoint without any address needs WithFamily. The future resolves to
// the *DatagramTransport after p.ConnectionMade.
//
// Options: WithLocalAddr, WithRemoteAddr, WithFamily, WithReusePort,
// WithAllowBroadcast, WithSocket (an existing datagram socket; the endpoint
// uses a duplicate of its descriptor).
func (l *Loop) CreateDatagramEndpoint(ctx context.Context, p DatagramProtocol, opts ...Option) (*Future[*DatagramTransport], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errInvalid("nil protocol")
	}
	o, err := collect(opts, optLocalAddr|optRemoteAddr|optFamily|optReusePort|optBroadcast|optSocket, "CreateDatagramEndpoint")
	if err != nil {
		return nil, err
	}
	dopt := cDatagramOptions{
		size:           unsafe.Sizeof(cDatagramOptions{}),
		family:         int32(o.family),
		reusePort:      b2i(o.reusePort),
		allowBroadcast: b2i(o.broadcast),
	}
	network := "udp"
	if o.family == syscall.AF_UNIX {
		network = "unixgram"
	}
	if o.sock != nil {
		fd, err := dupConn(o.sock)
		if err != nil {
			return nil, err
		}
		dopt.hasSock, dopt.sock = 1, int32(fd)
		if sa, err := unix.Getsockname(fd); err == nil {
			if _, ok := sa.(*unix.SockaddrUnix); ok {
				network = "unixgram"
			}
		}
	}
	var local, remote net.Addr
	if o.localHost != nil {
		local = makeAddr(network, *o.localHost, o.localPort)
	}
	if o.remoteHost != nil {
		remote = makeAddr(network, *o.remoteHost, o.remotePort)
	}
	c := &dgramConn{loop: l, proto: p}
	c.transport = &DatagramTransport{loop: l, conn: c, network: network,
		noDirect: network != "udp" || o.remoteHost != nil || o.sock != nil}
	key := reg.add(c)
	get := func(h uintptr) (*DatagramTransport, error) {
		var dh uintptr
		if _, err := do(func() int32 { return lib.futureResultDatagram(h, &dh) }); err != nil {
			return nil, err
		}
		if c.transport.h == 0 {
			c.transport.h = dh
			l.datagrams[dh] = c.transport
		}
		return c.transport, nil
	}
	lh, rh := cStringOrNil(o.localHost), cStringOrNil(o.remoteHost)
	f, err := newOpFuture(l, ctx, opWrapper("listen", network, local, remote), get, func(out *uintptr) int32 {
		return lib.createDatagramEndpoint(l.handle(), lh, int32(o.localPort), rh, int32(o.remotePort),
			l.datagramProto(), key, cb.free, unsafe.Pointer(&dopt), out)
	})
	runtime.KeepAlive(&dopt)
	if err != nil && dopt.hasSock != 0 {
		unix.Close(int(dopt.sock))
	}
	return f, err
}

func (t *DatagramTransport) handle() uintptr {
	if t == nil {
		return 0
	}
	return t.h
}

func (t *DatagramTransport) call(f func(uintptr) int32) (int32, error) {
	if lib == nil {
		return 0, ErrBadHandle
	}
	return do(func() int32 { return f(t.handle()) })
}

func (t *DatagramTransport) wrapErr(op string, err error) error {
	if err == nil || t == nil {
		return err
	}
	return &net.OpError{Op: op, Net: t.network, Source: t.local, Addr: t.remote, Err: err}
}

// Loop returns the endpoint's loop.
func (t *DatagramTransport) Loop() *Loop {
	if t == nil {
		return nil
	}
	return t.loop
}

// Protocol returns the endpoint's protocol.
func (t *DatagramTransport) Protocol() DatagramProtocol {
	if t == nil || t.conn == nil {
		return nil
	}
	return t.conn.proto
}

// SendTo sends one datagram (copied; may be empty) to addr, or to the
// endpoint's remote address when addr is nil (asyncio's sendto). It never
// blocks: when the socket would block the datagram is queued. Send errors
// go to ErrorReceived; SendTo itself fails for a bad address or a closed
// endpoint. As asyncio's: until ConnectionLost, an endpoint without a
// remote address still sends after Close or Abort; a connected one fails
// from Close on (unless Close found datagrams buffered).
func (t *DatagramTransport) SendTo(data []byte, addr net.Addr) error {
	if lib == nil || t == nil {
		return ErrBadHandle
	}
	var host *byte
	port := 0
	if addr != nil {
		// A reply to a recent sender reuses the host the library gave.
		var raw []byte
		if host, port, raw = t.conn.replyHost(addr); raw != nil && t.sendReply(data, raw) {
			return nil
		}
		t.viaLib = true
		if host == nil {
			h, p, err := splitAddr(addr)
			if err != nil {
				return err
			}
			host, port = cString(h), p
		}
	}
	runtime.LockOSThread()
	rc := rawDatagramSendto(t.handle(), unsafe.Pointer(unsafe.SliceData(data)), uintptr(len(data)), host, int32(port))
	var err error
	if rc < 0 {
		err = lib.errorOf(rc)
	}
	runtime.UnlockOSThread()
	runtime.KeepAlive(data)
	runtime.KeepAlive(host)
	if err != nil {
		return &net.OpError{Op: "write", Net: t.network, Source: t.local, Addr: addr, Err: err}
	}
	return nil
}

// Send sends one datagram to the endpoint's remote address.
func (t *DatagramTransport) Send(data []byte) error { return t.SendTo(data, nil) }

// Close stops receiving, sends what is queued, then closes;
// ConnectionLost(nil) follows. Idempotent.
func (t *DatagramTransport) Close() error {
	if lib == nil {
		return ErrBadHandle
	}
	if t != nil {
		t.closing = true
	}
	_, err := t.call(lib.datagramClose)
	return err
}

// Abort closes at once, dropping queued datagrams.
func (t *DatagramTransport) Abort() error {
	if lib == nil {
		return ErrBadHandle
	}
	if t != nil {
		t.closing = true
	}
	_, err := t.call(lib.datagramAbort)
	return err
}

// IsClosing reports whether the endpoint is closing or closed.
func (t *DatagramTransport) IsClosing() bool {
	if lib == nil {
		return true
	}
	rc, err := t.call(lib.datagramIsClosing)
	return err != nil || rc > 0
}

// SetProtocol replaces the endpoint's protocol.
func (t *DatagramTransport) SetProtocol(p DatagramProtocol) error {
	if lib == nil {
		return ErrBadHandle
	}
	if p == nil {
		return errInvalid("nil protocol")
	}
	c := &dgramConn{loop: t.loop, proto: p, transport: t}
	key := reg.add(c)
	_, err := t.call(func(h uintptr) int32 {
		return lib.datagramSetProtocol(h, t.loop.datagramProto(), key, cb.free)
	})
	if err == nil {
		t.conn = c
	}
	return err
}

// WriteBufferSize returns the bytes of queued datagrams.
func (t *DatagramTransport) WriteBufferSize() (int, error) {
	var n uintptr
	if lib == nil {
		return 0, ErrBadHandle
	}
	_, err := t.call(func(h uintptr) int32 { return lib.datagramGetWriteBufferSize(h, &n) })
	return int(n), err
}

// SetWriteBufferLimits sets the water marks of the send queue.
func (t *DatagramTransport) SetWriteBufferLimits(high, low int) error {
	if lib == nil {
		return ErrBadHandle
	}
	if high < 0 || low < 0 {
		return errInvalid("negative write buffer limit")
	}
	_, err := t.call(func(h uintptr) int32 { return lib.datagramSetWriteBufferLimits(h, uintptr(high), uintptr(low)) })
	return err
}

// WriteBufferLimits returns the water marks of the send queue.
func (t *DatagramTransport) WriteBufferLimits() (high, low int, err error) {
	if lib == nil {
		return 0, 0, ErrBadHandle
	}
	var hi, lo uintptr
	_, err = t.call(func(h uintptr) int32 { return lib.datagramGetWriteBufferLimits(h, &hi, &lo) })
	return int(hi), int(lo), err
}

// Fd returns the socket's descriptor (owned by the endpoint).
func (t *DatagramTransport) Fd() (int, error) {
	if lib == nil {
		return -1, ErrBadHandle
	}
	rc, err := t.call(lib.datagramGetFd)
	if err != nil {
		return -1, err
	}
	return int(rc), nil
}

// LocalAddr returns the bound address (a *net.UDPAddr or *net.UnixAddr).
func (t *DatagramTransport) LocalAddr() net.Addr {
	if t == nil || lib == nil {
		return nil
	}
	if t.local == nil || t.localUnresolved() {
		if a, err := addrOf(t.network, func(buf unsafe.Pointer, n uintptr, p *int32) int32 {
			return lib.datagramGetSockname(t.handle(), buf, n, p)
		}); err == nil {
			t.local = a
		}
	}
	return t.local
}

func (t *DatagramTransport) localUnresolved() bool {
	_, ok := t.local.(*hostAddr)
	if a, isUDP := t.local.(*net.UDPAddr); isUDP && a.Port == 0 {
		return true
	}
	return ok
}

// RemoteAddr returns the connected peer's address, or nil if the endpoint
// is not connected.
func (t *DatagramTransport) RemoteAddr() net.Addr {
	if t == nil || lib == nil {
		return nil
	}
	if _, unresolved := t.remote.(*hostAddr); t.remote == nil || unresolved {
		if a, err := addrOf(t.network, func(buf unsafe.Pointer, n uintptr, p *int32) int32 {
			return lib.datagramGetPeername(t.handle(), buf, n, p)
		}); err == nil {
			t.remote = a
		}
	}
	if _, unresolved := t.remote.(*hostAddr); unresolved {
		return nil
	}
	return t.remote
}
