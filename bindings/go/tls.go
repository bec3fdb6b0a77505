package asyncloop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"runtime"
	"time"
	"unsafe"
)

// TLSConfig holds one side's TLS settings (asyncio's SSLContext; the
// library runs Go's crypto/tls): certificates, trusted CAs, ALPN, versions,
// verification and handshake timeout. Connections copy it when they are
// made. It belongs to no loop and may be used from any goroutine. Close it
// when done; an unreachable TLSConfig is released by a cleanup.
//
// A client verifies the server's certificate by default, against the CAs
// added with LoadCAFile / LoadCAPEM / AddCA (the system's when none was),
// and checks the host name. Verification failures fail the handshake with
// ErrCert, other TLS failures with ErrTLS, a slow handshake with
// ETIMEDOUT (os.ErrDeadlineExceeded).
type TLSConfig struct {
	h       uintptr
	server  bool
	closed  bool
	cleanup runtime.Cleanup
}

// TLSVerify is a verification mode (SetVerify).
type TLSVerify int

const (
	// TLSVerifyNone checks no certificate (a server's default).
	TLSVerifyNone TLSVerify = tlsVerifyNone
	// TLSVerifyRequired requires a valid certificate from the peer (a
	// client's default; a server then requires client certificates).
	TLSVerifyRequired TLSVerify = tlsVerifyRequired
	// TLSVerifyOptional verifies a client certificate if one is sent
	// (server; for a client as Required).
	TLSVerifyOptional TLSVerify = tlsVerifyOptional
)

// NewTLSConfig creates a configuration for a client (server false) or a
// server: TLS 1.2 and 1.3, no certificate, no ALPN, the system's CAs, 60 s
// handshake timeout.
func NewTLSConfig(server bool) (*TLSConfig, error) {
	if err := ensureLoaded(); err != nil {
		return nil, err
	}
	c := &TLSConfig{server: server}
	if _, err := do(func() int32 { return lib.tlsConfigNew(&c.h, int32(b2i(server))) }); err != nil {
		return nil, err
	}
	c.cleanup = runtime.AddCleanup(c, func(h uintptr) { lib.tlsConfigFree(h) }, c.h)
	return c, nil
}

func (c *TLSConfig) handle() (uintptr, error) {
	if c == nil || lib == nil {
		return 0, ErrBadHandle
	}
	if c.closed {
		return 0, newError(ECLOSED, "the TLS config is closed")
	}
	return c.h, nil
}

func (c *TLSConfig) call(f func(uintptr) int32) error {
	h, err := c.handle()
	if err != nil {
		return err
	}
	_, err = do(func() int32 { return f(h) })
	runtime.KeepAlive(c)
	return err
}

// Close releases the configuration (connections made with it are not
// affected). Idempotent.
func (c *TLSConfig) Close() error {
	if c == nil || lib == nil {
		return ErrBadHandle
	}
	if c.closed {
		return nil
	}
	c.closed = true
	c.cleanup.Stop()
	_, err := do(func() int32 { return lib.tlsConfigFree(c.h) })
	return err
}

// LoadCertFile adds a certificate chain and its private key from PEM files
// (keyFile "": the key is in certFile). A server needs one; with several, a
// server picks the one matching the client's SNI name.
func (c *TLSConfig) LoadCertFile(certFile, keyFile string) error {
	var kp *byte
	if keyFile != "" {
		kp = cString(keyFile)
	}
	return c.call(func(h uintptr) int32 { return lib.tlsConfigLoadCertFile(h, cString(certFile), kp) })
}

// LoadCertPEM adds a certificate chain and key from PEM bytes (key nil:
// in cert).
func (c *TLSConfig) LoadCertPEM(cert, key []byte) error {
	var kp *byte
	if key != nil {
		kp = (*byte)(bufPointer(key))
	}
	err := c.call(func(h uintptr) int32 {
		return lib.tlsConfigLoadCertPem(h, (*byte)(bufPointer(cert)), uintptr(len(cert)), kp, uintptr(len(key)))
	})
	runtime.KeepAlive(cert)
	runtime.KeepAlive(key)
	return err
}

// AddCertificate adds a certificate chain with its private key, as loaded
// by tls.LoadX509KeyPair or tls.X509KeyPair.
func (c *TLSConfig) AddCertificate(cert tls.Certificate) error {
	var certPEM []byte
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if len(certPEM) == 0 {
		return errInvalid("no certificate")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return errInvalid("private key: " + err.Error())
	}
	return c.LoadCertPEM(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// LoadCAFile trusts the CA certificates of a PEM file. Once a CA is added,
// only the added CAs are trusted, unless LoadDefaultCA is called too.
func (c *TLSConfig) LoadCAFile(path string) error {
	return c.call(func(h uintptr) int32 { return lib.tlsConfigLoadCaFile(h, cString(path)) })
}

// LoadCAPEM trusts the CA certificates of PEM bytes.
func (c *TLSConfig) LoadCAPEM(pemBytes []byte) error {
	err := c.call(func(h uintptr) int32 {
		return lib.tlsConfigLoadCaPem(h, (*byte)(bufPointer(pemBytes)), uintptr(len(pemBytes)))
	})
	runtime.KeepAlive(pemBytes)
	return err
}

// AddCA trusts a CA certificate.
func (c *TLSConfig) AddCA(cert *x509.Certificate) error {
	if cert == nil {
		return errInvalid("nil certificate")
	}
	return c.LoadCAPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
}

// LoadDefaultCA trusts the system's CAs as well (asyncio's
// load_default_certs).
func (c *TLSConfig) LoadDefaultCA() error {
	return c.call(func(h uintptr) int32 { return lib.tlsConfigLoadDefaultCa(h) })
}

// SetServerName sets the name a client sends (SNI) and verifies, unless a
// connection gives its own ("" clears it).
func (c *TLSConfig) SetServerName(name string) error {
	var p *byte
	if name != "" {
		p = cString(name)
	}
	return c.call(func(h uintptr) int32 { return lib.tlsConfigSetServerHostname(h, p) })
}

// SetALPN sets the ALPN protocols in order of preference (none clears
// them).
func (c *TLSConfig) SetALPN(protocols ...string) error {
	var arr unsafe.Pointer
	ptrs, keep := cStrings(protocols)
	if len(protocols) > 0 {
		arr = unsafe.Pointer(&(*ptrs)[0])
	}
	err := c.call(func(h uintptr) int32 { return lib.tlsConfigSetAlpn(h, arr, uintptr(len(protocols))) })
	runtime.KeepAlive(ptrs)
	runtime.KeepAlive(keep)
	return err
}

// SetMinVersion sets the lowest version: tls.VersionTLS12, tls.VersionTLS13,
// or 0 for the default (1.2).
func (c *TLSConfig) SetMinVersion(v uint16) error {
	return c.call(func(h uintptr) int32 { return lib.tlsConfigSetMinVersion(h, int32(v)) })
}

// SetMaxVersion sets the highest version (0: the default, 1.3).
func (c *TLSConfig) SetMaxVersion(v uint16) error {
	return c.call(func(h uintptr) int32 { return lib.tlsConfigSetMaxVersion(h, int32(v)) })
}

// SetVerify sets how the peer's certificate is verified.
func (c *TLSConfig) SetVerify(mode TLSVerify) error {
	return c.call(func(h uintptr) int32 { return lib.tlsConfigSetVerify(h, int32(mode)) })
}

// SetHandshakeTimeout sets the handshake timeout (0: the default, 60 s).
func (c *TLSConfig) SetHandshakeTimeout(d time.Duration) error {
	if d < 0 {
		return errInvalid("negative timeout")
	}
	return c.call(func(h uintptr) int32 { return lib.tlsConfigSetHandshakeTimeout(h, d.Seconds()) })
}

// StartTLS upgrades the connection to TLS (asyncio's start_tls, e.g. after
// STARTTLS) on the side of cfg; a client verifies serverName ("": the
// config's). Data already buffered is sent first, in plaintext. The future
// resolves to the same transport once the handshake succeeded (the protocol
// receives no data until then); when it fails the transport closes.
// Cancelling it aborts the transport.
func (t *Transport) StartTLS(ctx context.Context, cfg *TLSConfig, serverName string) (*Future[*Transport], error) {
	if t == nil || lib == nil {
		return nil, ErrBadHandle
	}
	ch, err := cfg.handle()
	if err != nil {
		return nil, err
	}
	var sn *byte
	if serverName != "" {
		sn = cString(serverName)
	}
	return newOpFuture(t.loop, ctx, func(err error) error { return t.wrapErr("handshake", err) },
		func(h uintptr) (*Transport, error) {
			t.tlsInfo = nil
			return t, nil
		},
		func(out *uintptr) int32 {
			rc := lib.transportStartTls(t.handle(), ch, sn, out)
			runtime.KeepAlive(cfg)
			return rc
		})
}

type tlsState = tls.ConnectionState

// TLSConnectionState returns the TLS details of the connection
// (get_extra_info's cipher, peercert, ssl_object.version(),
// selected_alpn_protocol()): Version, CipherSuite, NegotiatedProtocol and
// PeerCertificates (the peer's leaf certificate only) are set. ErrState
// before the handshake is done, EINVAL for a transport without TLS.
func (t *Transport) TLSConnectionState() (tls.ConnectionState, error) {
	var cs tls.ConnectionState
	if t == nil || lib == nil {
		return cs, ErrBadHandle
	}
	if t.tlsInfo != nil {
		return *t.tlsInfo, nil
	}
	rc, err := t.call(lib.transportGetTlsVersion)
	if err != nil {
		return cs, err
	}
	if rc == 0 {
		return cs, errInvalid("the transport does not use TLS")
	}
	cs.Version = uint16(rc)
	cs.HandshakeComplete = true
	var buf [256]byte
	if _, err := t.call(func(h uintptr) int32 { return lib.transportGetTlsCipher(h, unsafe.Pointer(&buf[0]), uintptr(len(buf))) }); err != nil {
		return cs, err
	}
	name := goString(&buf[0])
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if s.Name == name {
			cs.CipherSuite = s.ID
		}
	}
	if _, err := t.call(func(h uintptr) int32 { return lib.transportGetTlsAlpn(h, unsafe.Pointer(&buf[0]), uintptr(len(buf))) }); err != nil {
		return cs, err
	}
	cs.NegotiatedProtocol = goString(&buf[0])
	var n uintptr
	// Asking for the size: ENOSPACE tells it.
	if _, err := t.call(func(h uintptr) int32 { return lib.transportGetPeerCertificate(h, nil, 0, &n) }); err != nil && codeOf(err) != ENOSPACE {
		return cs, err
	}
	if n > 0 {
		der := make([]byte, n)
		if _, err := t.call(func(h uintptr) int32 {
			return lib.transportGetPeerCertificate(h, unsafe.Pointer(&der[0]), n, &n)
		}); err != nil {
			return cs, err
		}
		if cert, err := x509.ParseCertificate(der); err == nil {
			cs.PeerCertificates = []*x509.Certificate{cert}
		}
	}
	t.tlsInfo = &cs
	return cs, nil
}
