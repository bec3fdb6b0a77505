// Command gencerts writes the TLS test fixtures of tests/c (PEM files): a
// CA, and leaf certificates signed by it or not. Everything is valid until
// 2100 except expired.pem, which expired in 2001. ECDSA P-256 keys.
//
//	go run ./tests/tools/gencerts [-out tests/c/fixtures]
//
// Files: ca.pem (+ ca-key.pem), server.pem / server-key.pem (localhost,
// 127.0.0.1, ::1), client.pem / client-key.pem (client auth), selfsigned.pem
// / selfsigned-key.pem (localhost, not signed by the CA), expired.pem /
// expired-key.pem (localhost, signed by the CA, expired), wronghost.pem /
// wronghost-key.pem (wrong.example only, signed by the CA).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

var (
	out    = flag.String("out", "tests/c/fixtures", "output directory")
	serial int64
)

func key() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	return k
}

func write(name, typ string, der []byte) {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
		log.Fatal(err)
	}
}

func writeKey(name string, k *ecdsa.PrivateKey) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		log.Fatal(err)
	}
	write(name, "PRIVATE KEY", der)
}

type leaf struct {
	name      string
	cn        string
	dns       []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	client    bool
	self      bool
}

func main() {
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

	caKey := key()
	serial++
	caT := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "asyncloop test CA", Organization: []string{"asyncloop tests"}},
		NotBefore:             start,
		NotAfter:              end,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	if err != nil {
		log.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	writeKey("ca-key.pem", caKey)

	local := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	leaves := []leaf{
		{name: "server", cn: "localhost", dns: []string{"localhost"}, ips: local, notBefore: start, notAfter: end},
		{name: "client", cn: "asyncloop test client", notBefore: start, notAfter: end, client: true},
		{name: "selfsigned", cn: "localhost", dns: []string{"localhost"}, ips: local, notBefore: start, notAfter: end, self: true},
		{name: "expired", cn: "localhost", dns: []string{"localhost"}, ips: local, notBefore: start, notAfter: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "wronghost", cn: "wrong.example", dns: []string{"wrong.example"}, notBefore: start, notAfter: end},
	}
	for _, lf := range leaves {
		k := key()
		serial++
		eku := x509.ExtKeyUsageServerAuth
		if lf.client {
			eku = x509.ExtKeyUsageClientAuth
		}
		t := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: lf.cn},
			DNSNames:     lf.dns,
			IPAddresses:  lf.ips,
			NotBefore:    lf.notBefore,
			NotAfter:     lf.notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{eku},
		}
		parent, parentKey := ca, caKey
		if lf.self {
			parent, parentKey = t, k
		}
		der, err := x509.CreateCertificate(rand.Reader, t, parent, &k.PublicKey, parentKey)
		if err != nil {
			log.Fatal(err)
		}
		write(lf.name+".pem", "CERTIFICATE", der)
		writeKey(lf.name+"-key.pem", k)
	}
}
