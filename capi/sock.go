package main

/*
#include "trampolines.h"
#include <string.h>
*/
import "C"

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
	"golang.org/x/sys/unix"
)

// The sock_*, DNS and sendfile API (the "Sockets (sock_*), DNS and sendfile"
// section of include/asyncloop.h), and the typed result getters of their
// futures.

// cBytes views C memory as a slice (nil for an empty one).
func cBytes(p unsafe.Pointer, n C.size_t) []byte {
	if n == 0 || p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(p), int(n))
}

// checkBuf checks a buffer argument (named what) and its length.
func checkBuf(p unsafe.Pointer, n C.size_t, what string) C.int {
	if (p == nil && n > 0) || n > maxLen {
		return fail(C.ALOOP_EINVAL, "%s is NULL or len too large", what)
	}
	return 0
}

// checkHostPort checks a host and port argument.
func checkHostPort(host *C.char, port C.int) C.int {
	if host == nil {
		return fail(C.ALOOP_EINVAL, "host is NULL")
	}
	if port < 0 || port > 65535 {
		return fail(C.ALOOP_EINVAL, "port %d out of range", int(port))
	}
	return 0
}

// sockRecv is aloop_sock_recv and aloop_sock_recvfrom; recv is the core.Loop
// method.
func sockRecv(loop C.uintptr_t, fd C.int, nbytes C.size_t, out *C.uintptr_t,
	recv func(l *core.Loop, fd, n int) (*core.Future, error)) C.int {
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	if nbytes > maxLen {
		return fail(C.ALOOP_EINVAL, "nbytes %d is too large", uint64(nbytes))
	}
	inject()
	f, err := recv(lo.l, int(fd), int(nbytes))
	return putFuture(f, err, out)
}

// sockRecvInto is aloop_sock_recv_into and aloop_sock_recvfrom_into; recv is
// the core.Loop method.
func sockRecvInto(loop C.uintptr_t, fd C.int, buf unsafe.Pointer, n C.size_t, out *C.uintptr_t,
	recv func(l *core.Loop, fd int, buf []byte) (*core.Future, error)) C.int {
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	if rc := checkBuf(buf, n, "buf"); rc != 0 {
		return rc
	}
	inject()
	f, err := recv(lo.l, int(fd), cBytes(buf, n))
	return putFuture(f, err, out)
}

//export aloop_sock_recv
func aloop_sock_recv(loop C.uintptr_t, fd C.int, nbytes C.size_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return sockRecv(loop, fd, nbytes, out, (*core.Loop).SockRecv)
}

//export aloop_sock_recv_into
func aloop_sock_recv_into(loop C.uintptr_t, fd C.int, buf unsafe.Pointer, n C.size_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return sockRecvInto(loop, fd, buf, n, out, (*core.Loop).SockRecvInto)
}

//export aloop_sock_recvfrom
func aloop_sock_recvfrom(loop C.uintptr_t, fd C.int, nbytes C.size_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return sockRecv(loop, fd, nbytes, out, (*core.Loop).SockRecvfrom)
}

//export aloop_sock_recvfrom_into
func aloop_sock_recvfrom_into(loop C.uintptr_t, fd C.int, buf unsafe.Pointer, n C.size_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return sockRecvInto(loop, fd, buf, n, out, (*core.Loop).SockRecvfromInto)
}

//export aloop_sock_sendall
func aloop_sock_sendall(loop C.uintptr_t, fd C.int, data unsafe.Pointer, n C.size_t, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	if rc := checkBuf(data, n, "data"); rc != 0 {
		return rc
	}
	inject()
	f, err := lo.l.SockSendall(int(fd), cBytes(data, n))
	return putFuture(f, err, out)
}

//export aloop_sock_sendto
func aloop_sock_sendto(loop C.uintptr_t, fd C.int, data unsafe.Pointer, n C.size_t, host *C.char, port C.int, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	if rc := checkBuf(data, n, "data"); rc != 0 {
		return rc
	}
	if rc := checkHostPort(host, port); rc != 0 {
		return rc
	}
	inject()
	f, err := lo.l.SockSendtoHost(int(fd), cBytes(data, n), C.GoString(host), int(port))
	return putFuture(f, err, out)
}

//export aloop_sock_connect
func aloop_sock_connect(loop C.uintptr_t, fd C.int, host *C.char, port C.int, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	if rc := checkHostPort(host, port); rc != 0 {
		return rc
	}
	inject()
	f, err := lo.l.SockConnect(int(fd), C.GoString(host), int(port))
	return putFuture(f, err, out)
}

//export aloop_sock_accept
func aloop_sock_accept(loop C.uintptr_t, fd C.int, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	inject()
	f, err := lo.l.SockAccept(int(fd))
	return putFuture(f, err, out)
}

//export aloop_sock_sendfile
func aloop_sock_sendfile(loop C.uintptr_t, fd, file C.int, offset, count C.int64_t, fallback C.int, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	if offset < 0 || count < 0 {
		return fail(C.ALOOP_EINVAL, "offset and count must not be negative")
	}
	inject()
	f, err := lo.l.SockSendfile(int(fd), int(file), int64(offset), int64(count), fallback != 0)
	return putFuture(f, err, out)
}

//export aloop_transport_sendfile
func aloop_transport_sendfile(tr C.uintptr_t, file C.int, offset, count C.int64_t, fallback C.int, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	t, rc := getTransport(tr)
	if t == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_future is NULL")
	}
	if offset < 0 || count < 0 {
		return fail(C.ALOOP_EINVAL, "offset and count must not be negative")
	}
	inject()
	f, err := t.Sendfile(int(file), int64(offset), int64(count), fallback != 0)
	return putFuture(f, err, out)
}

//export aloop_transport_writev
func aloop_transport_writev(tr C.uintptr_t, iov *C.aloop_iovec_t, iovcnt C.size_t) (rc C.int) {
	defer guard(&rc)
	t, rc := getTransport(tr)
	if t == nil {
		return rc
	}
	if iov == nil && iovcnt > 0 {
		return fail(C.ALOOP_EINVAL, "iov is NULL")
	}
	if iovcnt > 1<<24 {
		return fail(C.ALOOP_EINVAL, "iovcnt %d is too large", uint64(iovcnt))
	}
	inject()
	if iovcnt == 0 {
		return 0
	}
	vec := unsafe.Slice(iov, int(iovcnt))
	var small [16][]byte // no allocation for a few buffers
	bufs := small[:0]
	for i := range vec {
		if vec[i].base == nil && vec[i].len > 0 {
			return fail(C.ALOOP_EINVAL, "iov[%d].base is NULL", i)
		}
		if vec[i].len > maxLen {
			return fail(C.ALOOP_EINVAL, "iov[%d].len is too large", i)
		}
		if vec[i].len > 0 {
			bufs = append(bufs, cBytes(vec[i].base, vec[i].len))
		}
	}
	if err := t.Writelines(bufs); err != nil {
		return failErr(err)
	}
	return 0
}

// ---------------------------------------------------------------------------
// DNS.

//export aloop_getaddrinfo
func aloop_getaddrinfo(loop C.uintptr_t, host, service *C.char, family, socktype, proto, flags C.int, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	inject()
	f, err := lo.l.Getaddrinfo(goString(host), goString(service), int(family), int(socktype), int(proto), int(flags))
	return putFuture(f, err, out)
}

//export aloop_getnameinfo
func aloop_getnameinfo(loop C.uintptr_t, host *C.char, port, flags C.int, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := loopForFuture(loop, out)
	if lo == nil {
		return rc
	}
	if rc := checkHostPort(host, port); rc != 0 {
		return rc
	}
	inject()
	f, err := lo.l.Getnameinfo(C.GoString(host), int(port), int(flags))
	return putFuture(f, err, out)
}

// ---------------------------------------------------------------------------
// Result getters.

// futureValue returns the result of a done, successful future.
func futureValue(fut C.uintptr_t) (any, C.int) {
	fo, rc := getFuture(fut)
	if fo == nil {
		return nil, rc
	}
	v, err := fo.f.Result()
	if err != nil {
		return nil, failErr(err)
	}
	return v, 0
}

func otherKind() C.int {
	return fail(C.ALOOP_EINVAL, "the future's result is of another kind")
}

//export aloop_future_result_size
func aloop_future_result_size(fut C.uintptr_t, out *C.size_t) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return failArg(fut, getFuture, "out_size is NULL")
	}
	inject()
	v, rc := futureValue(fut)
	if rc != 0 {
		return rc
	}
	switch r := v.(type) {
	case int:
		*out = C.size_t(r)
	case int64:
		*out = C.size_t(r)
	case []byte:
		*out = C.size_t(len(r))
	case *core.Received:
		*out = C.size_t(r.N)
	default:
		return otherKind()
	}
	return 0
}

//export aloop_future_result_bytes
func aloop_future_result_bytes(fut C.uintptr_t, outData *unsafe.Pointer, outLen *C.size_t) (rc C.int) {
	defer guard(&rc)
	if outData == nil || outLen == nil {
		return failArg(fut, getFuture, "out_data or out_len is NULL")
	}
	inject()
	v, rc := futureValue(fut)
	if rc != 0 {
		return rc
	}
	var data []byte
	switch r := v.(type) {
	case []byte:
		data = r
	case *core.Received:
		if r.Data == nil {
			return otherKind()
		}
		data = r.Data
	default:
		return otherKind()
	}
	p := C.malloc(C.size_t(max(len(data), 1)))
	if p == nil {
		return fail(C.ALOOP_ENOMEM, "out of memory for %d bytes", len(data))
	}
	if len(data) > 0 {
		C.memcpy(p, unsafe.Pointer(&data[0]), C.size_t(len(data)))
	}
	*outData = p
	*outLen = C.size_t(len(data))
	return 0
}

//export aloop_buffer_free
func aloop_buffer_free(p unsafe.Pointer) (rc C.int) {
	defer guard(&rc)
	inject()
	C.free(p)
	return 0
}

//export aloop_future_result_addr
func aloop_future_result_addr(fut C.uintptr_t, host *C.char, hostlen C.size_t, port *C.int) (rc C.int) {
	defer guard(&rc)
	if host == nil && port == nil {
		return failArg(fut, getFuture, "host and out_port are both NULL")
	}
	if host != nil && hostlen == 0 {
		return failArg(fut, getFuture, "hostlen is 0")
	}
	inject()
	v, rc := futureValue(fut)
	if rc != 0 {
		return rc
	}
	var sa unix.Sockaddr
	switch r := v.(type) {
	case *core.Received:
		sa = r.Addr
	case *core.Accepted:
		sa = r.Addr
	default:
		return otherKind()
	}
	return putAddr(sa, host, hostlen, port)
}

//export aloop_future_result_fd
func aloop_future_result_fd(fut C.uintptr_t, out *C.int) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return failArg(fut, getFuture, "out_fd is NULL")
	}
	inject()
	v, rc := futureValue(fut)
	if rc != 0 {
		return rc
	}
	a, ok := v.(*core.Accepted)
	if !ok {
		return otherKind()
	}
	*out = C.int(a.Fd)
	return 0
}

//export aloop_future_result_nameinfo
func aloop_future_result_nameinfo(fut C.uintptr_t, host *C.char, hostlen C.size_t, service *C.char, servicelen C.size_t) (rc C.int) {
	defer guard(&rc)
	if (host == nil && service == nil) || (host != nil && hostlen == 0) || (service != nil && servicelen == 0) {
		return failArg(fut, getFuture, "host and service are both NULL, or a length is 0")
	}
	inject()
	v, rc := futureValue(fut)
	if rc != 0 {
		return rc
	}
	ni, ok := v.(core.NameInfo)
	if !ok {
		return otherKind()
	}
	if host != nil && hostlen < C.size_t(len(ni.Host)+1) {
		return fail(C.ALOOP_ENOSPACE, "host buffer of %d bytes is too small for %q", uint64(hostlen), ni.Host)
	}
	if service != nil && servicelen < C.size_t(len(ni.Service)+1) {
		return fail(C.ALOOP_ENOSPACE, "service buffer of %d bytes is too small for %q", uint64(servicelen), ni.Service)
	}
	if host != nil {
		copyCString(host, hostlen, ni.Host)
	}
	if service != nil {
		copyCString(service, servicelen, ni.Service)
	}
	return 0
}

// rawSockaddr encodes sa as a struct sockaddr_in / sockaddr_in6.
func rawSockaddr(sa unix.Sockaddr) []byte {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		b := make([]byte, unix.SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(b[0:], unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], uint16(a.Port))
		copy(b[4:8], a.Addr[:])
		return b
	case *unix.SockaddrInet6:
		b := make([]byte, unix.SizeofSockaddrInet6)
		binary.NativeEndian.PutUint16(b[0:], unix.AF_INET6)
		binary.BigEndian.PutUint16(b[2:], uint16(a.Port))
		copy(b[8:24], a.Addr[:])
		binary.NativeEndian.PutUint32(b[24:], a.ZoneId)
		return b
	}
	return nil
}

//export aloop_future_result_addrinfo
func aloop_future_result_addrinfo(fut C.uintptr_t, outList **C.aloop_addrinfo_t, outCount *C.size_t) (rc C.int) {
	defer guard(&rc)
	if outList == nil {
		return failArg(fut, getFuture, "out_list is NULL")
	}
	inject()
	v, rc := futureValue(fut)
	if rc != 0 {
		return rc
	}
	res, ok := v.([]core.AddrInfo)
	if !ok || len(res) == 0 {
		return otherKind()
	}
	// One block: the entries, then their strings and socket addresses.
	type ent struct {
		host, canon string
		raw         []byte
		port        int
	}
	ents := make([]ent, len(res))
	esize := int(unsafe.Sizeof(C.aloop_addrinfo_t{}))
	total := esize * len(res)
	for i, ai := range res {
		h, p := core.SockaddrString(ai.Addr)
		ents[i] = ent{host: h, canon: ai.Canonname, raw: rawSockaddr(ai.Addr), port: p}
		total += (len(h) + 1 + len(ai.Canonname) + 1 + len(ents[i].raw) + 7) &^ 7
	}
	if total > math.MaxInt32 {
		return fail(C.ALOOP_ENOMEM, "result too large")
	}
	block := C.malloc(C.size_t(total))
	if block == nil {
		return fail(C.ALOOP_ENOMEM, "out of memory")
	}
	C.memset(block, 0, C.size_t(total))
	mem := unsafe.Slice((*byte)(block), total)
	pos := esize * len(res)
	put := func(b []byte, nul bool) unsafe.Pointer {
		p := unsafe.Add(block, pos)
		copy(mem[pos:], b)
		pos += len(b)
		if nul {
			mem[pos] = 0
			pos++
		}
		return p
	}
	for i, ai := range res {
		e := (*C.aloop_addrinfo_t)(unsafe.Add(block, i*esize))
		e.size = C.size_t(esize)
		if i+1 < len(res) {
			e.next = (*C.aloop_addrinfo_t)(unsafe.Add(block, (i+1)*esize))
		}
		e.family = C.int(ai.Family)
		e._type = C.int(ai.Type)
		e.protocol = C.int(ai.Proto)
		e.port = C.int(ents[i].port)
		start := pos // 8-aligned: the socket address first
		e.addr = put(ents[i].raw, false)
		e.addrlen = C.size_t(len(ents[i].raw))
		e.host = (*C.char)(put([]byte(ents[i].host), true))
		e.canonname = (*C.char)(put([]byte(ents[i].canon), true))
		if a6, ok := ai.Addr.(*unix.SockaddrInet6); ok {
			e.scope_id = C.uint32_t(a6.ZoneId)
		}
		pos = start + ((pos - start + 7) &^ 7)
	}
	*outList = (*C.aloop_addrinfo_t)(block)
	if outCount != nil {
		*outCount = C.size_t(len(res))
	}
	return 0
}

//export aloop_addrinfo_free
func aloop_addrinfo_free(list *C.aloop_addrinfo_t) (rc C.int) {
	defer guard(&rc)
	inject()
	C.free(unsafe.Pointer(list))
	return 0
}
