package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"math"
	"sync"
	"syscall"
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------------
// Protocols: a C aloop_protocol_t copied into Go, adapted to core.Protocol.

const (
	pConnectionMade = iota
	pDataReceived
	pEOFReceived
	pConnectionLost
	pPauseWriting
	pResumeWriting
	pGetBuffer
	pBufferUpdated
	pCount
)

// cProto is a transport's C protocol: its functions (shared by every
// transport whose protocol struct has the same ones, protoFns) and its
// userdata; the core.Protocol calling it lives inside it (adapter).
type cProto struct {
	*protoFns
	hostData
	ad cBufAdapter // the adapter (adapter()): no allocation of its own
}

// protoFns is what a C protocol struct says: its functions and flags.
type protoFns struct {
	fn    [pCount]C.uintptr_t
	flags C.uint
}

// A server's connections almost always have the same protocol functions:
// they share one protoFns (64 bytes less per connection). Bounded, so that
// a host that makes up functions cannot grow it forever.
var (
	fnsMu   sync.Mutex
	fnsSeen = map[protoFns]*protoFns{}
)

const maxSharedFns = 4096

func shareFns(f protoFns) *protoFns {
	fnsMu.Lock()
	defer fnsMu.Unlock()
	if p := fnsSeen[f]; p != nil {
		return p
	}
	p := &f
	if len(fnsSeen) < maxSharedFns {
		fnsSeen[f] = p
	}
	return p
}

func protoFrom(pp *C.aloop_protocol_t, ud, free C.uintptr_t) (*cProto, C.int) {
	if pp == nil {
		return nil, fail(C.ALOOP_EINVAL, "protocol is NULL")
	}
	if pp.size < C.size_t(unsafe.Sizeof(pp.size)) || pp.size > 4096 {
		return nil, fail(C.ALOOP_EINVAL, "protocol.size is %d; set it to sizeof(aloop_protocol_t)", int(pp.size))
	}
	var f protoFns
	for i := range f.fn {
		f.fn[i] = C.al_proto_field(pp, C.int(i))
	}
	if (f.fn[pGetBuffer] == 0) != (f.fn[pBufferUpdated] == 0) {
		return nil, fail(C.ALOOP_EINVAL, "get_buffer and buffer_updated go together")
	}
	f.flags = C.al_proto_flags(pp)
	if f.flags&^C.ALOOP_PROTOCOL_QUEUED != 0 {
		return nil, fail(C.ALOOP_EINVAL, "protocol.flags has unknown bits %#x", uint(f.flags))
	}
	p := &cProto{protoFns: shareFns(f), hostData: hostData{ud: ud, free: free}}
	p.ad.p = p
	return p, 0
}

// adapter returns the core.Protocol calling p.
func (p *cProto) adapter() core.Protocol {
	var a core.Protocol = &p.ad.cAdapter
	if p.fn[pGetBuffer] != 0 {
		a = &p.ad
	}
	if p.flags&C.ALOOP_PROTOCOL_QUEUED != 0 {
		return &cQueued{core.QueuedProtocol{Fallback: a, Userdata: uint64(p.ud)}, p}
	}
	return a
}

type cAdapter struct{ p *cProto }

func (a *cAdapter) th(t *core.Transport) C.uintptr_t {
	return C.uintptr_t(transportHandle(t))
}

func (a *cAdapter) ConnectionMade(t *core.Transport) {
	to := tobj(t)
	if to.proto == nil {
		to.proto = a.p
		a.p.adopted = true
	}
	if f := a.p.fn[pConnectionMade]; f != 0 {
		t.Claim()
		C.al_proto_t(f, C.uintptr_t(to.h), a.p.ud)
	}
}

func (a *cAdapter) DataReceived(t *core.Transport, data []byte) {
	if f := a.p.fn[pDataReceived]; f != 0 && len(data) > 0 {
		fd, gate := sendGate(t)
		C.al_proto_data(f, a.th(t), (*C.char)(unsafe.Pointer(&data[0])), C.size_t(len(data)), a.p.ud, fd, gate)
	}
}

func (a *cAdapter) EOFReceived(t *core.Transport) bool {
	if f := a.p.fn[pEOFReceived]; f != 0 {
		return C.al_proto_eof(f, a.th(t), a.p.ud) != 0
	}
	return false
}

func (a *cAdapter) ConnectionLost(t *core.Transport, err error) {
	if f := a.p.fn[pConnectionLost]; f != 0 {
		C.al_proto_lost(f, a.th(t), errCode(err), a.p.ud)
	}
}

func (a *cAdapter) PauseWriting(t *core.Transport) {
	if f := a.p.fn[pPauseWriting]; f != 0 {
		C.al_proto_t(f, a.th(t), a.p.ud)
	}
}

func (a *cAdapter) ResumeWriting(t *core.Transport) {
	if f := a.p.fn[pResumeWriting]; f != 0 {
		C.al_proto_t(f, a.th(t), a.p.ud)
	}
}

// sendGate opens t's gate for direct sends from C during a data callback
// (write.c); (-1, nil) when t cannot take them now, or when fault injection
// must see every aloop_transport_write.
func sendGate(t *core.Transport) (C.int, *C.uint32_t) {
	if faultAll || faultNames != nil {
		return -1, nil
	}
	fd, gate, ok := t.SendGate()
	if !ok {
		return -1, nil
	}
	return C.int(fd), (*C.uint32_t)(unsafe.Pointer(gate))
}

type cBufAdapter struct{ cAdapter }

func (a *cBufAdapter) GetBuffer(t *core.Transport, sizehint int) []byte {
	hint := C.size_t(0)
	if sizehint > 0 {
		hint = C.size_t(sizehint)
	}
	b := C.al_proto_get_buffer(a.p.fn[pGetBuffer], a.th(t), hint, a.p.ud)
	ptr, n := b.p, b.n
	if ptr == nil || n == 0 {
		return nil
	}
	if n > maxLen { // a length no memory has: as an empty buffer (an error)
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(ptr)), int(n))
}

func (a *cBufAdapter) BufferUpdated(t *core.Transport, n int) {
	fd, gate := sendGate(t)
	C.al_proto_updated(a.p.fn[pBufferUpdated], a.th(t), C.size_t(n), a.p.ud, fd, gate)
}

// ---------------------------------------------------------------------------
// Transport handles.

type transportObj struct {
	h     uintptr
	proto *cProto // the current C protocol (its userdata is freed at the end)
}

// tobj returns t's handle object, registering t on first use. The handle is
// released after connection_lost.
func tobj(t *core.Transport) *transportObj {
	if to, ok := t.Tag.(*transportObj); ok {
		return to
	}
	to := &transportObj{}
	to.h = transports.put(t)
	t.Tag = to
	t.OnRelease = releaseTransport // not a closure: one object less per connection
	return to
}

// releaseTransport is the OnRelease of every transport with a handle.
func releaseTransport(t *core.Transport) {
	to := t.Tag.(*transportObj)
	transports.del(to.h)
	if to.proto != nil {
		releaseProto(t, to.proto)
	}
}

// transportHandle is t's handle, for the host: t counts as claimed
// (core/claim.go).
func transportHandle(t *core.Transport) uintptr {
	t.Claim()
	return tobj(t).h
}

func transportHandleIfAny(t *core.Transport) uintptr {
	if t == nil {
		return 0
	}
	if to, ok := t.Tag.(*transportObj); ok {
		return to.h
	}
	return 0
}

func getTransport(h C.uintptr_t) (*core.Transport, C.int) {
	return lookupT(transports, h, "invalid or closed transport handle", (*core.Transport).Loop)
}

// ---------------------------------------------------------------------------
// Server handles.

type serverObj struct {
	h        uintptr
	s        *core.Server
	cb       C.uintptr_t
	hostData // on_connection's userdata, dropped when the server closes
}

func serverHandle(s *core.Server) uintptr {
	s.Claim()
	so, ok := s.Tag.(*serverObj)
	if !ok {
		so = &serverObj{hostData: hostData{released: true}}
		s.Tag = so
	}
	if so.h == 0 {
		so.s = s
		so.h = servers.put(so)
	}
	return so.h
}

func serverHandleIfAny(s *core.Server) uintptr {
	if s == nil {
		return 0
	}
	return serverHandle(s)
}

func getServer(h C.uintptr_t) (*serverObj, C.int) {
	return lookupT(servers, h, "invalid server handle", func(so *serverObj) *core.Loop { return so.s.Loop() })
}

// ---------------------------------------------------------------------------
// create_connection / create_server.

//export aloop_create_connection
func aloop_create_connection(loop C.uintptr_t, host *C.char, port C.int, proto *C.aloop_protocol_t,
	ud, free C.uintptr_t, opts *C.aloop_connect_options_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
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
	if port < 0 || port > 65535 {
		o.release()
		return fail(C.ALOOP_EINVAL, "port %d out of range", int(port))
	}
	p, rc := protoFrom(proto, ud, free)
	if p == nil {
		o.release()
		return rc
	}
	if opts != nil && opts.size < C.size_t(unsafe.Sizeof(opts.size)) {
		o.release()
		return fail(C.ALOOP_EINVAL, "options.size is not set")
	}
	inject()
	oc := orEmpty(opts)
	var co core.ConnectOptions
	if lh := field(oc, &oc.local_host, nil); lh != nil {
		co.LocalHost = C.GoString(lh)
		co.LocalPort = int(field(oc, &oc.local_port, 0))
	}
	co.HappyEyeballsDelay = float64(field(oc, &oc.happy_eyeballs_delay, 0))
	if math.IsNaN(co.HappyEyeballsDelay) || math.IsInf(co.HappyEyeballsDelay, 0) || co.HappyEyeballsDelay > 1e6 {
		p.release()
		return fail(C.ALOOP_EINVAL, "happy_eyeballs_delay must be a finite number of seconds")
	}
	co.Interleave = int(field(oc, &oc.interleave, 0))
	co.Family = int(field(oc, &oc.family, 0))
	co.Flags = int(field(oc, &oc.flags, 0))
	co.HasSock = field(oc, &oc.has_sock, 0) != 0
	co.Sock = int(field(oc, &oc.sock, -1))
	serverHostname := field(oc, &oc.server_hostname, nil)
	if th := handleField(oc, unsafe.Pointer(&oc.tls)); th != 0 { // TLS (capi/tls.go)
		topts, rc := tlsFromHandle(th, false)
		if topts == nil {
			p.release()
			return rc
		}
		if serverHostname != nil {
			topts.ServerHostname = C.GoString(serverHostname)
		}
		co.TLS = topts
	} else if serverHostname != nil {
		p.release()
		return fail(C.ALOOP_EINVAL, "server_hostname is only meaningful with tls")
	}
	o.handOff()
	fut, err := lo.l.CreateConnection(goString(host), int(port), p.adapter(), &co)
	if err != nil {
		p.release()
		return failErr(err)
	}
	releaseUnlessAdopted(fut, &p.hostData)
	*out = C.uintptr_t(newFutureObj(fut).h)
	return 0
}

//export aloop_create_server
func aloop_create_server(loop C.uintptr_t, host *C.char, port C.int, cb, ud, free C.uintptr_t,
	opts *C.aloop_server_options_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
	defer o.onPanic()
	lo, rc := getLoopT(loop)
	if lo == nil {
		o.release()
		return rc
	}
	if cb == 0 || out == nil {
		o.release()
		return fail(C.ALOOP_EINVAL, "on_connection or out_future is NULL")
	}
	if port < 0 || port > 65535 {
		o.release()
		return fail(C.ALOOP_EINVAL, "port %d out of range", int(port))
	}
	if opts != nil && opts.size < C.size_t(unsafe.Sizeof(opts.size)) {
		o.release()
		return fail(C.ALOOP_EINVAL, "options.size is not set")
	}
	inject()
	o.handOff()
	so := &serverObj{cb: cb, hostData: hostData{ud: ud, free: free}}
	sv := orEmpty(opts)
	so2 := core.ServerOptions{
		Backlog:     int(field(sv, &sv.backlog, 100)),
		NoReuseAddr: field(sv, &sv.reuse_address, -1) == 0,
		ReusePort:   field(sv, &sv.reuse_port, 0) > 0,
		NoStart:     field(sv, &sv.start_serving, -1) == 0,
		Tag:         so,
		Family:      int(field(sv, &sv.family, 0)),
		Flags:       int(field(sv, &sv.flags, 0)),
		HasSock:     field(sv, &sv.has_sock, 0) != 0,
		Sock:        int(field(sv, &sv.sock, -1)),
	}
	if hl := field(sv, &sv.hosts, nil); hl != nil {
		hp := unsafe.Slice((**C.char)(unsafe.Pointer(hl)), 4097)
		for i := 0; hp[i] != nil; i++ {
			if i == 4096 {
				so.release()
				return fail(C.ALOOP_EINVAL, "hosts is not NULL-terminated (more than 4096 entries)")
			}
			so2.Hosts = append(so2.Hosts, C.GoString(hp[i]))
		}
		if len(so2.Hosts) == 0 {
			so.release()
			return fail(C.ALOOP_EINVAL, "hosts is empty")
		}
	}
	if th := handleField(sv, unsafe.Pointer(&sv.tls)); th != 0 { // TLS (capi/tls.go)
		topts, rc := tlsFromHandle(th, true)
		if topts == nil {
			so.release()
			return rc
		}
		so2.TLS = topts
	}
	factory := func(t *core.Transport) error {
		sh := C.uintptr_t(serverHandle(t.Server()))
		th := C.uintptr_t(transportHandle(t))
		if r := C.al_call_connection_cb(cb, sh, th, ud); r < 0 {
			return &core.CodedError{Code: int(r), Msg: "on_connection rejected the connection"}
		}
		return nil
	}
	fut, err := lo.l.CreateServer(goString(host), int(port), factory, &so2)
	if err != nil {
		so.release()
		return failErr(err)
	}
	releaseUnlessServer(fut, &so.hostData)
	*out = C.uintptr_t(newFutureObj(fut).h)
	return 0
}

//export aloop_server_close
func aloop_server_close(server C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(server, getServer, func(so *serverObj) C.int {
		so.s.Close()
		so.release()
		return 0
	})
}

//export aloop_server_free
func aloop_server_free(server C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(server, getServer, func(so *serverObj) C.int {
		so.s.Close()
		so.release()
		servers.del(so.h)
		return 0
	})
}

//export aloop_server_start_serving
func aloop_server_start_serving(server C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(server, getServer, func(so *serverObj) C.int { return failErrOrZero(so.s.StartServing()) })
}

//export aloop_server_is_serving
func aloop_server_is_serving(server C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(server, getServer, func(so *serverObj) C.int { return boolRC(so.s.IsServing()) })
}

//export aloop_server_wait_closed
func aloop_server_wait_closed(server C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	so, rc := getServer(server)
	if so == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_future is NULL")
	}
	inject()
	*out = C.uintptr_t(newFutureObj(so.s.WaitClosed()).h)
	return 0
}

//export aloop_server_socket_count
func aloop_server_socket_count(server C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(server, getServer, func(so *serverObj) C.int {
		if so.s.IsClosed() {
			return 0
		}
		return C.int(len(so.s.Sockets()))
	})
}

func serverSocket(so *serverObj, index C.int) (int, unix.Sockaddr, C.int) {
	if so.s.IsClosed() {
		return -1, nil, fail(C.ALOOP_ECLOSED, "the server is closed")
	}
	fds := so.s.Sockets()
	if index < 0 || int(index) >= len(fds) {
		return -1, nil, fail(C.ALOOP_EINVAL, "socket index %d out of range (%d sockets)", int(index), len(fds))
	}
	return fds[index], so.s.Addrs()[index], 0
}

//export aloop_server_socket_fd
func aloop_server_socket_fd(server C.uintptr_t, index C.int) (rc C.int) {
	defer guard(&rc)
	return with(server, getServer, func(so *serverObj) C.int {
		fd, _, rc := serverSocket(so, index)
		if rc != 0 {
			return rc
		}
		return C.int(fd)
	})
}

//export aloop_server_sockname
func aloop_server_sockname(server C.uintptr_t, index C.int, host *C.char, hostlen C.size_t, port *C.int) (rc C.int) {
	defer guard(&rc)
	return with(server, getServer, func(so *serverObj) C.int {
		_, sa, rc := serverSocket(so, index)
		if rc != 0 {
			return rc
		}
		return putAddr(sa, host, hostlen, port)
	})
}

func putAddr(sa unix.Sockaddr, host *C.char, hostlen C.size_t, port *C.int) C.int {
	if host == nil && port == nil {
		return fail(C.ALOOP_EINVAL, "host and out_port are both NULL")
	}
	h, p := core.SockaddrString(sa)
	if rc := copyHost(host, hostlen, h); rc != 0 {
		return rc
	}
	if port != nil {
		*port = C.int(p)
	}
	return 0
}

// ---------------------------------------------------------------------------
// Transports.

//export aloop_transport_set_protocol
func aloop_transport_set_protocol(tr C.uintptr_t, proto *C.aloop_protocol_t, ud, free C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	o := own(free, ud)
	defer o.onPanic()
	t, rc := getTransport(tr)
	if t == nil {
		o.release()
		return rc
	}
	p, rc := protoFrom(proto, ud, free)
	if p == nil {
		o.release()
		return rc
	}
	inject()
	o.handOff()
	to := tobj(t)
	old := to.proto
	to.proto = p
	t.SetProtocol(p.adapter())
	if old != nil && old != p {
		releaseProto(t, old)
	}
	return 0
}

//export aloop_transport_get_protocol
func aloop_transport_get_protocol(tr C.uintptr_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	t, rc := getTransport(tr)
	if t == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_userdata is NULL")
	}
	inject()
	*out = 0
	if p := tobj(t).proto; p != nil {
		*out = p.ud
	}
	return 0
}

// al_transport_write_go is aloop_transport_write (write.c) when the write
// does not go straight to the socket: sent < 0 for a plain write; else the
// C side sent the first `sent` bytes itself through the transport's gate
// and its send returned errno err (0 after a short send).
//
//export al_transport_write_go
func al_transport_write_go(tr C.uintptr_t, data unsafe.Pointer, n C.size_t, sent C.long, err C.int) (rc C.int) {
	defer guard(&rc)
	t, rc := getTransport(tr)
	if t == nil {
		return rc
	}
	if data == nil && n > 0 {
		return fail(C.ALOOP_EINVAL, "data is NULL")
	}
	if n > maxLen {
		return fail(C.ALOOP_EINVAL, "len %d is larger than any buffer", uint64(n))
	}
	inject()
	if n == 0 {
		return 0
	}
	buf := unsafe.Slice((*byte)(data), int(n))
	var e error
	if sent < 0 {
		e = t.Write(buf)
	} else {
		e = t.WriteAfterSend(buf, int(sent), syscall.Errno(err))
	}
	if e != nil {
		return failErr(e)
	}
	return 0
}

func transportOp(tr C.uintptr_t, op func(t *core.Transport) C.int) C.int {
	return with(tr, getTransport, op)
}

//export aloop_transport_close
func aloop_transport_close(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int { t.Close(); return 0 })
}

//export aloop_transport_abort
func aloop_transport_abort(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int { t.Abort(); return 0 })
}

//export aloop_transport_write_eof
func aloop_transport_write_eof(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int { return failErrOrZero(t.WriteEOF()) })
}

func failErrOrZero(err error) C.int {
	if err != nil {
		return failErr(err)
	}
	return 0
}

//export aloop_transport_can_write_eof
func aloop_transport_can_write_eof(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int { return boolRC(t.CanWriteEOF()) })
}

//export aloop_transport_is_closing
func aloop_transport_is_closing(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int { return boolRC(t.IsClosing()) })
}

//export aloop_transport_pause_reading
func aloop_transport_pause_reading(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int { t.PauseReading(); return 0 })
}

//export aloop_transport_resume_reading
func aloop_transport_resume_reading(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int { t.ResumeReading(); return 0 })
}

//export aloop_transport_is_reading
func aloop_transport_is_reading(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int { return boolRC(t.IsReading()) })
}

//export aloop_transport_get_write_buffer_size
func aloop_transport_get_write_buffer_size(tr C.uintptr_t, out *C.size_t) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return failArg(tr, getTransport, "out_size is NULL")
	}
	return transportOp(tr, func(t *core.Transport) C.int { *out = C.size_t(t.WriteBufferSize()); return 0 })
}

//export aloop_transport_set_write_buffer_limits
func aloop_transport_set_write_buffer_limits(tr C.uintptr_t, high, low C.size_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int {
		if high > maxLen || low > maxLen {
			return fail(C.ALOOP_EINVAL, "limits too large")
		}
		return failErrOrZero(t.SetWriteBufferLimits(int(high), int(low)))
	})
}

//export aloop_transport_get_write_buffer_limits
func aloop_transport_get_write_buffer_limits(tr C.uintptr_t, outHigh, outLow *C.size_t) (rc C.int) {
	defer guard(&rc)
	if outHigh == nil || outLow == nil {
		return failArg(tr, getTransport, "out_high or out_low is NULL")
	}
	return transportOp(tr, func(t *core.Transport) C.int {
		h, l := t.WriteBufferLimits()
		*outHigh, *outLow = C.size_t(h), C.size_t(l)
		return 0
	})
}

//export aloop_transport_get_fd
func aloop_transport_get_fd(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int {
		if t.Fd() < 0 {
			return fail(C.ALOOP_ECLOSED, "the transport is closed")
		}
		return C.int(t.Fd())
	})
}

// transportAddr is aloop_transport_get_peername and _sockname; addr is the
// core.Transport method.
func transportAddr(tr C.uintptr_t, host *C.char, hostlen C.size_t, port *C.int,
	addr func(*core.Transport) (unix.Sockaddr, error)) C.int {
	return transportOp(tr, func(t *core.Transport) C.int {
		sa, err := addr(t)
		if err != nil {
			return failErr(err)
		}
		return putAddr(sa, host, hostlen, port)
	})
}

//export aloop_transport_get_peername
func aloop_transport_get_peername(tr C.uintptr_t, host *C.char, hostlen C.size_t, port *C.int) (rc C.int) {
	defer guard(&rc)
	return transportAddr(tr, host, hostlen, port, (*core.Transport).Peername)
}

//export aloop_transport_get_sockname
func aloop_transport_get_sockname(tr C.uintptr_t, host *C.char, hostlen C.size_t, port *C.int) (rc C.int) {
	defer guard(&rc)
	return transportAddr(tr, host, hostlen, port, (*core.Transport).Sockname)
}
