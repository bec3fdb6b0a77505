package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"crypto/tls"
	"crypto/x509"
	"math"
	"os"
	"sync"
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
)

// ---------------------------------------------------------------------------
// aloop_tls_config_t: TLS settings of one side (asyncio's SSLContext). Not
// tied to a loop; a mutex makes concurrent use from several loop threads
// safe. Connections copy it when they are made (options()).

type tlsConfigObj struct {
	mu       sync.Mutex
	h        uintptr
	server   bool
	certs    []tls.Certificate
	caPEMs   [][]byte       // CAs loaded with load_ca_*
	sysCA    bool           // load_default_ca was called
	roots    *x509.CertPool // from caPEMs and sysCA; nil: the system's
	verify   int
	hostname string
	alpn     []string
	minV     uint16
	maxV     uint16
	timeout  float64
}

func getTLSConfig(h C.uintptr_t) (*tlsConfigObj, C.int) {
	return lookup[tlsConfigObj](h, kTLSConfig, "invalid TLS config handle")
}

// options returns the core options of a connection made now with co.
func (co *tlsConfigObj) options() *core.TLSOptions {
	co.mu.Lock()
	defer co.mu.Unlock()
	cfg := &tls.Config{
		Certificates: append([]tls.Certificate(nil), co.certs...),
		NextProtos:   append([]string(nil), co.alpn...),
		MinVersion:   co.minV,
		MaxVersion:   co.maxV,
	}
	if co.server {
		cfg.ClientCAs = co.roots
		switch co.verify {
		case C.ALOOP_TLS_VERIFY_REQUIRED:
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		case C.ALOOP_TLS_VERIFY_OPTIONAL:
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		default:
			cfg.ClientAuth = tls.NoClientCert
		}
	} else {
		cfg.RootCAs = co.roots
		cfg.ServerName = co.hostname
		cfg.InsecureSkipVerify = co.verify == C.ALOOP_TLS_VERIFY_NONE
	}
	return &core.TLSOptions{Config: cfg, ServerSide: co.server, HandshakeTimeout: co.timeout}
}

//export aloop_tls_config_new
func aloop_tls_config_new(out *C.uintptr_t, isServer C.int) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_config is NULL")
	}
	inject()
	co := &tlsConfigObj{server: isServer != 0, verify: C.ALOOP_TLS_VERIFY_REQUIRED}
	if co.server {
		co.verify = C.ALOOP_TLS_VERIFY_NONE
	}
	co.h = reg.put(kTLSConfig, co)
	*out = C.uintptr_t(co.h)
	return 0
}

//export aloop_tls_config_free
func aloop_tls_config_free(cfg C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(co *tlsConfigObj) C.int { reg.del(co.h, kTLSConfig); return 0 })
}

// cBytes borrows len bytes of C memory.
func tlsBytes(p *C.char, n C.size_t) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

func (co *tlsConfigObj) addCert(cert tls.Certificate) {
	co.mu.Lock()
	co.certs = append(co.certs, cert)
	co.mu.Unlock()
}

func readFileErr(path string) ([]byte, C.int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, failErr(err)
	}
	return b, 0
}

//export aloop_tls_config_load_cert_file
func aloop_tls_config_load_cert_file(cfg C.uintptr_t, certfile, keyfile *C.char) (rc C.int) {
	defer guard(&rc)
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	if certfile == nil {
		return fail(C.ALOOP_EINVAL, "certfile is NULL")
	}
	inject()
	cp := C.GoString(certfile)
	kp := cp
	if keyfile != nil {
		kp = C.GoString(keyfile)
	}
	certPEM, rc := readFileErr(cp)
	if rc != 0 {
		return rc
	}
	keyPEM, rc := readFileErr(kp)
	if rc != 0 {
		return rc
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fail(C.ALOOP_EINVAL, "%s / %s: %v", cp, kp, err)
	}
	co.addCert(cert)
	return 0
}

//export aloop_tls_config_load_cert_pem
func aloop_tls_config_load_cert_pem(cfg C.uintptr_t, cert *C.char, certLen C.size_t, key *C.char, keyLen C.size_t) (rc C.int) {
	defer guard(&rc)
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	if cert == nil || certLen == 0 || (key == nil && keyLen != 0) || certLen > 1<<30 || keyLen > 1<<30 {
		return fail(C.ALOOP_EINVAL, "cert is NULL or empty, or key is NULL with a length")
	}
	inject()
	certPEM := tlsBytes(cert, certLen)
	keyPEM := certPEM
	if key != nil {
		keyPEM = tlsBytes(key, keyLen)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fail(C.ALOOP_EINVAL, "certificate / key: %v", err)
	}
	co.addCert(c)
	return 0
}

// rebuildRoots recomputes the trusted CAs (co.mu held).
func (co *tlsConfigObj) rebuildRoots() C.int {
	if !co.sysCA && len(co.caPEMs) == 0 {
		co.roots = nil
		return 0
	}
	pool := x509.NewCertPool()
	if co.sysCA {
		sys, err := x509.SystemCertPool() // a copy
		if err != nil {
			return fail(C.ALOOP_ENOENT, "system CA certificates: %v", err)
		}
		pool = sys
	}
	for _, pem := range co.caPEMs {
		pool.AppendCertsFromPEM(pem)
	}
	co.roots = pool
	return 0
}

func (co *tlsConfigObj) addCAs(pem []byte, what string) C.int {
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fail(C.ALOOP_EINVAL, "%s: no PEM certificate found", what)
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	co.caPEMs = append(co.caPEMs, append([]byte(nil), pem...))
	return co.rebuildRoots()
}

//export aloop_tls_config_load_ca_file
func aloop_tls_config_load_ca_file(cfg C.uintptr_t, cafile *C.char) (rc C.int) {
	defer guard(&rc)
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	if cafile == nil {
		return fail(C.ALOOP_EINVAL, "cafile is NULL")
	}
	inject()
	path := C.GoString(cafile)
	pem, rc := readFileErr(path)
	if rc != 0 {
		return rc
	}
	return co.addCAs(pem, path)
}

//export aloop_tls_config_load_ca_pem
func aloop_tls_config_load_ca_pem(cfg C.uintptr_t, pem *C.char, n C.size_t) (rc C.int) {
	defer guard(&rc)
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	if pem == nil || n == 0 || n > 1<<30 {
		return fail(C.ALOOP_EINVAL, "pem is NULL or empty")
	}
	inject()
	return co.addCAs(tlsBytes(pem, n), "CA PEM")
}

//export aloop_tls_config_load_default_ca
func aloop_tls_config_load_default_ca(cfg C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(co *tlsConfigObj) C.int {
		co.mu.Lock()
		defer co.mu.Unlock()
		co.sysCA = true
		return co.rebuildRoots()
	})
}

//export aloop_tls_config_set_server_hostname
func aloop_tls_config_set_server_hostname(cfg C.uintptr_t, hostname *C.char) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(co *tlsConfigObj) C.int {
		co.mu.Lock()
		co.hostname = goString(hostname)
		co.mu.Unlock()
		return 0
	})
}

//export aloop_tls_config_set_alpn
func aloop_tls_config_set_alpn(cfg C.uintptr_t, protos **C.char, count C.size_t) (rc C.int) {
	defer guard(&rc)
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	if count > 0 && protos == nil || count > 1024 {
		return fail(C.ALOOP_EINVAL, "protocols is NULL or count is too large")
	}
	inject()
	var list []string
	if count > 0 {
		for i, p := range unsafe.Slice(protos, int(count)) {
			if p == nil {
				return fail(C.ALOOP_EINVAL, "protocols[%d] is NULL", i)
			}
			s := C.GoString(p)
			if len(s) == 0 || len(s) > 255 {
				return fail(C.ALOOP_EINVAL, "ALPN protocol %q must be 1 to 255 bytes", s)
			}
			list = append(list, s)
		}
	}
	co.mu.Lock()
	co.alpn = list
	co.mu.Unlock()
	return 0
}

func tlsVersion(v C.int) (uint16, bool) {
	switch v {
	case 0:
		return 0, true
	case C.ALOOP_TLS_VERSION_1_2:
		return tls.VersionTLS12, true
	case C.ALOOP_TLS_VERSION_1_3:
		return tls.VersionTLS13, true
	}
	return 0, false
}

// setTLSVersion is aloop_tls_config_set_min_version and _max_version: field
// picks the bound it sets.
func setTLSVersion(cfg C.uintptr_t, version C.int, field func(co *tlsConfigObj) *uint16) C.int {
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	v, ok := tlsVersion(version)
	if !ok {
		return fail(C.ALOOP_EINVAL, "unsupported TLS version %#x (ALOOP_TLS_VERSION_1_2 or _1_3)", int(version))
	}
	inject()
	co.mu.Lock()
	*field(co) = v
	co.mu.Unlock()
	return 0
}

//export aloop_tls_config_set_min_version
func aloop_tls_config_set_min_version(cfg C.uintptr_t, version C.int) (rc C.int) {
	defer guard(&rc)
	return setTLSVersion(cfg, version, func(co *tlsConfigObj) *uint16 { return &co.minV })
}

//export aloop_tls_config_set_max_version
func aloop_tls_config_set_max_version(cfg C.uintptr_t, version C.int) (rc C.int) {
	defer guard(&rc)
	return setTLSVersion(cfg, version, func(co *tlsConfigObj) *uint16 { return &co.maxV })
}

//export aloop_tls_config_set_verify
func aloop_tls_config_set_verify(cfg C.uintptr_t, mode C.int) (rc C.int) {
	defer guard(&rc)
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	switch mode {
	case C.ALOOP_TLS_VERIFY_NONE, C.ALOOP_TLS_VERIFY_REQUIRED, C.ALOOP_TLS_VERIFY_OPTIONAL:
	default:
		return fail(C.ALOOP_EINVAL, "invalid verify mode %d", int(mode))
	}
	inject()
	co.mu.Lock()
	co.verify = int(mode)
	co.mu.Unlock()
	return 0
}

//export aloop_tls_config_set_handshake_timeout
func aloop_tls_config_set_handshake_timeout(cfg C.uintptr_t, seconds C.double) (rc C.int) {
	defer guard(&rc)
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	s := float64(seconds)
	if math.IsNaN(s) || s < 0 || s > 1e9 {
		return fail(C.ALOOP_EINVAL, "handshake timeout must be 0 (default) or a positive number of seconds")
	}
	inject()
	co.mu.Lock()
	co.timeout = s
	co.mu.Unlock()
	return 0
}

// tlsFromHandle resolves an optional config handle of an options struct.
func tlsFromHandle(h C.uintptr_t, wantServer bool) (*core.TLSOptions, C.int) {
	co, rc := getTLSConfig(h)
	if co == nil {
		return nil, rc
	}
	if co.server != wantServer {
		if wantServer {
			return nil, fail(C.ALOOP_EINVAL, "a server needs a server TLS config (aloop_tls_config_new(..., 1))")
		}
		return nil, fail(C.ALOOP_EINVAL, "a connection needs a client TLS config (aloop_tls_config_new(..., 0))")
	}
	return co.options(), 0
}

// ---------------------------------------------------------------------------
// start_tls and the TLS information of a transport.

//export aloop_transport_start_tls
func aloop_transport_start_tls(tr C.uintptr_t, cfg C.uintptr_t, hostname *C.char, out *C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	t, rc := getTransport(tr)
	if t == nil {
		return rc
	}
	co, rc := getTLSConfig(cfg)
	if co == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_future is NULL")
	}
	inject()
	o := co.options()
	if hostname != nil {
		if o.ServerSide {
			return fail(C.ALOOP_EINVAL, "server_hostname is only for the client side")
		}
		o.ServerHostname = C.GoString(hostname)
	}
	fut, err := t.StartTLS(o)
	return putFuture(fut, err, out)
}

// tlsState returns the TLS state of a transport after its handshake.
func tlsState(t *core.Transport) (tls.ConnectionState, C.int) {
	cs, ok := t.TLSConnectionState()
	if !ok {
		if t.IsTLS() {
			return cs, fail(C.ALOOP_ESTATE, "the TLS handshake is not complete")
		}
		return cs, fail(C.ALOOP_EINVAL, "the transport does not use TLS")
	}
	return cs, 0
}

//export aloop_transport_get_tls_version
func aloop_transport_get_tls_version(tr C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int {
		if !t.IsTLS() {
			return 0
		}
		cs, rc := tlsState(t)
		if rc != 0 {
			return rc
		}
		return C.int(cs.Version)
	})
}

func copyName(buf *C.char, buflen C.size_t, s, what string) C.int {
	if buf == nil || buflen == 0 {
		return fail(C.ALOOP_EINVAL, "buffer is NULL or empty")
	}
	if int(buflen) < len(s)+1 {
		return fail(C.ALOOP_ENOSPACE, "%s %q does not fit in %d bytes", what, s, int(buflen))
	}
	copyCString(buf, buflen, s)
	return 0
}

//export aloop_transport_get_tls_cipher
func aloop_transport_get_tls_cipher(tr C.uintptr_t, buf *C.char, buflen C.size_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int {
		cs, rc := tlsState(t)
		if rc != 0 {
			return rc
		}
		return copyName(buf, buflen, tls.CipherSuiteName(cs.CipherSuite), "cipher name")
	})
}

//export aloop_transport_get_tls_alpn
func aloop_transport_get_tls_alpn(tr C.uintptr_t, buf *C.char, buflen C.size_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int {
		cs, rc := tlsState(t)
		if rc != 0 {
			return rc
		}
		return copyName(buf, buflen, cs.NegotiatedProtocol, "ALPN protocol")
	})
}

//export aloop_transport_get_peer_certificate
func aloop_transport_get_peer_certificate(tr C.uintptr_t, buf unsafe.Pointer, buflen C.size_t, outLen *C.size_t) (rc C.int) {
	defer guard(&rc)
	return transportOp(tr, func(t *core.Transport) C.int {
		if outLen == nil || (buf == nil && buflen > 0) {
			return fail(C.ALOOP_EINVAL, "out_len is NULL, or buf is NULL with a length")
		}
		cs, rc := tlsState(t)
		if rc != 0 {
			return rc
		}
		var der []byte
		if len(cs.PeerCertificates) > 0 {
			der = cs.PeerCertificates[0].Raw
		}
		*outLen = C.size_t(len(der))
		if len(der) == 0 {
			return 0
		}
		if int(buflen) < len(der) {
			return fail(C.ALOOP_ENOSPACE, "the certificate has %d bytes, the buffer %d", len(der), int(buflen))
		}
		copy(unsafe.Slice((*byte)(buf), len(der)), der)
		return 0
	})
}
