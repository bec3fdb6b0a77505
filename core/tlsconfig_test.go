package core

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestTLSConfigDefaults(t *testing.T) {
	c := NewTLSConfig(false).Options()
	if c.ServerSide || c.Config.InsecureSkipVerify || c.Config.RootCAs != nil || c.HandshakeTimeout != 0 {
		t.Fatalf("client defaults: %+v", c)
	}
	s := NewTLSConfig(true).Options()
	if !s.ServerSide || s.Config.ClientAuth != tls.NoClientCert {
		t.Fatalf("server defaults: %+v", s)
	}
}

func TestTLSConfigVerifyModes(t *testing.T) {
	for _, tc := range []struct {
		mode   TLSVerify
		auth   tls.ClientAuthType
		noSkip bool
	}{
		{TLSVerifyNone, tls.NoClientCert, false},
		{TLSVerifyRequired, tls.RequireAndVerifyClientCert, true},
		{TLSVerifyOptional, tls.VerifyClientCertIfGiven, true},
	} {
		s, c := NewTLSConfig(true), NewTLSConfig(false)
		if err := s.SetVerify(tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := c.SetVerify(tc.mode); err != nil {
			t.Fatal(err)
		}
		if got := s.Options().Config.ClientAuth; got != tc.auth {
			t.Errorf("server %d: ClientAuth %v, want %v", tc.mode, got, tc.auth)
		}
		if skip := c.Options().Config.InsecureSkipVerify; skip == tc.noSkip {
			t.Errorf("client %d: InsecureSkipVerify %v", tc.mode, skip)
		}
	}
	if err := NewTLSConfig(false).SetVerify(3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetVerify(3) = %v", err)
	}
}

func TestTLSConfigValidation(t *testing.T) {
	c := NewTLSConfig(false)
	for _, v := range []int{0, tls.VersionTLS12, tls.VersionTLS13} {
		if err := c.SetMinVersion(v); err != nil {
			t.Errorf("SetMinVersion(%#x) = %v", v, err)
		}
	}
	for _, v := range []int{tls.VersionTLS11, 1, -1} {
		if err := c.SetMaxVersion(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetMaxVersion(%#x) = %v", v, err)
		}
	}
	for _, s := range []float64{-1, math.NaN(), 2e9} {
		if err := c.SetHandshakeTimeout(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetHandshakeTimeout(%v) = %v", s, err)
		}
	}
	if err := c.SetALPN([]string{"h2", ""}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty ALPN protocol: %v", err)
	}
	if err := c.AddCAs([]byte("not PEM")); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddCAs(garbage) = %v", err)
	}
	if err := c.AddCertificate([]byte("x"), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddCertificate(garbage) = %v", err)
	}
	if err := c.LoadCAFile(filepath.Join(t.TempDir(), "missing.pem")); Errno(err) != unix.ENOENT {
		t.Errorf("LoadCAFile(missing) = %v", err)
	}
}

// A connection takes a snapshot: later changes do not reach it.
func TestTLSConfigOptionsAreASnapshot(t *testing.T) {
	p := getPKI()
	c := NewTLSConfig(false)
	c.SetServerHostname("localhost")
	if err := c.SetALPN([]string{"h2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddCAs(pemOf("CERTIFICATE", p.ca.Raw)); err != nil {
		t.Fatal(err)
	}
	o := c.Options()
	c.SetServerHostname("other")
	if err := c.SetALPN([]string{"http/1.1"}); err != nil {
		t.Fatal(err)
	}
	if o.Config.ServerName != "localhost" || len(o.Config.NextProtos) != 1 || o.Config.NextProtos[0] != "h2" {
		t.Fatalf("snapshot changed: %q %q", o.Config.ServerName, o.Config.NextProtos)
	}
	// Only the loaded CA is trusted: the server's leaf verifies against it.
	leaf := p.server.Certificate[0]
	if _, err := verifyLeaf(o, leaf); err != nil {
		t.Fatalf("leaf signed by the loaded CA: %v", err)
	}
	if _, err := verifyLeaf(o, p.selfSig.Certificate[0]); err == nil {
		t.Fatal("a self-signed leaf verified")
	}
}

func TestTLSConfigCertificateFiles(t *testing.T) {
	p := getPKI()
	dir := t.TempDir()
	key, err := x509MarshalKey(p.server)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pemOf("CERTIFICATE", p.server.Certificate[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewTLSConfig(true)
	if err := s.LoadCertificateFile(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadCertificateFile(keyFile, keyFile); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a key as certificate: %v", err)
	}
	if n := len(s.Options().Config.Certificates); n != 1 {
		t.Fatalf("%d certificates", n)
	}
}

func verifyLeaf(o *TLSOptions, der []byte) ([][]*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return cert.Verify(x509.VerifyOptions{Roots: o.Config.RootCAs, DNSName: o.Config.ServerName})
}

func x509MarshalKey(c tls.Certificate) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, err
	}
	return pemOf("PRIVATE KEY", der), nil
}
