package core

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// TLSVerify is how a TLS side verifies its peer's certificate (the values of
// aloop_tls_verify_t).
type TLSVerify int

const (
	TLSVerifyNone     TLSVerify = 0 // no verification (a server's default)
	TLSVerifyRequired TLSVerify = 1 // a valid certificate is required (a client's default)
	TLSVerifyOptional TLSVerify = 2 // server: verify one if sent; client: as Required
)

// TLSConfig is one side's TLS settings (asyncio's SSLContext): certificate
// chains, trusted CAs, ALPN protocols, versions, verification and handshake
// timeout. It belongs to no loop; its methods may be called from any
// goroutine. A connection takes a snapshot (Options) when it is made, so
// later changes do not affect it.
type TLSConfig struct {
	mu       sync.Mutex
	server   bool
	certs    []tls.Certificate
	caPEMs   [][]byte       // CAs added with AddCAs
	sysCA    bool           // LoadSystemCAs was called
	roots    *x509.CertPool // from caPEMs and sysCA; nil: the system's
	verify   TLSVerify
	hostname string
	alpn     []string
	minV     uint16
	maxV     uint16
	timeout  float64
}

// NewTLSConfig returns a client (server false) or server configuration:
// TLS 1.2 and 1.3, no certificate, no ALPN, the system's CAs, verification
// Required for a client and None for a server, the default handshake
// timeout.
func NewTLSConfig(server bool) *TLSConfig {
	c := &TLSConfig{server: server, verify: TLSVerifyRequired}
	if server {
		c.verify = TLSVerifyNone
	}
	return c
}

// IsServer reports the side.
func (c *TLSConfig) IsServer() bool { return c.server }

// configError is an invalid setting: its message, matching ErrInvalid.
type configError string

func (e configError) Error() string        { return string(e) }
func (e configError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error { return configError(fmt.Sprintf(format, args...)) }

// AddCertificate adds a certificate chain and its private key (PEM; keyPEM
// nil: the key is in certPEM).
func (c *TLSConfig) AddCertificate(certPEM, keyPEM []byte) error {
	return c.addCertificate(certPEM, keyPEM, "certificate / key")
}

func (c *TLSConfig) addCertificate(certPEM, keyPEM []byte, what string) error {
	if keyPEM == nil {
		keyPEM = certPEM
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return invalidf("%s: %v", what, err)
	}
	c.mu.Lock()
	c.certs = append(c.certs, cert)
	c.mu.Unlock()
	return nil
}

// LoadCertificateFile is AddCertificate from PEM files (keyfile "": the key
// is in certfile).
func (c *TLSConfig) LoadCertificateFile(certfile, keyfile string) error {
	if keyfile == "" {
		keyfile = certfile
	}
	certPEM, err := os.ReadFile(certfile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(keyfile)
	if err != nil {
		return err
	}
	return c.addCertificate(certPEM, keyPEM, certfile+" / "+keyfile)
}

// AddCAs trusts the CA certificates of pem (added to those added before).
// Once a CA is added, only the added CAs are trusted, unless LoadSystemCAs is
// called too.
func (c *TLSConfig) AddCAs(pem []byte) error { return c.addCAs(pem, "CA PEM") }

// LoadCAFile is AddCAs from a PEM file.
func (c *TLSConfig) LoadCAFile(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return c.addCAs(pem, path)
}

func (c *TLSConfig) addCAs(pem []byte, what string) error {
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return invalidf("%s: no PEM certificate found", what)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.caPEMs = append(c.caPEMs, append([]byte(nil), pem...))
	return c.rebuildRoots()
}

// LoadSystemCAs trusts the system's CAs as well (asyncio's
// load_default_certs).
func (c *TLSConfig) LoadSystemCAs() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sysCA = true
	return c.rebuildRoots()
}

// rebuildRoots recomputes the trusted CAs (c.mu held).
func (c *TLSConfig) rebuildRoots() error {
	if !c.sysCA && len(c.caPEMs) == 0 {
		c.roots = nil
		return nil
	}
	pool := x509.NewCertPool()
	if c.sysCA {
		sys, err := x509.SystemCertPool() // a copy
		if err != nil {
			return &OpError{Op: "system CA certificates", Addr: err.Error(), Err: unix.ENOENT}
		}
		pool = sys
	}
	for _, pem := range c.caPEMs {
		pool.AppendCertsFromPEM(pem)
	}
	c.roots = pool
	return nil
}

// SetServerHostname sets the name a client sends (SNI) and verifies, unless
// a connection gives its own ("" clears it).
func (c *TLSConfig) SetServerHostname(name string) {
	c.mu.Lock()
	c.hostname = name
	c.mu.Unlock()
}

// SetALPN sets the ALPN protocols in order of preference (none clears
// them); each is 1 to 255 bytes.
func (c *TLSConfig) SetALPN(protos []string) error {
	for _, p := range protos {
		if len(p) == 0 || len(p) > 255 {
			return invalidf("ALPN protocol %q must be 1 to 255 bytes", p)
		}
	}
	c.mu.Lock()
	c.alpn = append([]string(nil), protos...)
	c.mu.Unlock()
	return nil
}

// SetMinVersion sets the lowest version: 0 (the default, 1.2),
// tls.VersionTLS12 or tls.VersionTLS13 (the values on the wire, as
// ALOOP_TLS_VERSION_1_2 / _1_3).
func (c *TLSConfig) SetMinVersion(v int) error { return c.setVersion(&c.minV, v) }

// SetMaxVersion sets the highest version (0: the default, 1.3).
func (c *TLSConfig) SetMaxVersion(v int) error { return c.setVersion(&c.maxV, v) }

func (c *TLSConfig) setVersion(bound *uint16, v int) error {
	switch v {
	case 0, tls.VersionTLS12, tls.VersionTLS13:
	default:
		return invalidf("unsupported TLS version %#x (TLS 1.2 or 1.3)", v)
	}
	c.mu.Lock()
	*bound = uint16(v)
	c.mu.Unlock()
	return nil
}

// SetVerify sets the verification of the peer's certificate.
func (c *TLSConfig) SetVerify(mode TLSVerify) error {
	switch mode {
	case TLSVerifyNone, TLSVerifyRequired, TLSVerifyOptional:
	default:
		return invalidf("invalid verify mode %d", int(mode))
	}
	c.mu.Lock()
	c.verify = mode
	c.mu.Unlock()
	return nil
}

// SetHandshakeTimeout sets the handshake timeout in seconds (0: the
// default, DefaultTLSHandshakeTimeout).
func (c *TLSConfig) SetHandshakeTimeout(seconds float64) error {
	if math.IsNaN(seconds) || seconds < 0 || seconds > 1e9 {
		return invalidf("handshake timeout must be 0 (default) or a positive number of seconds")
	}
	c.mu.Lock()
	c.timeout = seconds
	c.mu.Unlock()
	return nil
}

// Options returns the options of a connection, server or StartTLS made
// now: a snapshot of the configuration.
func (c *TLSConfig) Options() *TLSOptions {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := &tls.Config{
		Certificates: append([]tls.Certificate(nil), c.certs...),
		NextProtos:   append([]string(nil), c.alpn...),
		MinVersion:   c.minV,
		MaxVersion:   c.maxV,
	}
	if c.server {
		cfg.ClientCAs = c.roots
		switch c.verify {
		case TLSVerifyRequired:
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		case TLSVerifyOptional:
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		default:
			cfg.ClientAuth = tls.NoClientCert
		}
	} else {
		cfg.RootCAs = c.roots
		cfg.ServerName = c.hostname
		cfg.InsecureSkipVerify = c.verify == TLSVerifyNone
	}
	return &TLSOptions{Config: cfg, ServerSide: c.server, HandshakeTimeout: c.timeout}
}
