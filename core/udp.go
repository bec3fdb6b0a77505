package core

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Datagram endpoints (create_datagram_endpoint): UDP over IPv4/IPv6 and Unix
// datagram sockets, with asyncio's _SelectorDatagramTransport semantics.

// DatagramProtocol is asyncio's DatagramProtocol. Every method runs on the
// loop thread.
type DatagramProtocol interface {
	ConnectionMade(t *DatagramTransport)
	// DatagramReceived: data is valid only during the call; addr is the
	// sender (it may be the same object for consecutive datagrams from the
	// same sender: do not modify it).
	DatagramReceived(t *DatagramTransport, data []byte, addr unix.Sockaddr)
	// ErrorReceived reports a send or receive error (e.g. ECONNREFUSED on
	// a connected UDP socket); the transport stays open.
	ErrorReceived(t *DatagramTransport, err error)
	ConnectionLost(t *DatagramTransport, err error)
	PauseWriting(t *DatagramTransport)
	ResumeWriting(t *DatagramTransport)
}

// BaseDatagramProtocol implements DatagramProtocol with no-ops, for embedding.
type BaseDatagramProtocol struct{}

func (BaseDatagramProtocol) ConnectionMade(*DatagramTransport)                          {}
func (BaseDatagramProtocol) DatagramReceived(*DatagramTransport, []byte, unix.Sockaddr) {}
func (BaseDatagramProtocol) ErrorReceived(*DatagramTransport, error)                    {}
func (BaseDatagramProtocol) ConnectionLost(*DatagramTransport, error)                   {}
func (BaseDatagramProtocol) PauseWriting(*DatagramTransport)                            {}
func (BaseDatagramProtocol) ResumeWriting(*DatagramTransport)                           {}

// DatagramAddr is a local or remote address: host (numeric or a name) and
// port, or for AF_UNIX the socket path in Host.
type DatagramAddr struct {
	Host string
	Port int
}

// DatagramOptions are the arguments of CreateDatagramEndpoint.
type DatagramOptions struct {
	// Family: 0 (from the addresses), AF_INET, AF_INET6 or AF_UNIX. It is
	// required when neither Local nor Remote is given.
	Family int
	// Local is bound (local_addr); Remote is connected (remote_addr), or
	// with AllowBroadcast only the default destination of SendTo.
	Local, Remote  *DatagramAddr
	ReusePort      bool // SO_REUSEPORT
	AllowBroadcast bool // SO_BROADCAST
	// HasSock: use Sock, an existing datagram socket (asyncio's sock=),
	// instead of creating one; Family, Local, Remote, ReusePort and
	// AllowBroadcast must be unset. A connected socket's peer becomes the
	// remote address. The transport owns Sock once the call succeeds.
	HasSock bool
	Sock    int
}

type dgram struct {
	data []byte
	addr unix.Sockaddr
}

// DatagramTransport is asyncio's DatagramTransport.
type DatagramTransport struct {
	claimed   bool // its holder has it (claim.go)
	loop      *Loop
	fd        int
	e         *fdEntry
	family    int
	proto     DatagramProtocol
	deferrer  datagramDeferrer // proto, if it may hold reads back
	heldPoll  uint64           // the last Poll that read or held it (EventQueue.hold)
	address   unix.Sockaddr    // remote_addr: the default (and only) destination
	connected bool             // connected socket: send() instead of sendto()

	wq       []dgram
	wqHead   int
	wsize    int // bytes of wq, plus overhead for each of its datagrams
	overhead int // SetWriteOverhead
	high     int
	low      int

	protoPaused   bool
	started       bool
	closing       bool
	lostScheduled bool
	lost          bool
	// connLost: asyncio's _conn_lost of a datagram transport: set by a
	// Close that found nothing buffered and by Abort (and fatal errors);
	// a connected endpoint takes no send after it (takesSends).
	connLost bool

	// The sender address of the last datagram, reused while it repeats.
	rsa     unix.RawSockaddrAny
	rlen    uint32 // rsa's length, for ReplyGate
	lastRaw [unix.SizeofSockaddrAny]byte
	lastLen uint32
	lastSa  unix.Sockaddr

	// gate is 0 while a host may reply to the sender itself (ReplyGate).
	gate uint32

	// The destination of the last queued send (SendQueued), parsed once
	// while it repeats.
	qRaw [unix.SizeofSockaddrAny]byte
	qLen uint32
	qSa  unix.Sockaddr
	mm   *mmsgScratch // SendQueuedBatch's
	rmm  *recvScratch // the event queue's recvmmsg (events.go)

	// Tag is free for the host (the C layer keeps its handle here).
	Tag any
	// OnRelease, if set, runs once after the transport is closed and
	// connection_lost (if due) has run.
	OnRelease func(t *DatagramTransport)
}

// maxDatagram is asyncio's max_size for datagram reads.
const maxDatagram = 256 * 1024

// CreateDatagramEndpoint creates a datagram socket and returns a future whose
// result is the *DatagramTransport, set after proto.ConnectionMade ran.
// Names in Local/Remote are resolved (on a goroutine when not numeric); the
// first family for which both addresses resolve and the socket can be set
// up is used, as asyncio does. For AF_UNIX, a socket file at the local path
// is replaced.
func (l *Loop) CreateDatagramEndpoint(proto DatagramProtocol, o *DatagramOptions) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if proto == nil || o == nil {
		return nil, ErrInvalid
	}
	opts := *o
	if opts.HasSock {
		return l.adoptDatagram(proto, &opts)
	}
	switch opts.Family {
	case 0, unix.AF_INET, unix.AF_INET6, unix.AF_UNIX:
	default:
		return nil, &OpError{Op: "create_datagram_endpoint", Addr: fmt.Sprintf("unsupported family %d", opts.Family), Err: ErrInvalid}
	}
	if opts.Family == unix.AF_UNIX {
		return l.createUnixDatagram(proto, &opts)
	}
	for _, a := range []*DatagramAddr{opts.Local, opts.Remote} {
		if a != nil && (a.Port < 0 || a.Port > 65535) {
			return nil, &OpError{Op: "create_datagram_endpoint", Addr: fmt.Sprintf("port %d out of range", a.Port), Err: ErrInvalid}
		}
	}
	fut := l.NewFuture()
	if opts.Local == nil && opts.Remote == nil {
		if opts.Family == 0 {
			return nil, &OpError{Op: "create_datagram_endpoint", Addr: "unexpected address family (give a family, a local or a remote address)", Err: ErrInvalid}
		}
		l.datagramSetup(fut, proto, &opts, [][2]unix.Sockaddr{{nil, nil}})
		return fut, nil
	}
	var locals []unix.Sockaddr
	resolveRemote := func() {
		if opts.Remote == nil {
			l.datagramPairs(fut, proto, &opts, locals, nil)
			return
		}
		l.resolve(opts.Remote.Host, opts.Remote.Port, false, func(addrs []unix.Sockaddr, err error) {
			if fut.Done() {
				return
			}
			if err != nil {
				fut.SetException(err)
				return
			}
			l.datagramPairs(fut, proto, &opts, locals, addrs)
		})
	}
	if opts.Local == nil {
		resolveRemote()
		return fut, nil
	}
	l.resolve(opts.Local.Host, opts.Local.Port, true, func(addrs []unix.Sockaddr, err error) {
		if fut.Done() {
			return
		}
		if err != nil {
			fut.SetException(err)
			return
		}
		locals = addrs
		resolveRemote()
	})
	return fut, nil
}

// datagramPairs joins the resolved addresses by family (in the order they
// came, local first) and keeps the families that have every requested side.
func (l *Loop) datagramPairs(fut *Future, proto DatagramProtocol, o *DatagramOptions, locals, remotes []unix.Sockaddr) {
	var order []int
	pairs := map[int]*[2]unix.Sockaddr{}
	add := func(idx int, addrs []unix.Sockaddr) {
		for _, sa := range addrs {
			fam := familyOf(sa)
			if o.Family != 0 && fam != o.Family {
				continue
			}
			p := pairs[fam]
			if p == nil {
				p = &[2]unix.Sockaddr{}
				pairs[fam] = p
				order = append(order, fam)
			}
			if p[idx] == nil {
				p[idx] = sa
			}
		}
	}
	add(0, locals)
	add(1, remotes)
	var list [][2]unix.Sockaddr
	for _, fam := range order {
		p := pairs[fam]
		if (o.Local != nil && p[0] == nil) || (o.Remote != nil && p[1] == nil) {
			continue
		}
		list = append(list, *p)
	}
	if len(list) == 0 {
		fut.SetException(&OpError{Op: "create_datagram_endpoint", Addr: "can not get address information", Err: ErrInvalid})
		return
	}
	l.datagramSetup(fut, proto, o, list)
}

// datagramSetup tries each (local, remote) pair until a socket is set up.
func (l *Loop) datagramSetup(fut *Future, proto DatagramProtocol, o *DatagramOptions, pairs [][2]unix.Sockaddr) {
	var first error
	for _, p := range pairs {
		fam := o.Family
		if p[0] != nil {
			fam = familyOf(p[0])
		} else if p[1] != nil {
			fam = familyOf(p[1])
		}
		fd, connected, err := datagramSocket(fam, p[0], p[1], o)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		l.startDatagram(fut, proto, fd, fam, p[1], connected)
		return
	}
	fut.SetException(first)
}

func datagramSocket(fam int, local, remote unix.Sockaddr, o *DatagramOptions) (fd int, connected bool, err error) {
	fd, err = unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, false, &OpError{Op: "socket", Err: err}
	}
	fail := func(e error) (int, bool, error) {
		unix.Close(fd)
		return -1, false, e
	}
	if o.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail(&OpError{Op: "setsockopt SO_REUSEPORT", Err: err})
		}
	}
	if o.AllowBroadcast {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return fail(&OpError{Op: "setsockopt SO_BROADCAST", Err: err})
		}
	}
	if local != nil {
		if err := unix.Bind(fd, local); err != nil {
			return fail(&OpError{Op: "bind", Addr: sockaddrDisplay(local), Err: err})
		}
	}
	if remote != nil && !o.AllowBroadcast {
		for {
			err = unix.Connect(fd, remote)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			return fail(&OpError{Op: "connect", Addr: sockaddrDisplay(remote), Err: err})
		}
		connected = true
	}
	return fd, connected, nil
}

func sockaddrDisplay(sa unix.Sockaddr) string {
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		return fmt.Sprintf("%q", u.Name)
	}
	return addrString(sa)
}

func (l *Loop) createUnixDatagram(proto DatagramProtocol, o *DatagramOptions) (*Future, error) {
	var local, remote unix.Sockaddr
	if o.Local != nil {
		sa, err := unixSockaddr(o.Local.Host)
		if err != nil {
			return nil, err
		}
		local = sa
	}
	if o.Remote != nil {
		sa, err := unixSockaddr(o.Remote.Host)
		if err != nil {
			return nil, err
		}
		remote = sa
	}
	fut := l.NewFuture()
	if o.Local != nil {
		removeStaleSocket(o.Local.Host)
	}
	l.datagramSetup(fut, proto, o, [][2]unix.Sockaddr{{local, remote}})
	return fut, nil
}

// adoptDatagram wraps the caller's datagram socket (asyncio's sock=).
func (l *Loop) adoptDatagram(proto DatagramProtocol, o *DatagramOptions) (*Future, error) {
	if o.Family != 0 || o.Local != nil || o.Remote != nil || o.ReusePort || o.AllowBroadcast {
		return nil, &OpError{Op: "create_datagram_endpoint", Addr: "family, addresses and socket options must not be given with a socket", Err: ErrInvalid}
	}
	if err := l.adoptSock(o.Sock, unix.SOCK_DGRAM); err != nil {
		return nil, err
	}
	fam, err := unix.GetsockoptInt(o.Sock, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return nil, &OpError{Op: "sock", Err: err}
	}
	var remote unix.Sockaddr
	if sa, err := unix.Getpeername(o.Sock); err == nil && sa != nil {
		if u, ok := sa.(*unix.SockaddrUnix); !ok || u.Name != "" {
			remote = sa
		}
	}
	fut := l.NewFuture()
	l.startDatagram(fut, proto, o.Sock, fam, remote, remote != nil)
	return fut, nil
}

// startDatagram wraps fd into a transport; connection_made runs with
// call_soon, then the future resolves (unless cancelled meanwhile).
func (l *Loop) startDatagram(fut *Future, proto DatagramProtocol, fd, fam int, remote unix.Sockaddr, connected bool) {
	t := &DatagramTransport{loop: l, fd: fd, family: fam, proto: proto, address: remote,
		connected: connected, high: DefaultWriteBufferHigh, low: DefaultWriteBufferLow}
	t.deferrer, _ = proto.(datagramDeferrer)
	e := l.claimEntry(fd)
	e.owner = t
	t.e = e
	l.objects++
	l.startThenResolve(fut, t)
}

// Loop returns the transport's loop.
func (t *DatagramTransport) Loop() *Loop { return t.loop }

// Fd is the socket (the transport owns it); -1 once closed.
func (t *DatagramTransport) Fd() int { return t.fd }

// Family is the socket's address family.
func (t *DatagramTransport) Family() int { return t.family }

// Protocol returns the current protocol.
func (t *DatagramTransport) Protocol() DatagramProtocol { return t.proto }

// SetProtocol switches the protocol.
func (t *DatagramTransport) SetProtocol(p DatagramProtocol) {
	t.proto = p
	t.deferrer, _ = p.(datagramDeferrer)
}

// datagramDeferrer is readDeferrer for datagram endpoints. A protocol that
// holds reads back may also take a datagram with its sender as the kernel
// gave it (a struct sockaddr of the socket's family; nil: none), before a
// unix.Sockaddr is made of it: false when it did not take it (then
// DatagramReceived follows).
type datagramDeferrer interface {
	datagramDeferred(*DatagramTransport) bool
	datagramReceivedRaw(t *DatagramTransport, data, raw []byte) bool
	// datagramRecvBatch reads the socket (an IP one) itself, several
	// datagrams a system call; false when it did not (onReadable reads).
	datagramRecvBatch(t *DatagramTransport) bool
}

// Address is the remote_addr given at creation (the default destination),
// or nil.
func (t *DatagramTransport) Address() unix.Sockaddr { return t.address }

// Sockname returns the local address.
func (t *DatagramTransport) Sockname() (unix.Sockaddr, error) {
	if t.fd < 0 {
		return nil, ErrClosed
	}
	return Getsockname(t.fd)
}

// Peername returns the connected remote address (ENOTCONN if the socket is
// not connected).
func (t *DatagramTransport) Peername() (unix.Sockaddr, error) {
	if t.fd < 0 {
		return nil, ErrClosed
	}
	return Getpeername(t.fd)
}

func (t *DatagramTransport) start() {
	if t.lost || t.lostScheduled {
		return
	}
	t.started = true
	t.guard("connection_made", func() { t.proto.ConnectionMade(t) })
	if !t.closing && !t.lost {
		t.e.reader = t.onReadable
		t.loop.update(t.e)
	}
}

func (t *DatagramTransport) guard(name string, fn func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
			t.fatal(fmt.Errorf("protocol.%s() call failed: panic: %v", name, r), "Fatal error: protocol."+name+"() call failed.")
		}
	}()
	fn()
	return true
}

func (t *DatagramTransport) fatal(err error, msg string) {
	if !isConnectionError(err) || t.loop.debug.Load() {
		t.loop.CallExceptionHandler(&ExceptionContext{Message: msg, Err: err, Datagram: t})
	}
	t.forceClose(err)
}

func (t *DatagramTransport) errorReceived(err error) {
	t.guard("error_received", func() { t.proto.ErrorReceived(t, err) })
}

func rawRecvfrom(fd int, b []byte, rsa *unix.RawSockaddrAny, n *uint32) (int, unix.Errno) {
	*n = unix.SizeofSockaddrAny
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		0, uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(n)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

func rawSendto(fd int, b []byte, to *unix.RawSockaddrAny, tolen uint32) unix.Errno {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	var top unsafe.Pointer
	if to != nil {
		top = unsafe.Pointer(to)
	}
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)),
		unix.MSG_NOSIGNAL, uintptr(top), uintptr(tolen))
	return e
}

// toRaw encodes sa for sendto.
func toRaw(sa unix.Sockaddr, rsa *unix.RawSockaddrAny) (uint32, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		*p = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Addr}
		pp := (*[2]byte)(unsafe.Pointer(&p.Port))
		pp[0], pp[1] = byte(a.Port>>8), byte(a.Port)
		return unix.SizeofSockaddrInet4, true
	case *unix.SockaddrInet6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		*p = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.Addr, Scope_id: a.ZoneId}
		pp := (*[2]byte)(unsafe.Pointer(&p.Port))
		pp[0], pp[1] = byte(a.Port>>8), byte(a.Port)
		return unix.SizeofSockaddrInet6, true
	case *unix.SockaddrUnix:
		p := (*unix.RawSockaddrUnix)(unsafe.Pointer(rsa))
		*p = unix.RawSockaddrUnix{Family: unix.AF_UNIX}
		name := a.Name
		if len(name) == 0 || len(name) >= len(p.Path) {
			return 0, false
		}
		for i := 0; i < len(name); i++ {
			p.Path[i] = int8(name[i])
		}
		n := uint32(unsafe.Offsetof(p.Path)) + uint32(len(name))
		if name[0] == '@' || name[0] == 0 {
			p.Path[0] = 0 // abstract: exact length, no NUL
		} else {
			n++
		}
		return n, true
	}
	return 0, false
}

const datagramBatch = 8 // datagrams read per readiness event at most

// senderRaw is addr as the kernel gave it (a struct sockaddr), for the
// event queue; the last sender's bytes are kept by senderAddr.
func (t *DatagramTransport) senderRaw(addr unix.Sockaddr) []byte {
	if addr == nil {
		return nil
	}
	if addr == t.lastSa {
		return t.lastRaw[:t.lastLen]
	}
	var rsa unix.RawSockaddrAny
	n, ok := toRaw(addr, &rsa)
	if !ok {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&rsa)), n)...)
}

// readHeld: a Poll held this endpoint back; the next one reads it first,
// if it still reads.
func (t *DatagramTransport) readHeld() {
	if t.fd >= 0 && !t.closing && !t.lostScheduled && t.e != nil && t.e.reader != nil {
		t.onReadable()
	}
}

func (t *DatagramTransport) onReadable() {
	if q := t.deferrer; q != nil && q.datagramDeferred(t) {
		return // the event queue is full: the next Poll reads (level-triggered)
	}
	if q := t.deferrer; q != nil && (t.family == unix.AF_INET || t.family == unix.AF_INET6) &&
		!t.closing && !t.lostScheduled && q.datagramRecvBatch(t) {
		return
	}
	buf := t.loop.readBuffer()
	if len(buf) > maxDatagram {
		buf = buf[:maxDatagram]
	}
	for i := 0; i < datagramBatch && !t.closing && !t.lostScheduled; i++ {
		var n uint32
		nr, errno := rawRecvfrom(t.fd, buf, &t.rsa, &n)
		switch {
		case errno == unix.EAGAIN:
			return
		case errno == unix.EINTR:
			continue
		case errno != 0:
			t.errorReceived(&OpError{Op: "recvfrom", Err: errno})
			return
		}
		t.rlen = n
		if q := t.deferrer; q != nil && n <= unix.SizeofSockaddrAny && (n > 0 || t.address == nil) {
			// A queued protocol inside Poll copies the sender's bytes into
			// its record: no unix.Sockaddr to make (peers that take turns
			// would make one per datagram).
			var raw []byte
			if n > 0 {
				raw = unsafe.Slice((*byte)(unsafe.Pointer(&t.rsa)), n)
			}
			if q.datagramReceivedRaw(t, buf[:nr], raw) {
				continue
			}
		}
		sa := t.senderAddr(n)
		if !t.guard("datagram_received", func() { t.proto.DatagramReceived(t, buf[:nr], sa) }) {
			return
		}
	}
}

// ReplyGate lets a host answer the datagram being delivered from its own
// code, during DatagramReceived, so that the reply costs no call into the
// library (capi: a C host's aloop_datagram_sendto to the sender it was
// given). When nothing is buffered and t is an open, unconnected IPv4 or
// IPv6 endpoint, it returns the socket, the sender's raw address and its
// length (valid until the callback returns), a gate word that reads 0, and
// ok; else ok is false. The transport sets the word to non-zero as soon as
// a direct send would differ from SendTo: a datagram it buffers, Close,
// Abort. While the word reads 0 the host may sendto(fd, ...,
// MSG_DONTWAIT|MSG_NOSIGNAL, sa, salen): a datagram the socket takes is what
// SendTo would have sent. When the send fails (EAGAIN included) nothing was
// sent: the host calls SendTo with the same datagram. Loop thread only.
func (t *DatagramTransport) ReplyGate() (fd int, sa *unix.RawSockaddrAny, salen uint32, gate *uint32, ok bool) {
	if t.closing || t.lost || t.lostScheduled || t.address != nil || t.wqHead != len(t.wq) ||
		t.rlen == 0 || (t.family != unix.AF_INET && t.family != unix.AF_INET6) {
		t.gate = 1
		return -1, nil, 0, nil, false
	}
	t.gate = 0
	return t.fd, &t.rsa, t.rlen, &t.gate, true
}

func (t *DatagramTransport) senderAddr(n uint32) unix.Sockaddr {
	if n > unix.SizeofSockaddrAny {
		n = unix.SizeofSockaddrAny
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&t.rsa)), n)
	if t.lastSa != nil && n == t.lastLen && string(raw) == string(t.lastRaw[:n]) {
		return t.lastSa
	}
	if n == 0 { // e.g. a connected socket on some kernels
		if t.address != nil {
			return t.address
		}
		return nil
	}
	sa := parseSockaddr(&t.rsa, n)
	copy(t.lastRaw[:], raw)
	t.lastLen = n
	t.lastSa = sa
	return sa
}

// ParseAddr builds a destination for SendTo on this transport from a
// numeric host and port (for AF_UNIX: the path, port ignored). An IPv4
// address on an IPv6 socket becomes IPv4-mapped.
func (t *DatagramTransport) ParseAddr(host string, port int) (unix.Sockaddr, error) {
	if t.family == unix.AF_UNIX {
		return unixSockaddr(host)
	}
	if port < 0 || port > 65535 {
		return nil, &OpError{Op: "sendto", Addr: fmt.Sprintf("port %d out of range", port), Err: ErrInvalid}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, &OpError{Op: "sendto", Addr: fmt.Sprintf("%q is not a numeric address", host), Err: ErrInvalid}
	}
	sa := sockaddrFromAddr(ip, port)
	return t.adapt(sa)
}

// adapt converts sa to the socket's family where possible.
func (t *DatagramTransport) adapt(sa unix.Sockaddr) (unix.Sockaddr, error) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if t.family == unix.AF_INET6 {
			return &unix.SockaddrInet6{Addr: netip.AddrFrom4(a.Addr).As16(), Port: a.Port}, nil
		}
		if t.family == unix.AF_INET {
			return sa, nil
		}
	case *unix.SockaddrInet6:
		if t.family == unix.AF_INET6 {
			return sa, nil
		}
		if t.family == unix.AF_INET {
			if ip := netip.AddrFrom16(a.Addr); ip.Is4In6() {
				return &unix.SockaddrInet4{Addr: ip.Unmap().As4(), Port: a.Port}, nil
			}
		}
	case *unix.SockaddrUnix:
		if t.family == unix.AF_UNIX {
			return sa, nil
		}
	}
	return nil, &OpError{Op: "sendto", Addr: "address family does not match the socket", Err: ErrInvalid}
}

func sameAddr(a, b unix.Sockaddr) bool {
	switch x := a.(type) {
	case *unix.SockaddrInet4:
		y, ok := b.(*unix.SockaddrInet4)
		return ok && x.Addr == y.Addr && x.Port == y.Port
	case *unix.SockaddrInet6:
		y, ok := b.(*unix.SockaddrInet6)
		return ok && x.Addr == y.Addr && x.Port == y.Port && x.ZoneId == y.ZoneId
	case *unix.SockaddrUnix:
		y, ok := b.(*unix.SockaddrUnix)
		norm := func(s string) string {
			if len(s) > 0 && s[0] == 0 {
				return "@" + s[1:]
			}
			return s
		}
		return ok && norm(x.Name) == norm(y.Name)
	}
	return false
}

func (t *DatagramTransport) sendNow(d dgram) unix.Errno {
	if t.connected {
		return rawSendto(t.fd, d.data, nil, 0)
	}
	var rsa unix.RawSockaddrAny
	n, ok := toRaw(d.addr, &rsa)
	if !ok {
		return unix.EINVAL
	}
	return rawSendto(t.fd, d.data, &rsa, n)
}

// takesSends reports whether a send is performed now: until
// connection_lost for an endpoint without a remote address; for a connected
// one, until Close found nothing buffered, or Abort (asyncio's _conn_lost).
func (t *DatagramTransport) takesSends() bool {
	if t.lost || t.fd < 0 {
		return false
	}
	return t.address == nil || !t.connLost
}

// SendTo sends one datagram to addr (nil: the remote address given at
// creation). It never blocks: when the socket would block, the datagram is
// copied into the write buffer and sent in order as the socket drains. A
// send error is reported to ErrorReceived (asyncio); an invalid argument is
// returned. Empty datagrams are sent (as Python >= 3.12 does).
//
// After Close (or Abort) the socket stays open until connection_lost, and
// as asyncio's datagram transport does, an endpoint without a remote
// address still sends until then; a connected one stops taking sends
// (ErrClosed) unless Close found datagrams still buffered, which go out
// first, followed by the sends made meanwhile (takesSends).
func (t *DatagramTransport) SendTo(data []byte, addr unix.Sockaddr) error {
	if !t.takesSends() {
		return ErrClosed
	}
	if t.address != nil {
		if addr != nil {
			a, err := t.adapt(addr)
			if err != nil || !sameAddr(a, t.address) {
				return &OpError{Op: "sendto", Addr: "invalid address: must be NULL or " + sockaddrDisplay(t.address), Err: ErrInvalid}
			}
		}
		addr = t.address
	} else {
		if addr == nil {
			return &OpError{Op: "sendto", Addr: "no destination address (the endpoint has no remote address)", Err: ErrInvalid}
		}
		a, err := t.adapt(addr)
		if err != nil {
			return err
		}
		addr = a
	}
	if t.wqHead == len(t.wq) {
		errno := t.sendNow(dgram{data, addr})
		switch errno {
		case 0:
			return nil
		case unix.EAGAIN, unix.EINTR:
			if t.lostScheduled {
				// The socket closes before it could drain: said, not
				// buffered and dropped with it.
				t.errorReceived(&OpError{Op: "sendto", Err: unix.EAGAIN})
				return nil
			}
			t.e.writer = t.onWritable
			t.loop.update(t.e)
		default:
			t.errorReceived(&OpError{Op: "sendto", Err: errno})
			return nil
		}
	}
	t.gate = 1 // what follows goes behind the buffered datagram
	buf := make([]byte, len(data))
	copy(buf, data)
	t.wq = append(t.wq, dgram{buf, addr})
	t.wsize += len(buf) + t.overhead
	t.maybePauseProtocol()
	return nil
}

// QueuedSendHeader is the size of the header of a queued send (SendQueued):
// the length of the destination address, a uint32 in the host's byte order.
const QueuedSendHeader = 4

// SplitQueuedSend splits the bytes of a queued send (the write queue's
// ALOOP_WRITE_SENDTO): a QueuedSendHeader giving the address length, that
// many bytes of struct sockaddr (none: the endpoint's remote address), then
// the datagram. ok is false when the bytes are not so framed.
func SplitQueuedSend(b []byte) (raw, data []byte, ok bool) {
	if len(b) < QueuedSendHeader {
		return nil, nil, false
	}
	n := binary.NativeEndian.Uint32(b)
	if n > unix.SizeofSockaddrAny || int(n) > len(b)-QueuedSendHeader {
		return nil, nil, false
	}
	end := QueuedSendHeader + int(n)
	return b[QueuedSendHeader:end:end], b[end:], true
}

// SendQueued performs a send the host queued (the bytes SplitQueuedSend
// takes apart), as SendTo does at the time it runs: a send error goes to
// ErrorReceived, a datagram the socket does not take is buffered. What
// SendTo would return goes to ErrorReceived too (an address that is not a
// valid struct sockaddr, or not the remote address of a connected
// endpoint: EINVAL; a malformed frame: EINVAL), as asyncio reports a send
// that fails after it was buffered; nothing is dropped silently. On a
// closed endpoint it does nothing (connection_lost said why).
func (t *DatagramTransport) SendQueued(b []byte) {
	if !t.takesSends() {
		return
	}
	raw, data, ok := SplitQueuedSend(b)
	if !ok {
		t.errorReceived(&OpError{Op: "sendto", Addr: "malformed queued send", Err: ErrInvalid})
		return
	}
	if len(raw) > 0 && t.address == nil && t.wqHead == len(t.wq) && rawIPOf(raw, t.family) {
		// The common case, an IP address of the socket's family while
		// nothing is buffered: the host's bytes go to the kernel as they
		// are (peers that take turns would parse one address per send).
		var p unsafe.Pointer
		if len(data) > 0 {
			p = unsafe.Pointer(&data[0])
		}
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(t.fd), uintptr(p), uintptr(len(data)),
			unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw)))
		switch errno {
		case 0:
			return
		case unix.EAGAIN, unix.EINTR: // SendTo tries again, then buffers it
		default:
			t.errorReceived(&OpError{Op: "sendto", Err: errno})
			return
		}
	}
	var sa unix.Sockaddr
	if len(raw) > 0 {
		if sa = t.queuedDest(raw); sa == nil {
			t.errorReceived(&OpError{Op: "sendto", Addr: "invalid struct sockaddr", Err: ErrInvalid})
			return
		}
	}
	if err := t.SendTo(data, sa); err != nil && err != ErrClosed {
		t.errorReceived(err)
	}
}

// maxMmsg is the number of queued sends one sendmmsg takes at most.
const maxMmsg = 32

// mmsgScratch is the memory of SendQueuedBatch's sendmmsg (per endpoint,
// made on first use).
type mmsgScratch struct {
	hdrs [maxMmsg]unix.Mmsghdr
	iovs [maxMmsg]unix.Iovec
}

// SendQueuedBatch performs queued sends in order, as SendQueued each: a
// run of sends to IP addresses of the socket's family, while nothing is
// buffered, goes to the kernel with one sendmmsg (several datagrams, one
// system call). A send the kernel does not take stops the run; SendQueued
// then performs it (it buffers it, or reports its error) and the rest
// follows.
func (t *DatagramTransport) SendQueuedBatch(frames [][]byte) {
	for i := 0; i < len(frames); {
		if !t.takesSends() {
			return
		}
		run := 0
		if t.address == nil && t.wqHead == len(t.wq) && len(frames)-i > 1 {
			if t.mm == nil {
				t.mm = &mmsgScratch{}
			}
			mm := t.mm
			for run < maxMmsg && i+run < len(frames) {
				raw, data, ok := SplitQueuedSend(frames[i+run])
				if !ok || !rawIPOf(raw, t.family) {
					break
				}
				h := &mm.hdrs[run]
				*h = unix.Mmsghdr{}
				h.Hdr.Name = &raw[0]
				h.Hdr.Namelen = uint32(len(raw))
				if len(data) > 0 {
					mm.iovs[run].Base = &data[0]
					mm.iovs[run].SetLen(len(data))
					h.Hdr.Iov = &mm.iovs[run]
					h.Hdr.SetIovlen(1)
				}
				run++
			}
			if run > 1 {
				r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(t.fd), uintptr(unsafe.Pointer(&mm.hdrs[0])),
					uintptr(run), unix.MSG_NOSIGNAL, 0, 0)
				sent := 0
				if errno == 0 {
					sent = int(r)
				}
				clear(mm.hdrs[:run]) // no pointers into the host's memory kept
				clear(mm.iovs[:run])
				i += sent
				if sent == run {
					continue
				}
			}
		}
		t.SendQueued(frames[i]) // one send (the one the kernel refused: its error)
		i++
	}
}

// rawIPOf reports whether raw is a whole struct sockaddr_in (family
// AF_INET) or sockaddr_in6 (AF_INET6) of the given family.
func rawIPOf(raw []byte, family int) bool {
	if len(raw) < 2 {
		return false
	}
	f := int(binary.NativeEndian.Uint16(raw))
	switch {
	case f != family:
		return false
	case f == unix.AF_INET:
		return len(raw) >= unix.SizeofSockaddrInet4
	case f == unix.AF_INET6:
		return len(raw) >= unix.SizeofSockaddrInet6
	}
	return false
}

// queuedDest parses a struct sockaddr of a queued send; the last one is kept
// while it repeats (a reply to the same peer parses nothing). nil when raw
// is not a whole IPv4, IPv6 or Unix address.
func (t *DatagramTransport) queuedDest(raw []byte) unix.Sockaddr {
	n := uint32(len(raw))
	if t.qSa != nil && n == t.qLen && string(raw) == string(t.qRaw[:n]) {
		return t.qSa
	}
	var rsa unix.RawSockaddrAny
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&rsa)), unix.SizeofSockaddrAny), raw)
	switch rsa.Addr.Family {
	case unix.AF_INET, unix.AF_INET6:
		if !rawIPOf(raw, int(rsa.Addr.Family)) {
			return nil
		}
	case unix.AF_UNIX:
		if n <= uint32(unsafe.Offsetof(rsa.Addr.Data)) {
			return nil
		}
	default:
		return nil
	}
	sa := parseSockaddr(&rsa, n)
	if sa == nil {
		return nil
	}
	copy(t.qRaw[:], raw)
	t.qLen = n
	t.qSa = sa
	return sa
}

func (t *DatagramTransport) maybePauseProtocol() {
	if t.protoPaused || t.wsize <= t.high {
		return
	}
	t.protoPaused = true
	t.guard("pause_writing", func() { t.proto.PauseWriting(t) })
}

func (t *DatagramTransport) maybeResumeProtocol() {
	if !t.protoPaused || t.wsize > t.low {
		return
	}
	t.protoPaused = false
	t.guard("resume_writing", func() { t.proto.ResumeWriting(t) })
}

func (t *DatagramTransport) popFront() dgram {
	d := t.wq[t.wqHead]
	t.wq[t.wqHead] = dgram{}
	t.wqHead++
	t.wsize -= len(d.data) + t.overhead
	if t.wqHead == len(t.wq) {
		t.wq = t.wq[:0]
		t.wqHead = 0
	}
	return d
}

func (t *DatagramTransport) onWritable() {
	for t.wqHead < len(t.wq) {
		errno := t.sendNow(t.wq[t.wqHead])
		if errno == unix.EAGAIN || errno == unix.EINTR {
			break
		}
		t.popFront()
		if errno != 0 {
			// As asyncio: report, drop the datagram, and carry on at the
			// next writable event.
			t.errorReceived(&OpError{Op: "sendto", Err: errno})
			return
		}
	}
	t.maybeResumeProtocol()
	if t.wqHead < len(t.wq) || t.lost || t.lostScheduled {
		return
	}
	t.e.writer = nil
	t.loop.update(t.e)
	if t.closing {
		t.scheduleLost(nil)
	}
}

// Close stops receiving, sends what is buffered, then closes;
// ConnectionLost(nil) follows. Idempotent.
func (t *DatagramTransport) Close() {
	if t.closing || t.lost {
		return
	}
	t.closing = true
	t.gate = 1
	if t.e.reader != nil {
		t.e.reader = nil
		t.loop.update(t.e)
	}
	if t.wqHead == len(t.wq) {
		t.connLost = true
		t.scheduleLost(nil)
	}
}

// Abort closes at once, dropping buffered datagrams.
func (t *DatagramTransport) Abort() { t.forceClose(nil) }

// IsClosing reports whether Close or Abort was called (or a fatal error
// happened).
func (t *DatagramTransport) IsClosing() bool { return t.closing }

// WriteBufferSize is the number of bytes of buffered, unsent datagrams
// (plus the overhead of each: SetWriteOverhead).
func (t *DatagramTransport) WriteBufferSize() int { return t.wsize }

// MaxWriteOverhead bounds SetWriteOverhead.
const MaxWriteOverhead = 1 << 16

// SetWriteOverhead makes each buffered datagram count n bytes more than its
// own in WriteBufferSize and against the water marks (default 0). asyncio
// on CPython 3.13 counts an 8-byte header per datagram it holds; a host
// that mirrors it sets 8. The datagrams buffered now are counted again.
func (t *DatagramTransport) SetWriteOverhead(n int) error {
	if n < 0 || n > MaxWriteOverhead {
		return ErrInvalid
	}
	t.wsize += (n - t.overhead) * (len(t.wq) - t.wqHead)
	t.overhead = n
	t.maybePauseProtocol()
	t.maybeResumeProtocol()
	return nil
}

// SetWriteBufferLimits sets the water marks, as Transport.SetWriteBufferLimits.
func (t *DatagramTransport) SetWriteBufferLimits(high, low int) error {
	if high < 0 || low < 0 || low > high {
		return ErrInvalid
	}
	t.high, t.low = high, low
	t.maybePauseProtocol()
	t.maybeResumeProtocol()
	return nil
}

// WriteBufferLimits returns the water marks.
func (t *DatagramTransport) WriteBufferLimits() (high, low int) { return t.high, t.low }

func (t *DatagramTransport) forceClose(err error) {
	if t.lost || t.lostScheduled {
		return
	}
	t.closing = true
	t.connLost = true
	t.gate = 1
	t.wq, t.wqHead, t.wsize = nil, 0, 0
	t.scheduleLost(err)
}

func (t *DatagramTransport) scheduleLost(err error) {
	if t.lostScheduled {
		return
	}
	t.lostScheduled = true
	t.e.reader, t.e.writer = nil, nil
	t.loop.update(t.e)
	if _, e := t.loop.CallSoon(func() { t.connectionLost(err) }, nil); e != nil {
		t.connectionLost(err)
	}
}

func (t *DatagramTransport) connectionLost(err error) {
	if t.lost {
		return
	}
	t.lost = true
	t.closing = true
	t.loop.forget(t.e)
	t.e.owner = nil
	if t.started {
		t.guard("connection_lost", func() { t.proto.ConnectionLost(t, err) })
	}
	if t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
	t.loop.objects--
	t.lastSa = nil
	t.qSa = nil
	if r := t.OnRelease; r != nil {
		t.OnRelease = nil
		r(t)
	}
}
