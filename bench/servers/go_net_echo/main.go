// Command go_net_echo is the plain Go echo server of the Go benchmark suite
// (impl "go-net"; the peer of go_aloop_echo):
//
//		go_net_echo [tcp|udp|tls] [--cert FILE --key FILE]
//
//	  - tcp (default): one goroutine per connection reading into a 64 KiB
//	    buffer and writing back what it read (TCP_NODELAY is Go's default);
//	  - udp: a net.UDPConn, one goroutine receiving each datagram and sending
//	    it back to its sender (ReadFromUDPAddrPort / WriteToUDPAddrPort: no
//	    allocation per datagram);
//	  - tls: crypto/tls over net (tls.Listen with the certificate and key,
//	    signed by the bench's local CA), then as tcp.
//
// It listens on 127.0.0.1 on a free port, prints "PORT <n>" when ready, and
// exits when its standard input reaches end of file. bench/run.py builds
// and drives it.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go_net_echo:", err)
	os.Exit(1)
}

func serveUDP() {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fail(err)
	}
	fmt.Printf("PORT %d\n", c.LocalAddr().(*net.UDPAddr).Port)
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		c.WriteToUDPAddrPort(buf[:n], addr)
	}
}

func main() {
	cert := flag.String("cert", "", "TLS certificate (PEM)")
	key := flag.String("key", "", "TLS private key (PEM)")
	mode := "tcp"
	if len(os.Args) > 1 && os.Args[1] != "" && os.Args[1][0] != '-' {
		mode = os.Args[1]
		os.Args = append(os.Args[:1], os.Args[2:]...)
	}
	flag.Parse()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	var ln net.Listener
	var err error
	switch mode {
	case "udp":
		serveUDP()
	case "tcp":
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	case "tls":
		c, lerr := tls.LoadX509KeyPair(*cert, *key)
		if lerr != nil {
			fail(lerr)
		}
		ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{c}})
	default:
		err = fmt.Errorf("unknown mode %q (tcp, udp or tls)", mode)
	}
	if err != nil {
		fail(err)
	}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
