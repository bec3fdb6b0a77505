package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"crypto/tls"
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
)

// ---------------------------------------------------------------------------
// aloop_tls_config_t: a handle of a core.TLSConfig (asyncio's SSLContext),
// which holds the semantics; here only arguments are checked and errors
// mapped.

func getTLSConfig(h C.uintptr_t) (*core.TLSConfig, C.int) {
	return lookup(tlsConfigs, h, "invalid TLS config handle")
}

//export aloop_tls_config_new
func aloop_tls_config_new(out *C.uintptr_t, isServer C.int) (rc C.int) {
	defer guard(&rc)
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_config is NULL")
	}
	inject()
	*out = C.uintptr_t(tlsConfigs.put(core.NewTLSConfig(isServer != 0)))
	return 0
}

//export aloop_tls_config_free
func aloop_tls_config_free(cfg C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(*core.TLSConfig) C.int { tlsConfigs.del(uintptr(cfg)); return 0 })
}

// tlsBytes borrows n bytes of C memory.
func tlsBytes(p *C.char, n C.size_t) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

//export aloop_tls_config_load_cert_file
func aloop_tls_config_load_cert_file(cfg C.uintptr_t, certfile, keyfile *C.char) (rc C.int) {
	defer guard(&rc)
	c, rc := getTLSConfig(cfg)
	if c == nil {
		return rc
	}
	if certfile == nil {
		return fail(C.ALOOP_EINVAL, "certfile is NULL")
	}
	inject()
	return failErrOrZero(c.LoadCertificateFile(C.GoString(certfile), goString(keyfile)))
}

//export aloop_tls_config_load_cert_pem
func aloop_tls_config_load_cert_pem(cfg C.uintptr_t, cert *C.char, certLen C.size_t, key *C.char, keyLen C.size_t) (rc C.int) {
	defer guard(&rc)
	c, rc := getTLSConfig(cfg)
	if c == nil {
		return rc
	}
	if cert == nil || certLen == 0 || (key == nil && keyLen != 0) || certLen > 1<<30 || keyLen > 1<<30 {
		return fail(C.ALOOP_EINVAL, "cert is NULL or empty, or key is NULL with a length")
	}
	inject()
	var keyPEM []byte
	if key != nil {
		keyPEM = tlsBytes(key, keyLen)
	}
	return failErrOrZero(c.AddCertificate(tlsBytes(cert, certLen), keyPEM))
}

//export aloop_tls_config_load_ca_file
func aloop_tls_config_load_ca_file(cfg C.uintptr_t, cafile *C.char) (rc C.int) {
	defer guard(&rc)
	c, rc := getTLSConfig(cfg)
	if c == nil {
		return rc
	}
	if cafile == nil {
		return fail(C.ALOOP_EINVAL, "cafile is NULL")
	}
	inject()
	return failErrOrZero(c.LoadCAFile(C.GoString(cafile)))
}

//export aloop_tls_config_load_ca_pem
func aloop_tls_config_load_ca_pem(cfg C.uintptr_t, pem *C.char, n C.size_t) (rc C.int) {
	defer guard(&rc)
	c, rc := getTLSConfig(cfg)
	if c == nil {
		return rc
	}
	if pem == nil || n == 0 || n > 1<<30 {
		return fail(C.ALOOP_EINVAL, "pem is NULL or empty")
	}
	inject()
	return failErrOrZero(c.AddCAs(tlsBytes(pem, n)))
}

//export aloop_tls_config_load_default_ca
func aloop_tls_config_load_default_ca(cfg C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(c *core.TLSConfig) C.int { return failErrOrZero(c.LoadSystemCAs()) })
}

//export aloop_tls_config_set_server_hostname
func aloop_tls_config_set_server_hostname(cfg C.uintptr_t, hostname *C.char) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(c *core.TLSConfig) C.int { c.SetServerHostname(goString(hostname)); return 0 })
}

//export aloop_tls_config_set_alpn
func aloop_tls_config_set_alpn(cfg C.uintptr_t, protos **C.char, count C.size_t) (rc C.int) {
	defer guard(&rc)
	c, rc := getTLSConfig(cfg)
	if c == nil {
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
			list = append(list, C.GoString(p))
		}
	}
	return failErrOrZero(c.SetALPN(list))
}

//export aloop_tls_config_set_min_version
func aloop_tls_config_set_min_version(cfg C.uintptr_t, version C.int) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(c *core.TLSConfig) C.int { return failErrOrZero(c.SetMinVersion(int(version))) })
}

//export aloop_tls_config_set_max_version
func aloop_tls_config_set_max_version(cfg C.uintptr_t, version C.int) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(c *core.TLSConfig) C.int { return failErrOrZero(c.SetMaxVersion(int(version))) })
}

//export aloop_tls_config_set_verify
func aloop_tls_config_set_verify(cfg C.uintptr_t, mode C.int) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(c *core.TLSConfig) C.int { return failErrOrZero(c.SetVerify(core.TLSVerify(mode))) })
}

//export aloop_tls_config_set_handshake_timeout
func aloop_tls_config_set_handshake_timeout(cfg C.uintptr_t, seconds C.double) (rc C.int) {
	defer guard(&rc)
	return with(cfg, getTLSConfig, func(c *core.TLSConfig) C.int {
		return failErrOrZero(c.SetHandshakeTimeout(float64(seconds)))
	})
}

// The ABI's values are core's.
const (
	_ = uint(C.ALOOP_TLS_VERIFY_NONE - core.TLSVerifyNone)
	_ = uint(core.TLSVerifyNone - C.ALOOP_TLS_VERIFY_NONE)
	_ = uint(C.ALOOP_TLS_VERIFY_REQUIRED - core.TLSVerifyRequired)
	_ = uint(core.TLSVerifyRequired - C.ALOOP_TLS_VERIFY_REQUIRED)
	_ = uint(C.ALOOP_TLS_VERIFY_OPTIONAL - core.TLSVerifyOptional)
	_ = uint(core.TLSVerifyOptional - C.ALOOP_TLS_VERIFY_OPTIONAL)
	_ = uint(C.ALOOP_TLS_VERSION_1_2 - tls.VersionTLS12)
	_ = uint(tls.VersionTLS12 - C.ALOOP_TLS_VERSION_1_2)
	_ = uint(C.ALOOP_TLS_VERSION_1_3 - tls.VersionTLS13)
	_ = uint(tls.VersionTLS13 - C.ALOOP_TLS_VERSION_1_3)
)

// tlsFromHandle resolves an optional config handle of an options struct.
func tlsFromHandle(h C.uintptr_t, wantServer bool) (*core.TLSOptions, C.int) {
	c, rc := getTLSConfig(h)
	if c == nil {
		return nil, rc
	}
	if c.IsServer() != wantServer {
		if wantServer {
			return nil, fail(C.ALOOP_EINVAL, "a server needs a server TLS config (aloop_tls_config_new(..., 1))")
		}
		return nil, fail(C.ALOOP_EINVAL, "a connection needs a client TLS config (aloop_tls_config_new(..., 0))")
	}
	return c.Options(), 0
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
	c, rc := getTLSConfig(cfg)
	if c == nil {
		return rc
	}
	if out == nil {
		return fail(C.ALOOP_EINVAL, "out_future is NULL")
	}
	inject()
	o := c.Options()
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
	if buflen < C.size_t(len(s)+1) {
		return fail(C.ALOOP_ENOSPACE, "%s %q does not fit in %d bytes", what, s, uint64(buflen))
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
		if buflen < C.size_t(len(der)) {
			return fail(C.ALOOP_ENOSPACE, "the certificate has %d bytes, the buffer %d", len(der), uint64(buflen))
		}
		copy(unsafe.Slice((*byte)(buf), len(der)), der)
		return 0
	})
}
