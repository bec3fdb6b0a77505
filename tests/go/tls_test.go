package gotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// testPKI is a CA and a certificate for "localhost" and 127.0.0.1 signed by
// it, made once per test binary.
type testPKI struct {
	ca       *x509.Certificate
	caPool   *x509.CertPool
	leaf     tls.Certificate
	certFile string
	keyFile  string
}

var (
	pkiOnce sync.Once
	pki     testPKI
	pkiErr  error
)

func getPKI(t *testing.T) *testPKI {
	t.Helper()
	pkiOnce.Do(func() { pkiErr = makePKI() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return &pki
}

func makePKI() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "asyncloop test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	pki.ca, _ = x509.ParseCertificate(caDER)
	pki.caPool = x509.NewCertPool()
	pki.caPool.AddCert(pki.ca)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, pki.ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	pki.leaf = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return nil
}

func serverTLS(t *testing.T) *asyncloop.TLSConfig {
	t.Helper()
	cfg, err := asyncloop.NewTLSConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Close() })
	if err := cfg.AddCertificate(getPKI(t).leaf); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func clientTLS(t *testing.T, trustCA bool) *asyncloop.TLSConfig {
	t.Helper()
	cfg, err := asyncloop.NewTLSConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Close() })
	if trustCA {
		if err := cfg.AddCA(getPKI(t).ca); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

func TestTLSEcho(t *testing.T) {
	l := newLoop(t)
	scfg := serverTLS(t)
	scfg.SetALPN("h2", "http/1.1")
	lost := make(chan error, 4)
	sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return &echoServer{t: t, lost: lost} }, asyncloop.WithTLS(scfg))
	srv := await(t, l, sf, err)
	ccfg := clientTLS(t, true)
	ccfg.SetALPN("http/1.1")
	ccfg.SetMinVersion(tls.VersionTLS13)
	c := newCollector(t, l, 9)
	cf, err := l.CreateConnection(bg, "127.0.0.1", srv.Port(), c, asyncloop.WithTLS(ccfg), asyncloop.WithServerHostname("localhost"))
	tr := await(t, l, cf, err)
	tr.WriteString("encrypted")
	if got := await(t, l, c.got, nil); string(got) != "encrypted" {
		t.Fatalf("echo %q", got)
	}
	cs, err := tr.TLSConnectionState()
	if err != nil {
		t.Fatal(err)
	}
	if cs.Version != tls.VersionTLS13 || cs.CipherSuite == 0 || cs.NegotiatedProtocol != "http/1.1" ||
		len(cs.PeerCertificates) != 1 || cs.PeerCertificates[0].Subject.CommonName != "localhost" {
		t.Fatalf("connection state: version %x cipher %x alpn %q certs %d", cs.Version, cs.CipherSuite, cs.NegotiatedProtocol, len(cs.PeerCertificates))
	}
	if tr.CanWriteEOF() {
		t.Fatal("a TLS transport can write EOF")
	}
	tr.Close()
	await(t, l, c.lost, nil)

	// Go's crypto/tls client against the loop's TLS server.
	res := make(chan string, 1)
	go func() {
		conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: getPKI(t).caPool, ServerName: "localhost", NextProtos: []string{"h2"}})
		if err != nil {
			res <- err.Error()
			return
		}
		defer conn.Close()
		conn.Write([]byte("crypto/tls"))
		buf := make([]byte, 10)
		io.ReadFull(conn, buf)
		res <- string(buf) + " " + conn.ConnectionState().NegotiatedProtocol
	}()
	var got string
	for got == "" {
		select {
		case got = <-res:
		default:
			l.RunOnce(5 * time.Millisecond)
		}
	}
	if got != "crypto/tls h2" {
		t.Fatalf("crypto/tls client: %q", got)
	}
	closeServer(t, l, srv)
}

func TestTLSFailures(t *testing.T) {
	l := newLoop(t)
	sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return &asyncloop.BaseProtocol{} }, asyncloop.WithTLS(serverTLS(t)))
	srv := await(t, l, sf, err)
	// An untrusted CA: ErrCert, in a *net.OpError.
	cf, err := l.CreateConnection(bg, "127.0.0.1", srv.Port(), &asyncloop.BaseProtocol{}, asyncloop.WithTLS(clientTLS(t, false)))
	if err == nil {
		err = untilDone(t, l, cf, 5*time.Second)
	}
	var op *net.OpError
	if !errors.Is(err, asyncloop.ErrCert) || !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("untrusted server: %v", err)
	}
	// A wrong name: ErrCert too.
	cf2, _ := l.CreateConnection(bg, "127.0.0.1", srv.Port(), &asyncloop.BaseProtocol{}, asyncloop.WithTLS(clientTLS(t, true)), asyncloop.WithServerHostname("example.org"))
	if err := untilDone(t, l, cf2, 5*time.Second); !errors.Is(err, asyncloop.ErrCert) {
		t.Fatalf("wrong host name: %v", err)
	}
	closeServer(t, l, srv)

	// A server that never answers the handshake: ETIMEDOUT, a time-out.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	slow := clientTLS(t, true)
	slow.SetHandshakeTimeout(100 * time.Millisecond)
	cf3, _ := l.CreateConnection(bg, "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, &asyncloop.BaseProtocol{}, asyncloop.WithTLS(slow))
	err = untilDone(t, l, cf3, 5*time.Second)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("handshake time-out: %v", err)
	}
	// A closed config is refused.
	closed := clientTLS(t, true)
	closed.Close()
	if _, err := l.CreateConnection(bg, "127.0.0.1", 1, &asyncloop.BaseProtocol{}, asyncloop.WithTLS(closed)); !errors.Is(err, asyncloop.ErrClosed) {
		t.Fatalf("closed config: %v", err)
	}
	// PEM files.
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", getPKI(t).ca.Raw)
	fileCfg, _ := asyncloop.NewTLSConfig(false)
	defer fileCfg.Close()
	if err := fileCfg.LoadCAFile(caFile); err != nil {
		t.Fatal(err)
	}
	if err := fileCfg.LoadCAFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing CA file: %v", err)
	}
}

// start_tls: a plain connection upgraded by both sides.
type startTLSServer struct {
	asyncloop.BaseProtocol
	t    *testing.T
	tr   *asyncloop.Transport
	cfg  *asyncloop.TLSConfig
	tls  bool
	data []byte
}

func (s *startTLSServer) ConnectionMade(t *asyncloop.Transport) { s.tr = t }
func (s *startTLSServer) DataReceived(b []byte) {
	if !s.tls && string(b) == "STARTTLS\n" {
		s.tls = true
		s.tr.WriteString("GO\n") // plaintext, sent before the handshake
		if _, err := s.tr.StartTLS(bg, s.cfg, ""); err != nil {
			s.t.Errorf("server StartTLS: %v", err)
		}
		return
	}
	s.tr.Write(b) // echo, encrypted after the upgrade
}

func TestStartTLS(t *testing.T) {
	l := newLoop(t)
	scfg := serverTLS(t)
	sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return &startTLSServer{t: t, cfg: scfg} })
	srv := await(t, l, sf, err)
	c := newCollector(t, l, 3)
	cf, err := l.CreateConnection(bg, "127.0.0.1", srv.Port(), c)
	tr := await(t, l, cf, err)
	if _, err := tr.TLSConnectionState(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("TLS state of a plain transport: %v, want EINVAL", err)
	}
	tr.WriteString("STARTTLS\n")
	if got := await(t, l, c.got, nil); string(got) != "GO\n" {
		t.Fatalf("plaintext reply %q", got)
	}
	uf, err := tr.StartTLS(bg, clientTLS(t, true), "localhost")
	up := await(t, l, uf, err)
	if up != tr {
		t.Fatal("StartTLS resolved to another transport")
	}
	if cs, err := tr.TLSConnectionState(); err != nil || cs.Version < tls.VersionTLS12 {
		t.Fatalf("after StartTLS: %v %v", cs.Version, err)
	}
	c.data, c.want = nil, 6
	c.got, _ = asyncloop.NewFuture[[]byte](l)
	tr.WriteString("secret")
	if got := await(t, l, c.got, nil); string(got) != "secret" {
		t.Fatalf("echo after StartTLS %q", got)
	}
	tr.Close()
	await(t, l, c.lost, nil)
	closeServer(t, l, srv)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pemEncode(f, typ, der); err != nil {
		t.Fatal(err)
	}
}

func pemEncode(w io.Writer, typ string, der []byte) error {
	return pem.Encode(w, &pem.Block{Type: typ, Bytes: der})
}
