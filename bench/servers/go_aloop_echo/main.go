// Command go_aloop_echo is the asyncloop TCP echo server of the Go benchmark
// suite (impl "asyncloop"; the peer of go_net_echo): the Go host binding
// (bindings/go, purego, built with CGO_ENABLED=0) over libasyncloop.so
// (ASYNCLOOP_LIBRARY), with an echo Protocol.
//
// It listens on 127.0.0.1 on a free port, prints "PORT <n>" when ready, and
// exits when its standard input reaches end of file. If the library cannot
// be loaded it prints "MISSING <reason>" and exits 0.
package main

import (
	"context"
	"fmt"
	"io"
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

func missing(err error) {
	fmt.Printf("MISSING the asyncloop Go binding failed (%s)\n", strings.SplitN(err.Error(), "\n", 2)[0])
	os.Exit(0)
}

func main() {
	runtime.LockOSThread() // this goroutine owns the loop
	loop, err := asyncloop.NewLoop()
	if err != nil {
		missing(err)
	}
	f, err := loop.CreateServer(context.Background(), "127.0.0.1", 0, func() asyncloop.Protocol { return &echo{} },
		asyncloop.WithBacklog(1024))
	if err != nil {
		missing(err)
	}
	if err := loop.RunUntilComplete(f); err != nil {
		missing(err)
	}
	srv, err := f.Result()
	if err != nil {
		missing(err)
	}
	fmt.Printf("PORT %d\n", srv.Port())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		loop.Stop() // thread-safe
	}()
	if err := loop.RunForever(); err != nil {
		fmt.Fprintln(os.Stderr, "go_aloop_echo:", err)
		os.Exit(1)
	}
	srv.Close()
	os.Exit(0)
}
