package main

// The C ABI of Unix sockets, datagram endpoints and pipes (the "Unix
// sockets, datagrams and pipes" section of include/asyncloop.h).

/*
#include "trampolines.h"
#include <string.h>

static inline void al_dg_t(uintptr_t fn, uintptr_t d, uintptr_t ud) {
  ((void (*)(aloop_datagram_t *, void *))fn)((aloop_datagram_t *)d, (void *)ud);
}
static inline void al_dg_err(uintptr_t fn, uintptr_t d, int err, uintptr_t ud) {
  ((void (*)(aloop_datagram_t *, int, void *))fn)((aloop_datagram_t *)d, err, (void *)ud);
}
static inline void al_dg_data(uintptr_t fn, uintptr_t d, const char *data,
                              size_t len, const char *host, int port,
                              uintptr_t ud, int fd, const char *sa, unsigned salen,
                              uint32_t *gate) {
  al_dg_direct_t dd = {d, fd, host, port, sa, salen, gate}, *prev = al_dg_direct_cur;
  al_dg_direct_cur = gate ? &dd : NULL;
  ((void (*)(aloop_datagram_t *, const char *, size_t, const char *, int,
             void *))fn)((aloop_datagram_t *)d, data, len, host, port,
                         (void *)ud);
  al_dg_direct_cur = prev;
}
static inline uintptr_t al_dgproto_field(const aloop_datagram_protocol_t *p, int i) {
  switch (i) {
#define F(n, f) case n: return AL_HAS_FIELD(p, aloop_datagram_protocol_t, f) ? (uintptr_t)p->f : 0;
    F(0, connection_made) F(1, datagram_received) F(2, error_received)
    F(3, connection_lost) F(4, pause_writing) F(5, resume_writing)
#undef F
  }
  return 0;
}
*/
import "C"

import (
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------------
// Shared helpers.

// streamFuture hands a future that resolves to a *core.Transport to C: the
// protocol's userdata is released if it fails (no protocol callback ran).
func streamFuture(fut *core.Future, p *cProto, o *ownedUD, out *C.uintptr_t) C.int {
	o.handOff()
	releaseUnlessAdopted(fut, &p.hostData)
	*out = C.uintptr_t(newFutureObj(fut).h)
	return 0
}

// streamArgs validates the common arguments of the functions that create a
// stream transport; on failure free_cb has run.
func streamArgs(loop C.uintptr_t, proto *C.aloop_protocol_t, o *ownedUD, out *C.uintptr_t) (*loopObj, *cProto, C.int) {
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return nil, nil, rc
	}
	if out == nil {
		o.release()
		return nil, nil, fail(C.ALOOP_EINVAL, "out_future is NULL")
	}
	p, rc := protoFrom(proto, o.ud, o.free)
	if p == nil {
		o.release()
		return nil, nil, rc
	}
	return lo, p, 0
}

// ---------------------------------------------------------------------------
// Unix stream sockets.

//export aloop_create_unix_connection
func aloop_create_unix_connection(loop C.uintptr_t, path *C.char, proto *C.aloop_protocol_t,
	ud, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := &ownedUD{free: free, ud: ud}
	defer o.onPanic()
	lo, p, rc := streamArgs(loop, proto, o, out)
	if lo == nil {
		return rc
	}
	if path == nil {
		o.release()
		return fail(C.ALOOP_EINVAL, "path is NULL")
	}
	inject()
	fut, err := lo.l.CreateUnixConnection(C.GoString(path), p.adapter())
	if err != nil {
		o.release()
		return failErr(err)
	}
	return streamFuture(fut, p, o, out)
}

//export aloop_create_unix_server
func aloop_create_unix_server(loop C.uintptr_t, path *C.char, cb, ud, free C.uintptr_t,
	opts *C.aloop_unix_server_options_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := &ownedUD{free: free, ud: ud}
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	if cb == 0 || out == nil || path == nil {
		o.release()
		return fail(C.ALOOP_EINVAL, "path, on_connection or out_future is NULL")
	}
	if opts != nil && opts.size < C.size_t(unsafe.Sizeof(opts.size)) {
		o.release()
		return fail(C.ALOOP_EINVAL, "options.size is not set")
	}
	inject()
	so := &serverObj{cb: cb, hostData: hostData{ud: ud, free: free}}
	us := orEmpty(opts)
	uo := core.UnixServerOptions{
		Backlog:   int(field(us, &us.backlog, 100)),
		NoStart:   field(us, &us.start_serving, -1) == 0,
		NoCleanup: field(us, &us.cleanup_socket, -1) == 0,
		Tag:       so,
	}
	factory := func(t *core.Transport) error {
		sh := C.uintptr_t(serverHandle(t.Server()))
		th := C.uintptr_t(transportHandle(t))
		if r := C.al_call_connection_cb(cb, sh, th, ud); r < 0 {
			return &core.CodedError{Code: int(r), Msg: "on_connection rejected the connection"}
		}
		return nil
	}
	if th := handleField(us, unsafe.Pointer(&us.tls)); th != 0 { // TLS (capi/tls.go)
		topts, rc := tlsFromHandle(th, true)
		if topts == nil {
			o.release()
			return rc
		}
		f, err := core.TLSServerFactory(factory, topts)
		if err != nil {
			o.release()
			return failErr(err)
		}
		factory = f
	}
	fut, err := lo.l.CreateUnixServer(C.GoString(path), factory, &uo)
	if err != nil {
		o.release()
		return failErr(err)
	}
	o.handOff()
	releaseUnlessServer(fut, &so.hostData)
	*out = C.uintptr_t(newFutureObj(fut).h)
	return 0
}

//export aloop_connect_accepted_socket
func aloop_connect_accepted_socket(loop C.uintptr_t, fd C.int, proto *C.aloop_protocol_t,
	ud, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := &ownedUD{free: free, ud: ud}
	defer o.onPanic()
	lo, p, rc := streamArgs(loop, proto, o, out)
	if lo == nil {
		return rc
	}
	if fd < 0 {
		o.release()
		return fail(C.ALOOP_EBADF, "fd %d is not a file descriptor", int(fd))
	}
	inject()
	fut, err := lo.l.ConnectAcceptedSocket(int(fd), p.adapter())
	if err != nil {
		o.release()
		return failErr(err)
	}
	return streamFuture(fut, p, o, out)
}

// ---------------------------------------------------------------------------
// Pipes.

func connectPipe(loop C.uintptr_t, fd C.int, proto *C.aloop_protocol_t, o *ownedUD,
	out *C.uintptr_t, write bool) C.int {
	lo, p, rc := streamArgs(loop, proto, o, out)
	if lo == nil {
		return rc
	}
	if fd < 0 {
		o.release()
		return fail(C.ALOOP_EBADF, "fd %d is not a file descriptor", int(fd))
	}
	inject()
	var fut *core.Future
	var err error
	if write {
		fut, err = lo.l.ConnectWritePipe(int(fd), p.adapter())
	} else {
		fut, err = lo.l.ConnectReadPipe(int(fd), p.adapter())
	}
	if err != nil {
		o.release()
		return failErr(err)
	}
	return streamFuture(fut, p, o, out)
}

//export aloop_connect_read_pipe
func aloop_connect_read_pipe(loop C.uintptr_t, fd C.int, proto *C.aloop_protocol_t,
	ud, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := &ownedUD{free: free, ud: ud}
	defer o.onPanic()
	return connectPipe(loop, fd, proto, o, out, false)
}

//export aloop_connect_write_pipe
func aloop_connect_write_pipe(loop C.uintptr_t, fd C.int, proto *C.aloop_protocol_t,
	ud, free C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := &ownedUD{free: free, ud: ud}
	defer o.onPanic()
	return connectPipe(loop, fd, proto, o, out, true)
}

// ---------------------------------------------------------------------------
// Datagram protocols: a C aloop_datagram_protocol_t copied into Go.

const (
	dConnectionMade = iota
	dDatagramReceived
	dErrorReceived
	dConnectionLost
	dPauseWriting
	dResumeWriting
	dCount
)

type cDgProto struct {
	fn    [dCount]C.uintptr_t
	flags C.uint
	hostData
}

func dgProtoFrom(pp *C.aloop_datagram_protocol_t, ud, free C.uintptr_t) (*cDgProto, C.int) {
	if pp == nil {
		return nil, fail(C.ALOOP_EINVAL, "protocol is NULL")
	}
	if pp.size < C.size_t(unsafe.Sizeof(pp.size)) || pp.size > 4096 {
		return nil, fail(C.ALOOP_EINVAL, "protocol.size is %d; set it to sizeof(aloop_datagram_protocol_t)", int(pp.size))
	}
	p := &cDgProto{hostData: hostData{ud: ud, free: free}}
	for i := range p.fn {
		p.fn[i] = C.al_dgproto_field(pp, C.int(i))
	}
	p.flags = C.al_dgproto_flags(pp)
	if p.flags&^C.ALOOP_PROTOCOL_QUEUED != 0 {
		return nil, fail(C.ALOOP_EINVAL, "protocol.flags has unknown bits %#x", uint(p.flags))
	}
	return p, 0
}

// adapter returns the core.DatagramProtocol calling p (queued: events.go).
func (p *cDgProto) adapter() core.DatagramProtocol {
	a := &cDgAdapter{p}
	if p.flags&C.ALOOP_PROTOCOL_QUEUED == 0 {
		return a
	}
	return &cDgQueued{core.QueuedDatagramProtocol{Fallback: a, Userdata: uint64(p.ud),
		ObjectID: func(t *core.DatagramTransport) uint64 { return uint64(datagramHandle(t)) }}, p}
}

// cDgQueued is a queued datagram protocol whose fallback is the C protocol.
type cDgQueued struct {
	core.QueuedDatagramProtocol
	p *cDgProto
}

func (a *cDgQueued) ConnectionMade(t *core.DatagramTransport) {
	if do := dobj(t); do.proto == nil {
		do.proto = a.p
		a.p.adopted = true
	}
	a.QueuedDatagramProtocol.ConnectionMade(t)
}

func (p *cDgProto) releaseOn(l *core.Loop) { releaseQueued(p.flags, &p.hostData, l) }

// hostBufLen holds any numeric address or Unix path ('@' + 107 bytes).
const hostBufLen = 128

// datagramObj is a datagram endpoint with its handle.
type datagramObj struct {
	h     uintptr
	t     *core.DatagramTransport
	proto *cDgProto
	host  *C.char // the sender address handed to datagram_received
	last  unix.Sockaddr
	port  C.int
}

// dobj returns t's handle object, registering t on first use. The handle
// is released after connection_lost.
func dobj(t *core.DatagramTransport) *datagramObj {
	if do, ok := t.Tag.(*datagramObj); ok {
		return do
	}
	do := &datagramObj{t: t}
	do.host = (*C.char)(C.calloc(hostBufLen, 1))
	do.h = datagrams.put(do)
	t.Tag = do
	t.OnRelease = func(*core.DatagramTransport) {
		datagrams.del(do.h)
		if do.proto != nil {
			do.proto.releaseOn(t.Loop())
		}
		C.free(unsafe.Pointer(do.host))
		do.host = nil
	}
	return do
}

// datagramHandle is t's handle, for the host: t counts as claimed.
func datagramHandle(t *core.DatagramTransport) uintptr {
	t.Claim()
	return dobj(t).h
}

func getDatagram(h C.uintptr_t) (*datagramObj, C.int) {
	return lookupT(datagrams, h, "invalid or closed datagram handle", func(do *datagramObj) *core.Loop { return do.t.Loop() })
}

type cDgAdapter struct{ p *cDgProto }

func (a *cDgAdapter) ConnectionMade(t *core.DatagramTransport) {
	do := dobj(t)
	if do.proto == nil {
		do.proto = a.p
		a.p.adopted = true
	}
	if f := a.p.fn[dConnectionMade]; f != 0 {
		t.Claim()
		C.al_dg_t(f, C.uintptr_t(do.h), a.p.ud)
	}
}

func (a *cDgAdapter) DatagramReceived(t *core.DatagramTransport, data []byte, addr unix.Sockaddr) {
	f := a.p.fn[dDatagramReceived]
	if f == 0 {
		return
	}
	do := dobj(t)
	if addr != do.last || do.last == nil {
		// The engine reuses the address object while the sender repeats.
		h, port := "", 0
		if addr != nil {
			h, port = core.SockaddrString(addr)
		}
		buf := unsafe.Slice((*byte)(unsafe.Pointer(do.host)), hostBufLen)
		n := copy(buf[:hostBufLen-1], h)
		buf[n] = 0
		do.last, do.port = addr, C.int(port)
	}
	ptr := (*C.char)(unsafe.Pointer(unsafe.SliceData(data)))
	if ptr == nil {
		ptr = do.host // a valid pointer for an empty datagram
	}
	t.Claim()
	// A reply to this sender may go out from C (dgsend.c, ReplyGate).
	fd, sa, salen, gate, ok := t.ReplyGate()
	if !ok || addr == nil {
		C.al_dg_data(f, C.uintptr_t(do.h), ptr, C.size_t(len(data)), do.host, do.port, a.p.ud, -1, nil, 0, nil)
		return
	}
	C.al_dg_data(f, C.uintptr_t(do.h), ptr, C.size_t(len(data)), do.host, do.port, a.p.ud,
		C.int(fd), (*C.char)(unsafe.Pointer(sa)), C.unsigned(salen), (*C.uint32_t)(unsafe.Pointer(gate)))
}

func (a *cDgAdapter) ErrorReceived(t *core.DatagramTransport, err error) {
	if f := a.p.fn[dErrorReceived]; f != 0 {
		C.al_dg_err(f, C.uintptr_t(datagramHandle(t)), errCode(err), a.p.ud)
	}
}

func (a *cDgAdapter) ConnectionLost(t *core.DatagramTransport, err error) {
	if f := a.p.fn[dConnectionLost]; f != 0 {
		C.al_dg_err(f, C.uintptr_t(datagramHandle(t)), errCode(err), a.p.ud)
	}
}

func (a *cDgAdapter) PauseWriting(t *core.DatagramTransport) {
	if f := a.p.fn[dPauseWriting]; f != 0 {
		C.al_dg_t(f, C.uintptr_t(datagramHandle(t)), a.p.ud)
	}
}

func (a *cDgAdapter) ResumeWriting(t *core.DatagramTransport) {
	if f := a.p.fn[dResumeWriting]; f != 0 {
		C.al_dg_t(f, C.uintptr_t(datagramHandle(t)), a.p.ud)
	}
}

// ---------------------------------------------------------------------------
// Datagram endpoints.

//export aloop_create_datagram_endpoint
func aloop_create_datagram_endpoint(loop C.uintptr_t, localHost *C.char, localPort C.int,
	remoteHost *C.char, remotePort C.int, proto *C.aloop_datagram_protocol_t, ud, free C.uintptr_t,
	opts *C.aloop_datagram_options_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := &ownedUD{free: free, ud: ud}
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	if out == nil {
		o.release()
		return fail(C.ALOOP_EINVAL, "out_future is NULL")
	}
	if opts != nil && opts.size < C.size_t(unsafe.Sizeof(opts.size)) {
		o.release()
		return fail(C.ALOOP_EINVAL, "options.size is not set")
	}
	dg := orEmpty(opts)
	family := int(field(dg, &dg.family, 0))
	if family != unix.AF_UNIX {
		for _, port := range []C.int{localPort, remotePort} {
			if port < 0 || port > 65535 {
				o.release()
				return fail(C.ALOOP_EINVAL, "port %d out of range", int(port))
			}
		}
	}
	p, rc := dgProtoFrom(proto, ud, free)
	if p == nil {
		o.release()
		return rc
	}
	inject()
	do := core.DatagramOptions{
		Family:         family,
		ReusePort:      field(dg, &dg.reuse_port, 0) > 0,
		AllowBroadcast: field(dg, &dg.allow_broadcast, 0) > 0,
		HasSock:        field(dg, &dg.has_sock, 0) != 0,
		Sock:           int(field(dg, &dg.sock, -1)),
	}
	if do.HasSock && (localHost != nil || remoteHost != nil) {
		o.release()
		return fail(C.ALOOP_EINVAL, "local_host and remote_host must be NULL with has_sock")
	}
	if localHost != nil {
		do.Local = &core.DatagramAddr{Host: C.GoString(localHost), Port: int(localPort)}
	}
	if remoteHost != nil {
		do.Remote = &core.DatagramAddr{Host: C.GoString(remoteHost), Port: int(remotePort)}
	}
	fut, err := lo.l.CreateDatagramEndpoint(p.adapter(), &do)
	if err != nil {
		o.release()
		return failErr(err)
	}
	o.handOff()
	releaseUnlessAdopted(fut, &p.hostData)
	*out = C.uintptr_t(newFutureObj(fut).h)
	return 0
}

//export aloop_future_result_datagram
func aloop_future_result_datagram(fut C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return futureResult(fut, kDatagram, out)
}

func datagramOp(h C.uintptr_t, op func(do *datagramObj) C.int) C.int {
	do, rc := getDatagram(h)
	if do == nil {
		return rc
	}
	inject()
	return op(do)
}

// al_datagram_sendto_go is aloop_datagram_sendto (dgsend.c) when the
// datagram is not a direct reply (or its sendto failed: nothing was sent).
//
//export al_datagram_sendto_go
func al_datagram_sendto_go(h C.uintptr_t, data unsafe.Pointer, n C.size_t, host *C.char, port C.int) (rc C.int) {
	defer guard(&rc)
	do, rc := getDatagram(h)
	if do == nil {
		return rc
	}
	if data == nil && n > 0 {
		return fail(C.ALOOP_EINVAL, "data is NULL")
	}
	if n > 1<<30 {
		return fail(C.ALOOP_EINVAL, "datagram of %d bytes is too large", uint64(n))
	}
	inject()
	t := do.t
	var addr unix.Sockaddr
	if host != nil {
		sa, err := t.ParseAddr(C.GoString(host), int(port))
		if err != nil {
			return failErr(err)
		}
		addr = sa
	}
	var buf []byte
	if n > 0 {
		buf = unsafe.Slice((*byte)(data), int(n))
	}
	if err := t.SendTo(buf, addr); err != nil {
		return failErr(err)
	}
	return 0
}

//export aloop_datagram_close
func aloop_datagram_close(h C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int { do.t.Close(); return 0 })
}

//export aloop_datagram_abort
func aloop_datagram_abort(h C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int { do.t.Abort(); return 0 })
}

//export aloop_datagram_is_closing
func aloop_datagram_is_closing(h C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int { return boolRC(do.t.IsClosing()) })
}

//export aloop_datagram_set_protocol
func aloop_datagram_set_protocol(h C.uintptr_t, proto *C.aloop_datagram_protocol_t, ud, free C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := &ownedUD{free: free, ud: ud}
	defer o.onPanic()
	do, rc := getDatagram(h)
	if do == nil {
		o.release()
		return rc
	}
	p, rc := dgProtoFrom(proto, ud, free)
	if p == nil {
		o.release()
		return rc
	}
	inject()
	o.handOff()
	old := do.proto
	do.proto = p
	do.t.SetProtocol(p.adapter())
	if old != nil && old != p {
		old.releaseOn(do.t.Loop())
	}
	return 0
}

//export aloop_datagram_get_protocol
func aloop_datagram_get_protocol(h C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	do, rc := getDatagram(h)
	if do == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_userdata is NULL")
	}
	inject()
	*out = 0
	if do.proto != nil {
		*out = do.proto.ud
	}
	return 0
}

//export aloop_datagram_get_write_buffer_size
func aloop_datagram_get_write_buffer_size(h C.uintptr_t, out *C.size_t) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int {
		if out == nil {
			return fail(C.ALOOP_EINVAL, "out_size is NULL")
		}
		*out = C.size_t(do.t.WriteBufferSize())
		return 0
	})
}

//export aloop_datagram_set_write_overhead
func aloop_datagram_set_write_overhead(h C.uintptr_t, perDatagram C.size_t) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int {
		if perDatagram > core.MaxWriteOverhead {
			return fail(C.ALOOP_EINVAL, "per_datagram is larger than 65536")
		}
		return failErrOrZero(do.t.SetWriteOverhead(int(perDatagram)))
	})
}

//export aloop_datagram_set_write_buffer_limits
func aloop_datagram_set_write_buffer_limits(h C.uintptr_t, high, low C.size_t) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int {
		if high > 1<<40 || low > 1<<40 {
			return fail(C.ALOOP_EINVAL, "limits too large")
		}
		return failErrOrZero(do.t.SetWriteBufferLimits(int(high), int(low)))
	})
}

//export aloop_datagram_get_write_buffer_limits
func aloop_datagram_get_write_buffer_limits(h C.uintptr_t, outHigh, outLow *C.size_t) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int {
		if outHigh == nil || outLow == nil {
			return fail(C.ALOOP_EINVAL, "out_high or out_low is NULL")
		}
		hi, lo := do.t.WriteBufferLimits()
		*outHigh, *outLow = C.size_t(hi), C.size_t(lo)
		return 0
	})
}

//export aloop_datagram_get_fd
func aloop_datagram_get_fd(h C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int {
		if do.t.Fd() < 0 {
			return fail(C.ALOOP_ECLOSED, "the endpoint is closed")
		}
		return C.int(do.t.Fd())
	})
}

//export aloop_datagram_get_sockname
func aloop_datagram_get_sockname(h C.uintptr_t, host *C.char, hostlen C.size_t, port *C.int) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int {
		sa, err := do.t.Sockname()
		if err != nil {
			return failErr(err)
		}
		return putAddr(sa, host, hostlen, port)
	})
}

//export aloop_datagram_get_peername
func aloop_datagram_get_peername(h C.uintptr_t, host *C.char, hostlen C.size_t, port *C.int) (rc C.int) {
	defer guard(&rc)
	return datagramOp(h, func(do *datagramObj) C.int {
		sa, err := do.t.Peername()
		if err != nil {
			return failErr(err)
		}
		return putAddr(sa, host, hostlen, port)
	})
}
