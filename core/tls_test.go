package core

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------------
// Certificates generated at run time: a CA and leaves signed by it.

type testPKI struct {
	ca        *x509.Certificate
	caKey     *ecdsa.PrivateKey
	pool      *x509.CertPool
	server    tls.Certificate // localhost, 127.0.0.1, ::1
	expired   tls.Certificate // signed by the CA, expired
	wrongHost tls.Certificate // signed by the CA, for wrong.example only
	selfSig   tls.Certificate // self-signed, localhost
	client    tls.Certificate // a client certificate signed by the CA
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

var serial int64 = 100

func leafTemplate(cn string, dns []string, ips []net.IP, notBefore, notAfter time.Time, client bool) *x509.Certificate {
	serial++
	eku := x509.ExtKeyUsageServerAuth
	if client {
		eku = x509.ExtKeyUsageClientAuth
	}
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{eku},
	}
}

func signLeaf(tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) tls.Certificate {
	key := mustKey()
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func getPKI() *testPKI {
	pkiOnce.Do(func() {
		now := time.Now()
		p := &testPKI{caKey: mustKey()}
		caT := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "asyncloop test CA"},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, caT, caT, &p.caKey.PublicKey, p.caKey)
		if err != nil {
			panic(err)
		}
		p.ca, _ = x509.ParseCertificate(der)
		p.pool = x509.NewCertPool()
		p.pool.AddCert(p.ca)
		local := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
		p.server = signLeaf(leafTemplate("localhost", []string{"localhost"}, local, now.Add(-time.Hour), now.Add(24*time.Hour), false), p.ca, p.caKey)
		p.expired = signLeaf(leafTemplate("localhost", []string{"localhost"}, local, now.Add(-48*time.Hour), now.Add(-24*time.Hour), false), p.ca, p.caKey)
		p.wrongHost = signLeaf(leafTemplate("wrong.example", []string{"wrong.example"}, nil, now.Add(-time.Hour), now.Add(24*time.Hour), false), p.ca, p.caKey)
		p.selfSig = signLeaf(leafTemplate("localhost", []string{"localhost"}, local, now.Add(-time.Hour), now.Add(24*time.Hour), false), nil, nil)
		p.client = signLeaf(leafTemplate("client", nil, nil, now.Add(-time.Hour), now.Add(24*time.Hour), true), p.ca, p.caKey)
		pki = p
	})
	return pki
}

func srvTLSOpts(cert tls.Certificate) *TLSOptions {
	return &TLSOptions{Config: &tls.Config{Certificates: []tls.Certificate{cert}}}
}

func clientTLS() *TLSOptions {
	return &TLSOptions{Config: &tls.Config{RootCAs: getPKI().pool}}
}

// ---------------------------------------------------------------------------
// Protocols.

// tlsRecorder records every callback of a connection.
type tlsRecorder struct {
	BaseProtocol
	h                *harness
	t                *Transport
	made, eofs, lost int
	lostErr          error
	data             bytes.Buffer
	echo             bool
	pauseOnData      bool
	onMade           func(t *Transport)
}

func (p *tlsRecorder) ConnectionMade(t *Transport) {
	p.h.onLoop("connection_made")
	p.made++
	p.t = t
	if p.onMade != nil {
		p.onMade(t)
	}
}

func (p *tlsRecorder) DataReceived(t *Transport, b []byte) {
	if p.made != 1 {
		p.h.t.Errorf("data_received before connection_made")
	}
	if p.echo {
		if err := t.Write(b); err != nil {
			p.h.t.Errorf("echo write: %v", err)
		}
		return
	}
	p.data.Write(b)
	if p.pauseOnData {
		t.PauseReading()
	}
}

func (p *tlsRecorder) EOFReceived(*Transport) bool { p.eofs++; return false }

func (p *tlsRecorder) ConnectionLost(t *Transport, err error) {
	p.lost++
	p.lostErr = err
}

// tlsServe starts a TLS server on 127.0.0.1 whose connections get protocols
// from newProto.
func (h *harness) tlsServe(o *TLSOptions, newProto func() Protocol) (*Server, int) {
	h.t.Helper()
	f, err := h.l.CreateServer("127.0.0.1", 0, func(t *Transport) error {
		t.SetProtocol(newProto())
		return nil
	}, &ServerOptions{TLS: o})
	if err != nil {
		h.t.Fatalf("CreateServer: %v", err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		h.t.Fatalf("CreateServer future: %v", err)
	}
	s := v.(*Server)
	_, port := SockaddrString(s.Addrs()[0])
	return s, port
}

func tlsPattern(n int) []byte { return pattern(n, 7) }

// ---------------------------------------------------------------------------
// Tests.

// echoOnce connects with copts to a TLS echo server, sends payload, reads it
// back and closes; it returns both sides' protocols and transports' states.
func tlsEcho(t *testing.T, h *harness, sopts, copts *TLSOptions, payload []byte) (srv, cli *tlsRecorder, scs, ccs tls.ConnectionState) {
	var servers []*tlsRecorder
	s, port := h.tlsServe(sopts, func() Protocol {
		p := &tlsRecorder{h: h, echo: true}
		servers = append(servers, p)
		return p
	})
	defer s.Close()
	cli = &tlsRecorder{h: h}
	f, err := h.l.CreateConnection("127.0.0.1", port, cli, &ConnectOptions{TLS: copts})
	if err != nil {
		t.Fatalf("CreateConnection: %v", err)
	}
	v, err := h.await(f, 10*time.Second)
	if err != nil {
		t.Fatalf("TLS connect: %v", err)
	}
	tr := v.(*Transport)
	if cli.made != 1 || cli.t != tr {
		t.Fatalf("connection_made ran %d times before the future resolved", cli.made)
	}
	var ok bool
	if ccs, ok = tr.TLSConnectionState(); !ok {
		t.Fatalf("no TLS state on the client transport")
	}
	if err := tr.Write(payload); err != nil {
		t.Fatalf("Write: %v", err)
	}
	h.runUntil("echo", 60*time.Second, func() bool { return cli.data.Len() >= len(payload) || cli.lost > 0 })
	if !bytes.Equal(cli.data.Bytes(), payload) {
		t.Fatalf("echoed %d bytes, want %d (equal=%v)", cli.data.Len(), len(payload), bytes.Equal(cli.data.Bytes(), payload))
	}
	if len(servers) != 1 || servers[0].made != 1 {
		t.Fatalf("server protocols: %d", len(servers))
	}
	srv = servers[0]
	if scs, ok = srv.t.TLSConnectionState(); !ok {
		t.Fatalf("no TLS state on the server transport")
	}
	tr.Close()
	h.runUntil("close", 10*time.Second, func() bool { return cli.lost == 1 && srv.lost == 1 })
	return
}

func TestTLSEcho10MB(t *testing.T) {
	h := newHarness(t)
	p := getPKI()
	payload := tlsPattern(10 << 20)
	srv, cli, scs, ccs := tlsEcho(t, h, srvTLSOpts(p.server), clientTLS(), payload)
	if cli.lostErr != nil || srv.lostErr != nil {
		t.Fatalf("connection_lost errors: client %v, server %v", cli.lostErr, srv.lostErr)
	}
	// The client's close sent close_notify: the server saw a clean EOF.
	if srv.eofs != 1 {
		t.Fatalf("server eof_received ran %d times, want 1 (close_notify)", srv.eofs)
	}
	if ccs.Version != tls.VersionTLS13 || scs.Version != tls.VersionTLS13 {
		t.Fatalf("versions %x %x", ccs.Version, scs.Version)
	}
	if len(ccs.PeerCertificates) == 0 || !bytes.Equal(ccs.PeerCertificates[0].Raw, p.server.Certificate[0]) {
		t.Fatalf("client does not see the server's certificate")
	}
	if tls.CipherSuiteName(ccs.CipherSuite) == "" {
		t.Fatalf("no cipher suite")
	}
}

func TestTLSVersions12And13(t *testing.T) {
	h := newHarness(t)
	p := getPKI()
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c := clientTLS()
		c.Config.MinVersion, c.Config.MaxVersion = v, v
		_, _, scs, ccs := tlsEcho(t, h, srvTLSOpts(p.server), c, tlsPattern(100000))
		if ccs.Version != v || scs.Version != v {
			t.Fatalf("want version %x, got client %x server %x", v, ccs.Version, scs.Version)
		}
		name := tls.CipherSuiteName(ccs.CipherSuite)
		if v == tls.VersionTLS13 && !strings.HasPrefix(name, "TLS_AES") && !strings.HasPrefix(name, "TLS_CHACHA20") {
			t.Fatalf("TLS 1.3 cipher %q", name)
		}
		if v == tls.VersionTLS12 && !strings.HasPrefix(name, "TLS_ECDHE") {
			t.Fatalf("TLS 1.2 cipher %q", name)
		}
	}
	// No common version: the handshake fails with ErrTLS (not ErrCert).
	c := clientTLS()
	c.Config.MaxVersion = tls.VersionTLS12
	so := srvTLSOpts(p.server)
	so.Config.MinVersion = tls.VersionTLS13
	s, port := h.tlsServe(so, func() Protocol { return &tlsRecorder{h: h} })
	defer s.Close()
	f, _ := h.l.CreateConnection("127.0.0.1", port, &tlsRecorder{h: h}, &ConnectOptions{TLS: c})
	_, err := h.await(f, 10*time.Second)
	if !errors.Is(err, ErrTLS) || errors.Is(err, ErrCert) {
		t.Fatalf("version mismatch: %v", err)
	}
}

func TestTLSALPN(t *testing.T) {
	h := newHarness(t)
	so := srvTLSOpts(getPKI().server)
	so.Config.NextProtos = []string{"h2", "http/1.1"}
	c := clientTLS()
	c.Config.NextProtos = []string{"spdy/3", "http/1.1"}
	_, _, scs, ccs := tlsEcho(t, h, so, c, []byte("x"))
	if ccs.NegotiatedProtocol != "http/1.1" || scs.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("ALPN: client %q server %q", ccs.NegotiatedProtocol, scs.NegotiatedProtocol)
	}
}

func TestTLSBadCertificates(t *testing.T) {
	h := newHarness(t)
	p := getPKI()
	cases := []struct {
		name string
		cert tls.Certificate
		want string
	}{
		{"self-signed", p.selfSig, "unknown authority"},
		{"expired", p.expired, "expired"},
		{"wrong host", p.wrongHost, "not localhost"},
	}
	for _, c := range cases {
		var srvProtos []*tlsRecorder
		var excs []*ExceptionContext
		h.l.SetDebug(true) // server-side failures go to the exception handler
		h.l.SetExceptionHandler(func(l *Loop, ctx *ExceptionContext) { excs = append(excs, ctx) })
		s, port := h.tlsServe(srvTLSOpts(c.cert), func() Protocol {
			pr := &tlsRecorder{h: h}
			srvProtos = append(srvProtos, pr)
			return pr
		})
		cli := &tlsRecorder{h: h}
		f, err := h.l.CreateConnection("localhost", port, cli, &ConnectOptions{TLS: clientTLS(), Family: unix.AF_INET})
		if err != nil {
			t.Fatalf("%s: CreateConnection: %v", c.name, err)
		}
		_, err = h.await(f, 10*time.Second)
		if !errors.Is(err, ErrCert) || !errors.Is(err, ErrTLS) {
			t.Fatalf("%s: want a certificate error, got %v", c.name, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: error %q does not say %q", c.name, err, c.want)
		}
		h.runUntil("server side closed", 5*time.Second, func() bool { return len(excs) > 0 })
		h.runFor(20 * time.Millisecond)
		if cli.made != 0 || cli.lost != 0 {
			t.Fatalf("%s: client protocol callbacks ran: made %d lost %d", c.name, cli.made, cli.lost)
		}
		for _, sp := range srvProtos {
			if sp.made != 0 || sp.lost != 0 {
				t.Fatalf("%s: server protocol callbacks ran", c.name)
			}
		}
		if excs[0].Message != "TLS handshake failed" || excs[0].Transport == nil || excs[0].Server != s {
			t.Fatalf("%s: exception context %+v", c.name, excs[0])
		}
		s.Close()
		h.runFor(10 * time.Millisecond)
		h.l.SetExceptionHandler(nil)
		h.l.SetDebug(false)
	}
	// Verification off accepts the self-signed certificate.
	var sp *tlsRecorder
	s, port := h.tlsServe(srvTLSOpts(p.selfSig), func() Protocol { sp = &tlsRecorder{h: h}; return sp })
	defer s.Close()
	cli := &tlsRecorder{h: h}
	f, _ := h.l.CreateConnection("127.0.0.1", port, cli, &ConnectOptions{TLS: &TLSOptions{Config: &tls.Config{InsecureSkipVerify: true}}})
	v, err := h.await(f, 10*time.Second)
	if err != nil {
		t.Fatalf("verify off: %v", err)
	}
	v.(*Transport).Abort()
	h.runUntil("abort", 5*time.Second, func() bool { return cli.lost == 1 && sp != nil && sp.lost == 1 })
}

func TestTLSNeedsServerHostname(t *testing.T) {
	h := newHarness(t)
	fd, _ := newStreamSocket(unix.AF_INET)
	defer unix.Close(fd)
	// A socket without a host: nothing to verify the certificate against.
	_, err := h.l.CreateConnection("", 0, &tlsRecorder{h: h}, &ConnectOptions{HasSock: true, Sock: fd, TLS: clientTLS()})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	_, err = h.l.CreateServer("127.0.0.1", 0, func(*Transport) error { return nil }, &ServerOptions{TLS: &TLSOptions{Config: &tls.Config{}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("server without certificate: want ErrInvalid, got %v", err)
	}
}

// TestTLSStartTLS upgrades a plain connection (STARTTLS) on both sides.
func TestTLSStartTLS(t *testing.T) {
	h := newHarness(t)
	p := getPKI()
	var srv *tlsRecorder
	var srvFut *Future
	s, port := h.serve(func() Protocol {
		srv = &tlsRecorder{h: h}
		srv.onMade = func(tr *Transport) {}
		return srv
	})
	defer s.Close()
	cli := &tlsRecorder{h: h}
	f, _ := h.l.CreateConnection("127.0.0.1", port, cli, nil)
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ct := v.(*Transport)
	ct.Write([]byte("STARTTLS\n"))
	h.runUntil("STARTTLS", 5*time.Second, func() bool { return srv != nil && srv.data.Len() == 9 })
	st := srv.t
	// The server answers in plaintext, then starts TLS; its next write is
	// queued until the handshake is done.
	st.Write([]byte("OK\n"))
	so := srvTLSOpts(p.server)
	so.ServerSide = true
	srvFut, err = st.StartTLS(so)
	if err != nil {
		t.Fatalf("server StartTLS: %v", err)
	}
	if err := st.Write([]byte("secret from server")); err != nil {
		t.Fatal(err)
	}
	if !st.IsTLS() || st.CanWriteEOF() {
		t.Fatalf("IsTLS/CanWriteEOF")
	}
	h.runUntil("OK", 5*time.Second, func() bool { return cli.data.Len() == 3 })
	co := clientTLS()
	co.ServerHostname = "localhost"
	cliFut, err := ct.StartTLS(co)
	if err != nil {
		t.Fatalf("client StartTLS: %v", err)
	}
	if _, err := ct.StartTLS(co); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second StartTLS: %v", err)
	}
	if _, err := h.await(cliFut, 10*time.Second); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if _, err := h.await(srvFut, 10*time.Second); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	ct.Write([]byte(" and from client"))
	h.runUntil("secrets", 5*time.Second, func() bool {
		return cli.data.Len() == 3+18 && srv.data.Len() == 9+16
	})
	if cli.data.String() != "OK\nsecret from server" || srv.data.String() != "STARTTLS\n and from client" {
		t.Fatalf("data: %q / %q", cli.data.String(), srv.data.String())
	}
	if cli.made != 1 || srv.made != 1 {
		t.Fatalf("connection_made ran again")
	}
	if err := ct.WriteEOF(); Errno(err) != unix.ENOSYS {
		t.Fatalf("WriteEOF on TLS: %v", err)
	}
	ct.Close()
	h.runUntil("closed", 5*time.Second, func() bool { return cli.lost == 1 && srv.lost == 1 })
	if srv.eofs != 1 || srv.lostErr != nil || cli.lostErr != nil {
		t.Fatalf("close: eofs %d, errors %v %v", srv.eofs, srv.lostErr, cli.lostErr)
	}
}

// TestTLSStartTLSFailure: a failed start_tls handshake closes the transport
// and the protocol (already connected) gets connection_lost with the error.
func TestTLSStartTLSFailure(t *testing.T) {
	h := newHarness(t)
	p := getPKI()
	var srv *tlsRecorder
	s, port := h.serve(func() Protocol { srv = &tlsRecorder{h: h}; return srv })
	defer s.Close()
	cli := &tlsRecorder{h: h}
	f, _ := h.l.CreateConnection("127.0.0.1", port, cli, nil)
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ct := v.(*Transport)
	h.runUntil("server made", 5*time.Second, func() bool { return srv != nil && srv.made == 1 })
	so := srvTLSOpts(p.selfSig)
	so.ServerSide = true
	sf, _ := srv.t.StartTLS(so)
	cf, err := ct.StartTLS(clientTLS())
	if err == nil {
		t.Fatalf("StartTLS without a host name must fail")
	}
	co := clientTLS()
	co.ServerHostname = "localhost"
	cf, _ = ct.StartTLS(co)
	_, err = h.await(cf, 10*time.Second)
	if !errors.Is(err, ErrCert) {
		t.Fatalf("client: %v", err)
	}
	h.runUntil("lost", 5*time.Second, func() bool { return cli.lost == 1 && srv.lost == 1 && sf.Done() })
	if !errors.Is(cli.lostErr, ErrCert) {
		t.Fatalf("client connection_lost: %v", cli.lostErr)
	}
	if sf.Exception() == nil || srv.lostErr == nil {
		t.Fatalf("server: future %v, lost %v", sf.Exception(), srv.lostErr)
	}
}

// TestTLSInteropStdlib checks the bytes on the wire against Go's own TLS
// stack (a goroutine-driven net.Conn on the other end), in both roles.
func TestTLSInteropStdlib(t *testing.T) {
	h := newHarness(t)
	p := getPKI()
	// Our client, crypto/tls server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{p.server}})
		defer tc.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(tc, buf); err != nil {
			srvErr <- err
			return
		}
		tc.Write(bytes.ToUpper(buf))
		// Our Close sends close_notify: a clean io.EOF here.
		_, err = tc.Read(buf)
		srvErr <- err
	}()
	cli := &tlsRecorder{h: h}
	f, _ := h.l.CreateConnection("127.0.0.1", ln.Addr().(*net.TCPAddr).Port, cli, &ConnectOptions{TLS: clientTLS()})
	v, err := h.await(f, 10*time.Second)
	if err != nil {
		t.Fatalf("connect to crypto/tls server: %v", err)
	}
	v.(*Transport).Write([]byte("hello"))
	h.runUntil("reply", 10*time.Second, func() bool { return cli.data.Len() == 5 })
	if cli.data.String() != "HELLO" {
		t.Fatalf("got %q", cli.data.String())
	}
	v.(*Transport).Close()
	h.runUntil("closed", 5*time.Second, func() bool { return cli.lost == 1 })
	if err := <-srvErr; err != io.EOF {
		t.Fatalf("crypto/tls server read after our close: %v (want io.EOF from close_notify)", err)
	}

	// crypto/tls client, our server.
	h.l.SetDebug(true)
	var srv *tlsRecorder
	s, port := h.tlsServe(srvTLSOpts(p.server), func() Protocol {
		srv = &tlsRecorder{h: h, echo: true}
		return srv
	})
	defer s.Close()
	cliErr := make(chan error, 1)
	got := make(chan []byte, 1)
	go func() {
		c, err := tls.Dial("tcp", "127.0.0.1:"+itoa(port), &tls.Config{RootCAs: p.pool, ServerName: "localhost"})
		if err != nil {
			cliErr <- err
			return
		}
		defer c.Close()
		msg := tlsPattern(300000)
		go c.Write(msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil {
			cliErr <- err
			return
		}
		got <- buf
		c.CloseWrite()
		_, err = c.Read(buf)
		cliErr <- err
	}()
	var echoed []byte
	h.runUntil("stdlib client", 20*time.Second, func() bool {
		select {
		case echoed = <-got:
			return true
		default:
		}
		select {
		case echoed = <-got:
			return true
		case err := <-cliErr:
			t.Fatalf("crypto/tls client: %v", err)
		default:
		}
		return false
	})
	if !bytes.Equal(echoed, tlsPattern(300000)) {
		t.Fatalf("echo mismatch")
	}
	// The client's close_notify makes our side close (with close_notify).
	h.runUntil("server lost", 5*time.Second, func() bool { return srv.lost == 1 })
	var cerr error
	h.runUntil("client EOF", 5*time.Second, func() bool {
		select {
		case cerr = <-cliErr:
			return true
		default:
			return false
		}
	})
	if cerr != io.EOF {
		t.Fatalf("crypto/tls client read after close: %v", cerr)
	}
}

func TestTLSMutualAuth(t *testing.T) {
	h := newHarness(t)
	p := getPKI()
	so := srvTLSOpts(p.server)
	so.Config.ClientAuth = tls.RequireAndVerifyClientCert
	so.Config.ClientCAs = p.pool
	// Without a client certificate the handshake fails.
	s, port := h.tlsServe(so, func() Protocol { return &tlsRecorder{h: h, echo: true} })
	defer s.Close()
	cli := &tlsRecorder{h: h}
	f, _ := h.l.CreateConnection("127.0.0.1", port, cli, &ConnectOptions{TLS: clientTLS()})
	v, err := h.await(f, 10*time.Second)
	if err == nil {
		// TLS 1.3: the client may finish first; the server's alert follows
		// (reported through the exception handler in debug mode only).
		var excs []*ExceptionContext
		h.l.SetExceptionHandler(func(l *Loop, ctx *ExceptionContext) { excs = append(excs, ctx) })
		v.(*Transport).Write([]byte("x"))
		h.runUntil("rejected", 5*time.Second, func() bool { return cli.lost == 1 })
		h.l.SetExceptionHandler(nil)
		if len(excs) != 0 {
			t.Fatalf("exception handler called outside debug mode: %v", excs[0].Err)
		}
		if !errors.Is(cli.lostErr, ErrTLS) {
			t.Fatalf("lost with %v", cli.lostErr)
		}
	} else if !errors.Is(err, ErrTLS) {
		t.Fatalf("no client cert: %v", err)
	}
	co := clientTLS()
	co.Config.Certificates = []tls.Certificate{p.client}
	cli = &tlsRecorder{h: h}
	f, _ = h.l.CreateConnection("127.0.0.1", port, cli, &ConnectOptions{TLS: co})
	v, err = h.await(f, 10*time.Second)
	if err != nil {
		t.Fatalf("with client cert: %v", err)
	}
	v.(*Transport).Write([]byte("ping"))
	h.runUntil("echo", 5*time.Second, func() bool { return cli.data.Len() == 4 })
	v.(*Transport).Close()
	h.runUntil("closed", 5*time.Second, func() bool { return cli.lost == 1 })
}

func TestTLSHandshakeTimeout(t *testing.T) {
	h := newHarness(t)
	// A plain server that never answers the ClientHello.
	var srv *tlsRecorder
	s, port := h.serve(func() Protocol { srv = &tlsRecorder{h: h}; return srv })
	defer s.Close()
	co := clientTLS()
	co.HandshakeTimeout = 0.2
	cli := &tlsRecorder{h: h}
	t0 := time.Now()
	f, _ := h.l.CreateConnection("127.0.0.1", port, cli, &ConnectOptions{TLS: co})
	_, err := h.await(f, 10*time.Second)
	if Errno(err) != unix.ETIMEDOUT {
		t.Fatalf("want ETIMEDOUT, got %v", err)
	}
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Fatalf("timed out after %v", d)
	}
	h.runUntil("server sees the close", 5*time.Second, func() bool { return srv != nil && srv.lost == 1 })
	if srv.data.Len() == 0 || srv.data.Bytes()[0] != 0x16 {
		t.Fatalf("the server did not receive a ClientHello")
	}
	if cli.made != 0 || cli.lost != 0 {
		t.Fatalf("client protocol callbacks ran")
	}
}

func TestTLSCancelAndCloseDuringHandshake(t *testing.T) {
	h := newHarness(t)
	var srv *tlsRecorder
	s, port := h.serve(func() Protocol { srv = &tlsRecorder{h: h}; return srv })
	defer s.Close()
	// Cancelling a TLS create_connection during the handshake aborts it.
	cli := &tlsRecorder{h: h}
	f, _ := h.l.CreateConnection("127.0.0.1", port, cli, &ConnectOptions{TLS: clientTLS()})
	h.runUntil("ClientHello", 5*time.Second, func() bool { return srv != nil && srv.data.Len() > 0 })
	if !f.Cancel("") {
		t.Fatal("Cancel")
	}
	h.runUntil("server sees the abort", 5*time.Second, func() bool { return srv.lost == 1 })
	if cli.made != 0 || cli.lost != 0 {
		t.Fatalf("client protocol callbacks ran")
	}
	// Closing a transport during start_tls fails its future.
	srv = nil
	cli = &tlsRecorder{h: h}
	f, _ = h.l.CreateConnection("127.0.0.1", port, cli, nil)
	v, _ := h.await(f, 5*time.Second)
	ct := v.(*Transport)
	co := clientTLS()
	co.ServerHostname = "localhost"
	sf, err := ct.StartTLS(co)
	if err != nil {
		t.Fatal(err)
	}
	if ct.WriteBufferSize() != 0 {
		t.Fatalf("WriteBufferSize %d", ct.WriteBufferSize())
	}
	ct.Write([]byte("queued until the handshake"))
	if ct.WriteBufferSize() != 26 {
		t.Fatalf("WriteBufferSize %d during the handshake", ct.WriteBufferSize())
	}
	ct.Close()
	_, err = h.await(sf, 5*time.Second)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("start_tls future after close: %v", err)
	}
	h.runUntil("lost", 5*time.Second, func() bool { return cli.lost == 1 && srv != nil && srv.lost == 1 })
	if cli.lostErr != nil {
		t.Fatalf("connection_lost(%v) after close", cli.lostErr)
	}
}

// tlsBufProto is a buffered protocol over TLS with small buffers.
type tlsBufProto struct {
	tlsRecorder
	buf []byte
}

func (p *tlsBufProto) GetBuffer(t *Transport, hint int) []byte { return p.buf }
func (p *tlsBufProto) BufferUpdated(t *Transport, n int)       { p.data.Write(p.buf[:n]) }

func TestTLSBufferedProtocolAndPause(t *testing.T) {
	h := newHarness(t)
	p := getPKI()
	s, port := h.tlsServe(srvTLSOpts(p.server), func() Protocol { return &tlsRecorder{h: h, echo: true} })
	defer s.Close()
	payload := tlsPattern(1 << 20)

	bp := &tlsBufProto{tlsRecorder: tlsRecorder{h: h}, buf: make([]byte, 1000)}
	f, _ := h.l.CreateConnection("127.0.0.1", port, bp, &ConnectOptions{TLS: clientTLS()})
	v, err := h.await(f, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	v.(*Transport).Write(payload)
	h.runUntil("buffered echo", 30*time.Second, func() bool { return bp.data.Len() >= len(payload) })
	if !bytes.Equal(bp.data.Bytes(), payload) {
		t.Fatalf("buffered protocol data mismatch")
	}
	v.(*Transport).Close()

	// pause_reading inside data_received: nothing more arrives until
	// resume_reading, which delivers what was already decrypted without
	// new socket data.
	pp := &tlsRecorder{h: h, pauseOnData: true}
	f, _ = h.l.CreateConnection("127.0.0.1", port, pp, &ConnectOptions{TLS: clientTLS()})
	v, err = h.await(f, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tr := v.(*Transport)
	tr.Write(payload)
	for pp.data.Len() < len(payload) {
		h.runUntil("some data", 10*time.Second, func() bool { return pp.data.Len() > 0 && tr.paused })
		n := pp.data.Len()
		h.runFor(5 * time.Millisecond)
		if pp.data.Len() != n {
			t.Fatalf("data arrived while paused")
		}
		pp.data.Len()
		tr.ResumeReading()
		h.runUntil("more data", 10*time.Second, func() bool { return pp.data.Len() > n })
	}
	if !bytes.Equal(pp.data.Bytes(), payload) {
		t.Fatalf("paused data mismatch")
	}
	tr.Close()
	h.runUntil("closed", 5*time.Second, func() bool { return pp.lost == 1 && bp.lost == 1 })
}

// BenchmarkTLSEcho10MB measures the bytes/s of a 10 MB TLS echo with both
// ends on one loop (compare BenchmarkPlainEcho10MB).
func BenchmarkTLSEcho10MB(b *testing.B) { benchEcho(b, true) }

// BenchmarkPlainEcho10MB is the same echo without TLS.
func BenchmarkPlainEcho10MB(b *testing.B) { benchEcho(b, false) }

func benchEcho(b *testing.B, useTLS bool) {
	t := &testing.T{}
	h := newHarness(t)
	defer func() {
		if t.Failed() {
			b.Fatal("harness failed")
		}
	}()
	var so *ServerOptions
	var co *ConnectOptions
	if useTLS {
		so = &ServerOptions{TLS: srvTLSOpts(getPKI().server)}
		co = &ConnectOptions{TLS: clientTLS()}
	}
	f, err := h.l.CreateServer("127.0.0.1", 0, func(t *Transport) error {
		t.SetProtocol(&tlsRecorder{h: h, echo: true})
		return nil
	}, so)
	if err != nil {
		b.Fatal(err)
	}
	v, _ := h.await(f, 5*time.Second)
	s := v.(*Server)
	defer s.Close()
	_, port := SockaddrString(s.Addrs()[0])
	payload := tlsPattern(10 << 20)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cli := &countProto{}
		f, _ := h.l.CreateConnection("127.0.0.1", port, cli, co)
		v, err := h.await(f, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		v.(*Transport).Write(payload)
		h.runUntil("echo", 60*time.Second, func() bool { return cli.n >= len(payload) })
		v.(*Transport).Close()
		h.runUntil("closed", 5*time.Second, func() bool { return cli.lost })
	}
}

type countProto struct {
	BaseProtocol
	n    int
	lost bool
}

func (p *countProto) DataReceived(t *Transport, b []byte)    { p.n += len(b) }
func (p *countProto) ConnectionLost(t *Transport, err error) { p.lost = true }
