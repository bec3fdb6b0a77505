// Command go_aloop_echo is the asyncloop echo server of the Go benchmark
// suite (impl "asyncloop"; the peer of go_net_echo): the Go host binding
// (bindings/go, purego, built with CGO_ENABLED=0) over libasyncloop.so
// (ASYNCLOOP_LIBRARY).
//
//		go_aloop_echo [tcp|udp|tls] [--cert FILE --key FILE]
//
//	  - tcp (default): CreateServer with an echo Protocol;
//	  - udp: CreateDatagramEndpoint with a DatagramProtocol sending each
//	    datagram back to its sender;
//	  - tls: CreateServer WithTLS (the library's TLS, a TLSConfig with the
//	    certificate and key, signed by the bench's local CA), then as tcp.
//
// It listens on 127.0.0.1 on a free port, prints "PORT <n>" when ready, and
// exits when its standard input reaches end of file. If the library cannot
// be loaded it prints "MISSING <reason>" and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

type echo struct {
	asyncloop.BaseProtocol
	t *asyncloop.Transport
}

func (e *echo) ConnectionMade(t *asyncloop.Transport) { e.t = t }

func (e *echo) DataReceived(data []byte) {
	if _, err := e.t.Write(data); err != nil {
		e.t.Abort()
	}
}

// The peer stops reading: stop reading from it until our buffer drains.
func (e *echo) PauseWriting()  { e.t.PauseReading() }
func (e *echo) ResumeWriting() { e.t.ResumeReading() }

type udpEcho struct {
	asyncloop.BaseDatagramProtocol
	t *asyncloop.DatagramTransport
}

func (e *udpEcho) ConnectionMade(t *asyncloop.DatagramTransport) { e.t = t }

func (e *udpEcho) DatagramReceived(data []byte, addr net.Addr) { e.t.SendTo(data, addr) }

func missing(err error) {
	fmt.Printf("MISSING the asyncloop Go binding failed (%s)\n", strings.SplitN(err.Error(), "\n", 2)[0])
	os.Exit(0)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go_aloop_echo:", err)
	os.Exit(1)
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

	runtime.LockOSThread() // this goroutine owns the loop
	loop, err := asyncloop.NewLoop()
	if err != nil {
		missing(err)
	}
	var port int
	var srv *asyncloop.Server
	var dgram *asyncloop.DatagramTransport
	switch mode {
	case "udp":
		f, err := loop.CreateDatagramEndpoint(context.Background(), &udpEcho{},
			asyncloop.WithLocalAddr("127.0.0.1", 0))
		if err != nil {
			fail(err)
		}
		if err := loop.RunUntilComplete(f); err != nil {
			fail(err)
		}
		dgram, _ = f.Result()
		port = dgram.LocalAddr().(*net.UDPAddr).Port
	case "tcp", "tls":
		opts := []asyncloop.Option{asyncloop.WithBacklog(1024)}
		if mode == "tls" {
			cfg, err := asyncloop.NewTLSConfig(true)
			if err != nil {
				fail(err)
			}
			if err := cfg.LoadCertFile(*cert, *key); err != nil {
				fail(err)
			}
			opts = append(opts, asyncloop.WithTLS(cfg))
		}
		f, err := loop.CreateServer(context.Background(), "127.0.0.1", 0,
			func() asyncloop.Protocol { return &echo{} }, opts...)
		if err != nil {
			missing(err)
		}
		if err := loop.RunUntilComplete(f); err != nil {
			missing(err)
		}
		if srv, err = f.Result(); err != nil {
			missing(err)
		}
		port = srv.Port()
	default:
		fail(fmt.Errorf("unknown mode %q (tcp, udp or tls)", mode))
	}
	fmt.Printf("PORT %d\n", port)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		loop.Stop() // thread-safe
	}()
	if err := loop.RunForever(); err != nil {
		fail(err)
	}
	// The server stays reachable until here (an unreachable Server is
	// closed, as a net.Listener).
	if srv != nil {
		srv.Close()
	}
	if dgram != nil {
		dgram.Close()
	}
	os.Exit(0)
}
