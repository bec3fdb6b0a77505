package core

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The sock_* operations (asyncio's loop.sock_recv, sock_sendall, ...) on
// caller-owned non-blocking sockets.
//
// Each operation first tries its system call at once; when the socket is not
// ready (EAGAIN) it waits for readiness on the loop and retries. Operations
// on one fd run in FIFO order per direction: a sock_recv issued while
// another read operation waits on the same fd queues behind it (asyncio
// would let the later call steal data or replace the earlier watcher), and
// a sock_sendall never interleaves its bytes with an earlier one.
// Cancelling the returned future removes the operation (and the fd's
// watcher when nothing else waits on it); a cancelled or finished operation
// never touches the socket or the caller's buffer again.
//
// The fd must be non-blocking (ErrInvalid otherwise, asyncio's ValueError)
// and must not be used by a transport, a server or an AddReader/AddWriter
// watcher (EBUSY). The caller keeps owning the fd; it must not close it
// while an operation on it is pending.

// Received is the result of SockRecvfrom (Data set) and SockRecvfromInto
// (Data nil). Addr is the sender, nil when the socket reports none (e.g. a
// connected stream socket).
type Received struct {
	Data []byte
	N    int
	Addr unix.Sockaddr
}

// Accepted is the result of SockAccept: a new non-blocking, close-on-exec
// socket that the caller owns, and the peer's address.
type Accepted struct {
	Fd   int
	Addr unix.Sockaddr
}

// Largest buffers SockRecv/SockRecvfrom allocate: a stream read may always
// return fewer bytes than asked; a datagram larger than this is truncated.
const (
	sockRecvStreamMax = 1 << 20
	sockRecvDgramMax  = 16 << 20
)

// sockOp is one pending operation in a sockFd queue.
type sockOp struct {
	fut *Future
	// run tries the operation; it returns true once the future is done
	// (result or error), false to wait for readiness again.
	run func() bool
	// idle: the operation waits for something other than the fd (the
	// sendfile fallback reading its file); the fd is not watched for it.
	idle     bool
	counted  bool // counted in Loop.objects
	finished bool
}

// sockFd is the loop's registration of a socket used by sock_* operations
// (the owner of its fdEntry while operations wait).
type sockFd struct {
	loop    *Loop
	fd      int
	e       *fdEntry
	readers []*sockOp
	writers []*sockOp
}

// sockCheck validates fd for a sock_* operation.
func (l *Loop) sockCheck(fd int) error {
	if l.closed {
		return ErrClosed
	}
	if fd < 0 {
		return &OpError{Op: "sock", Err: unix.EBADF}
	}
	if e := l.entry(fd, false); e != nil {
		switch e.owner.(type) {
		case *sockFd:
		case nil:
			if e.watchers > 0 {
				return &OpError{Op: "sock", Addr: "fd is watched by add_reader/add_writer", Err: unix.EBUSY}
			}
		default:
			return &OpError{Op: "sock", Addr: "fd is used by a transport or server", Err: unix.EBUSY}
		}
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return &OpError{Op: "sock", Err: err}
	}
	if flags&unix.O_NONBLOCK == 0 {
		return &OpError{Op: "sock", Addr: "the socket must be non-blocking", Err: ErrInvalid}
	}
	return nil
}

// sockFdFor returns fd's queue, creating it; it must have passed sockCheck.
func (l *Loop) sockFdFor(fd int) *sockFd {
	e := l.entry(fd, true)
	if sf, ok := e.owner.(*sockFd); ok {
		return sf
	}
	sf := &sockFd{loop: l, fd: fd, e: e}
	e.owner = sf
	return sf
}

// sockQueued reports whether operations of the given direction wait on fd.
func (l *Loop) sockQueued(fd int, write bool) bool {
	e := l.entry(fd, false)
	if e == nil {
		return false
	}
	sf, ok := e.owner.(*sockFd)
	if !ok {
		return false
	}
	if write {
		return len(sf.writers) > 0
	}
	return len(sf.readers) > 0
}

// sockStart runs op at once when nothing of its direction waits on fd, and
// queues it otherwise (or when it is not finished). tried: the caller made
// the immediate attempt already.
func (l *Loop) sockStart(fd int, write bool, op *sockOp, tried ...bool) {
	if len(tried) == 0 && !l.sockQueued(fd, write) && op.run() {
		op.finished = true
		return
	}
	sf := l.sockFdFor(fd)
	if write {
		sf.writers = append(sf.writers, op)
	} else {
		sf.readers = append(sf.readers, op)
	}
	op.counted = true
	l.objects++
	// Cancelling the future removes the operation (the next dispatch would
	// drop it too; this also covers an fd that never becomes ready).
	op.fut.AddDoneCallback(func(*Future) { sf.remove(op) }, nil, nil)
	sf.sync()
}

func (op *sockOp) finish(l *Loop) {
	if op.finished && !op.counted {
		return
	}
	op.finished = true
	if op.counted {
		op.counted = false
		l.objects--
	}
}

// remove drops a finished or cancelled operation from the queues.
func (sf *sockFd) remove(op *sockOp) {
	for i, o := range sf.readers {
		if o == op {
			sf.readers = append(sf.readers[:i], sf.readers[i+1:]...)
			break
		}
	}
	for i, o := range sf.writers {
		if o == op {
			sf.writers = append(sf.writers[:i], sf.writers[i+1:]...)
			break
		}
	}
	op.finish(sf.loop)
	sf.sync()
}

// pump runs the operations of one queue in order until one has to wait.
func (sf *sockFd) pump(q *[]*sockOp) {
	for len(*q) > 0 {
		op := (*q)[0]
		if !op.fut.Done() {
			if op.idle || !op.run() {
				return
			}
		}
		*q = (*q)[1:]
		op.finish(sf.loop)
	}
}

func (sf *sockFd) onReadable() {
	sf.pump(&sf.readers)
	sf.sync()
}

func (sf *sockFd) onWritable() {
	sf.pump(&sf.writers)
	sf.sync()
}

// kick runs the write queue after an idle operation became ready.
func (sf *sockFd) kick() {
	sf.pump(&sf.writers)
	sf.sync()
}

// sync applies the queues' interest to epoll, and releases the fd's entry
// when no operation is left.
func (sf *sockFd) sync() {
	l, e := sf.loop, sf.e
	if e.owner != sf {
		return
	}
	wantR := len(sf.readers) > 0 && !sf.readers[0].idle
	wantW := len(sf.writers) > 0 && !sf.writers[0].idle
	if wantR {
		e.reader = sf.onReadable
	} else {
		e.reader = nil
	}
	if wantW {
		e.writer = sf.onWritable
	} else {
		e.writer = nil
	}
	if len(sf.readers) == 0 && len(sf.writers) == 0 {
		e.owner = nil
	}
	if err := l.update(e); err != nil && (wantR || wantW) {
		// The fd was closed and its number reused behind our back: epoll
		// forgot it. Register it afresh.
		e.registered = 0
		if err := l.update(e); err != nil {
			sf.failAll(&OpError{Op: "epoll_ctl", Err: err})
		}
	}
}

// failAll fails every pending operation (the fd cannot be watched).
func (sf *sockFd) failAll(err error) {
	ops := append(append([]*sockOp(nil), sf.readers...), sf.writers...)
	sf.readers, sf.writers = nil, nil
	for _, op := range ops {
		if !op.fut.Done() {
			op.fut.SetException(err)
		}
		op.finish(sf.loop)
	}
	sf.e.reader, sf.e.writer = nil, nil
	sf.e.owner = nil
	sf.loop.update(sf.e)
}

// ---------------------------------------------------------------------------
// System calls (raw: they cannot block on a non-blocking socket).

func sockRecv(fd int, b []byte) (int, unix.Errno) {
	var p unsafe.Pointer
	var one [1]byte
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	} else {
		p = unsafe.Pointer(&one[0])
	}
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// sockRecvfrom receives with the sender's address (nil when the socket
// reports none), named as Getsockname names addresses.
func sockRecvfrom(fd int, b []byte) (int, unix.Sockaddr, unix.Errno) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	var one [1]byte
	p := unsafe.Pointer(&one[0])
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)),
		0, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return 0, nil, e
	}
	if n == 0 {
		return int(r), nil, 0
	}
	return int(r), parseSockaddr(&rsa, n), 0
}

// sockAccept accepts a non-blocking, close-on-exec connection.
func sockAccept(fd int) (int, unix.Sockaddr, unix.Errno) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, nil, e
	}
	return int(r), parseSockaddr(&rsa, n), 0
}

func sockSend(fd int, b []byte) (int, unix.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	return rawSend(fd, b)
}

func sockErr(op string, err error) error { return &OpError{Op: op, Err: err} }

func sockType(fd int) int {
	t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return 0
	}
	return t
}

func sockDomain(fd int) int {
	d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return 0
	}
	return d
}

func recvAlloc(fd int, n int) []byte {
	max := sockRecvDgramMax
	if sockType(fd) == unix.SOCK_STREAM {
		max = sockRecvStreamMax
	}
	if n > max {
		n = max
	}
	return make([]byte, n)
}

// ---------------------------------------------------------------------------
// The operations.

func (l *Loop) sockBegin(fd int) (*Future, error) {
	if err := l.sockCheck(fd); err != nil {
		return nil, err
	}
	return l.NewFuture(), nil
}

// SockRecv receives up to n bytes (asyncio's sock_recv); the result is a
// []byte, empty at EOF.
func (l *Loop) SockRecv(fd int, n int) (*Future, error) {
	if n < 0 {
		return nil, ErrInvalid
	}
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	buf := recvAlloc(fd, n)
	l.sockStart(fd, false, &sockOp{fut: fut, run: func() bool {
		for {
			m, errno := sockRecv(fd, buf)
			if errno == unix.EINTR {
				continue
			}
			if errno == unix.EAGAIN {
				return false
			}
			if errno != 0 {
				fut.SetException(sockErr("recv", errno))
			} else {
				fut.SetResult(buf[:m:m])
			}
			return true
		}
	}})
	return fut, nil
}

// SockRecvInto receives into buf (asyncio's sock_recv_into); the result is
// the number of bytes (int). buf must stay valid until the future is done;
// once it is done (also by cancellation) buf is not touched again.
func (l *Loop) SockRecvInto(fd int, buf []byte) (*Future, error) {
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	l.sockStart(fd, false, &sockOp{fut: fut, run: func() bool {
		for {
			m, errno := sockRecv(fd, buf)
			if errno == unix.EINTR {
				continue
			}
			if errno == unix.EAGAIN {
				return false
			}
			if errno != 0 {
				fut.SetException(sockErr("recv_into", errno))
			} else {
				fut.SetResult(m)
			}
			return true
		}
	}})
	return fut, nil
}

func (l *Loop) sockRecvfrom(fd int, buf []byte, copyOut bool) (*Future, error) {
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	name := "recvfrom_into"
	if copyOut {
		name = "recvfrom"
	}
	l.sockStart(fd, false, &sockOp{fut: fut, run: func() bool {
		for {
			m, from, errno := sockRecvfrom(fd, buf)
			if errno == unix.EINTR {
				continue
			}
			if errno == unix.EAGAIN {
				return false
			}
			if errno != 0 {
				fut.SetException(sockErr(name, errno))
				return true
			}
			r := &Received{N: m, Addr: from}
			if copyOut {
				r.Data = buf[:m:m]
			}
			fut.SetResult(r)
			return true
		}
	}})
	return fut, nil
}

// SockRecvfrom receives a datagram of up to n bytes (asyncio's
// sock_recvfrom); the result is a *Received with Data.
func (l *Loop) SockRecvfrom(fd int, n int) (*Future, error) {
	if n < 0 {
		return nil, ErrInvalid
	}
	if err := l.sockCheck(fd); err != nil {
		return nil, err
	}
	return l.sockRecvfrom(fd, recvAlloc(fd, n), true)
}

// SockRecvfromInto receives a datagram into buf (asyncio's
// sock_recvfrom_into); the result is a *Received with N and Addr. buf must
// stay valid until the future is done.
func (l *Loop) SockRecvfromInto(fd int, buf []byte) (*Future, error) {
	return l.sockRecvfrom(fd, buf, false)
}

// SockSendall sends all of data (asyncio's sock_sendall); the result is the
// number of bytes sent (int, len(data)). data is borrowed only during the
// call: what cannot be sent at once is copied.
func (l *Loop) SockSendall(fd int, data []byte) (*Future, error) {
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	total := len(data)
	rest := data
	run := func() bool {
		for len(rest) > 0 {
			n, errno := sockSend(fd, rest)
			if errno == unix.EINTR {
				continue
			}
			if errno == unix.EAGAIN {
				return false
			}
			if errno != 0 {
				fut.SetException(sockErr("sendall", errno))
				return true
			}
			rest = rest[n:]
		}
		fut.SetResult(total)
		return true
	}
	op := &sockOp{fut: fut}
	if !l.sockQueued(fd, true) && run() {
		return fut, nil
	}
	rest = append([]byte(nil), rest...) // the caller's memory is borrowed
	op.run = run
	l.sockStart(fd, true, op, true)
	return fut, nil
}

// SockSendto sends one datagram to addr (asyncio's sock_sendto); the result
// is the number of bytes sent (int). data is copied when it cannot be sent
// at once.
func (l *Loop) SockSendto(fd int, data []byte, addr unix.Sockaddr) (*Future, error) {
	if addr == nil {
		return nil, ErrInvalid
	}
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	l.sockSendto(fut, fd, data, addr, false)
	return fut, nil
}

func (l *Loop) sockSendto(fut *Future, fd int, data []byte, addr unix.Sockaddr, copied bool) {
	run := sendtoRun(fut, fd, data, addr)
	op := &sockOp{fut: fut}
	if !l.sockQueued(fd, true) && run() {
		return
	}
	if !copied {
		data = append([]byte(nil), data...)
		run = sendtoRun(fut, fd, data, addr)
	}
	op.run = run
	l.sockStart(fd, true, op, true)
}

// sendtoRun is the run of a sock_sendto of data to addr.
func sendtoRun(fut *Future, fd int, data []byte, addr unix.Sockaddr) func() bool {
	return func() bool {
		for {
			err := unix.Sendto(fd, data, unix.MSG_NOSIGNAL, addr)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return false
			}
			if err != nil {
				fut.SetException(&OpError{Op: "sendto", Addr: addrString(addr), Err: err})
			} else {
				fut.SetResult(len(data))
			}
			return true
		}
	}
}

// SockSendtoHost is SockSendto to host:port, resolved first for the
// socket's family when host is not numeric (for an AF_UNIX socket host is
// the path and port is ignored).
func (l *Loop) SockSendtoHost(fd int, data []byte, host string, port int) (*Future, error) {
	if port < 0 || port > 65535 {
		return nil, ErrInvalid
	}
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	sa, ok, err := l.sockAddr(fd, host, port)
	if err != nil {
		return nil, err
	}
	if ok {
		l.sockSendto(fut, fd, data, sa, false)
		return fut, nil
	}
	data = append([]byte(nil), data...)
	l.sockResolve(fut, fd, host, port, func(sa unix.Sockaddr) func() bool { return sendtoRun(fut, fd, data, sa) })
	return fut, nil
}

// sockAddr turns host:port into an address for fd's family without
// blocking; ok is false when host is a name to resolve.
func (l *Loop) sockAddr(fd int, host string, port int) (unix.Sockaddr, bool, error) {
	fam := sockDomain(fd)
	if fam == unix.AF_UNIX {
		sa, err := unixSockaddr(host)
		if err != nil {
			return nil, false, err
		}
		return sa, true, nil
	}
	if host == "" {
		return nil, false, &OpError{Op: "sock", Addr: "empty host", Err: ErrInvalid}
	}
	addrs, ok := numericAddrs(host, port, false)
	if !ok {
		return nil, false, nil
	}
	sa, err := adaptFamily(addrs[0], fam)
	return sa, true, err
}

// adaptFamily makes sa usable on a socket of family fam: an IPv4 address on
// an IPv6 socket becomes v4-mapped.
func adaptFamily(sa unix.Sockaddr, fam int) (unix.Sockaddr, error) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if fam == unix.AF_INET6 {
			m := &unix.SockaddrInet6{Port: a.Port}
			m.Addr[10], m.Addr[11] = 0xff, 0xff
			copy(m.Addr[12:], a.Addr[:])
			return m, nil
		}
	case *unix.SockaddrInet6:
		if fam == unix.AF_INET {
			return nil, &OpError{Op: "sock", Addr: addrString(sa) + ": an IPv6 address for an IPv4 socket", Err: ErrInvalid}
		}
	}
	return sa, nil
}

// sockResolve resolves host for fd's family on a goroutine, then runs the
// operation next makes for the address on the loop thread (unless fut was
// cancelled meanwhile). While the name is resolved the operation already
// holds its place in fd's write queue (idle: the fd is not watched), so the
// fd counts as used by a sock_* operation from the start: add_reader /
// add_writer on it are EBUSY (they once succeeded, and the operation then
// took the fd over and left it counted as watched for good), and a later
// sock_sendall on it runs after the connect, in the order of the calls.
func (l *Loop) sockResolve(fut *Future, fd int, host string, port int, next func(unix.Sockaddr) func() bool) {
	fam := sockDomain(fd)
	st := sockType(fd)
	hold := &sockOp{fut: fut, idle: true, run: func() bool { return false }}
	l.sockStart(fd, true, hold, true)
	l.lookup(host, itoa(port), fam, st, 0, 0, func(res []AddrInfo, err error) {
		if fut.Done() {
			return
		}
		if err != nil {
			fut.SetException(err)
			return
		}
		sa, err := adaptFamily(res[0].Addr, fam)
		if err != nil {
			fut.SetException(err)
			return
		}
		hold.run = next(sa)
		hold.idle = false
		if e := l.entry(fd, false); e != nil {
			if sf, ok := e.owner.(*sockFd); ok {
				sf.kick()
			}
		}
	})
}

// SockConnect connects fd to host:port (asyncio's sock_connect). A numeric
// host connects at once; a name is resolved first (for the socket's family)
// on a goroutine. For an AF_UNIX socket host is the path. The result is nil.
func (l *Loop) SockConnect(fd int, host string, port int) (*Future, error) {
	if port < 0 || port > 65535 {
		return nil, ErrInvalid
	}
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	sa, ok, err := l.sockAddr(fd, host, port)
	if err != nil {
		return nil, err
	}
	if ok {
		l.sockConnect(fut, fd, sa)
		return fut, nil
	}
	l.sockResolve(fut, fd, host, port, func(sa unix.Sockaddr) func() bool { return connectRun(fut, fd, sa) })
	return fut, nil
}

// SockConnectAddr is SockConnect to a socket address.
func (l *Loop) SockConnectAddr(fd int, sa unix.Sockaddr) (*Future, error) {
	if sa == nil {
		return nil, ErrInvalid
	}
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	l.sockConnect(fut, fd, sa)
	return fut, nil
}

func (l *Loop) sockConnect(fut *Future, fd int, sa unix.Sockaddr) {
	// A connect waits for writability: it queues with the writers.
	l.sockStart(fd, true, &sockOp{fut: fut, run: connectRun(fut, fd, sa)})
}

// connectRun is the run of a sock_connect to sa.
func connectRun(fut *Future, fd int, sa unix.Sockaddr) func() bool {
	started := false
	fail := func(err error) bool {
		fut.SetException(&OpError{Op: "connect", Addr: sockaddrDisplayName(sa), Err: err})
		return true
	}
	run := func() bool {
		if !started {
			started = true
			err := unix.Connect(fd, sa)
			switch err {
			case nil:
				fut.SetResult(nil)
				return true
			case unix.EINPROGRESS, unix.EINTR, unix.EAGAIN, unix.EALREADY:
				return false
			}
			return fail(err)
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = unix.Errno(soerr)
		}
		if err == unix.EINPROGRESS || err == unix.EALREADY {
			return false
		}
		if err != nil {
			return fail(err)
		}
		fut.SetResult(nil)
		return true
	}
	return run
}

func sockaddrDisplayName(sa unix.Sockaddr) string {
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		return u.Name
	}
	return addrString(sa)
}

// SockAccept accepts a connection (asyncio's sock_accept); the result is an
// *Accepted whose fd (non-blocking, close-on-exec) the caller owns.
func (l *Loop) SockAccept(fd int) (*Future, error) {
	fut, err := l.sockBegin(fd)
	if err != nil {
		return nil, err
	}
	l.sockStart(fd, false, &sockOp{fut: fut, run: func() bool {
		for {
			nfd, sa, errno := sockAccept(fd)
			if errno == unix.EINTR {
				continue
			}
			if errno == unix.EAGAIN {
				return false
			}
			if errno != 0 {
				fut.SetException(sockErr("accept", errno))
				return true
			}
			if fut.Done() { // cannot happen (checked by pump), but never leak
				unix.Close(nfd)
				return true
			}
			fut.SetResult(&Accepted{Fd: nfd, Addr: sa})
			return true
		}
	}})
	return fut, nil
}
