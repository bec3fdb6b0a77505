// Command echo_roundtrip is the install tests' Go consumer
// (tests/install/install_go.sh builds it in a module of its own, outside the
// checkout, with CGO_ENABLED=0): an echo server and a client on one loop over
// loopback, through the Go binding and whichever libasyncloop it finds.
// Prints "echo ok VERSION LIBRARY_PATH".
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

var message = []byte("hello through an installed libasyncloop")

type echo struct {
	asyncloop.BaseProtocol
	t *asyncloop.Transport
}

func (e *echo) ConnectionMade(t *asyncloop.Transport) { e.t = t }
func (e *echo) DataReceived(b []byte)                 { e.t.Write(b) }

type client struct {
	asyncloop.BaseProtocol
	got  []byte
	done *asyncloop.Future[struct{}]
}

func (c *client) DataReceived(b []byte) {
	c.got = append(c.got, b...)
	if len(c.got) >= len(message) && !c.done.Done() {
		c.done.SetResult(struct{}{})
	}
}

func run() error {
	runtime.LockOSThread()
	loop, err := asyncloop.NewLoop()
	if err != nil {
		return err
	}
	defer loop.Close()
	ctx := context.Background()
	sf, err := loop.CreateServer(ctx, "127.0.0.1", 0, func() asyncloop.Protocol { return &echo{} })
	if err != nil {
		return err
	}
	if err := loop.RunUntilComplete(sf); err != nil {
		return err
	}
	server, err := sf.Result()
	if err != nil {
		return err
	}
	defer server.Close()
	done, err := asyncloop.NewFuture[struct{}](loop)
	if err != nil {
		return err
	}
	c := &client{done: done}
	cf, err := loop.CreateConnection(ctx, "127.0.0.1", server.Port(), c)
	if err != nil {
		return err
	}
	if err := loop.RunUntilComplete(cf); err != nil {
		return err
	}
	t, err := cf.Result()
	if err != nil {
		return err
	}
	if _, err := t.Write(message); err != nil {
		return err
	}
	timeout, _ := loop.CallLater(20*time.Second, func() { done.SetException(fmt.Errorf("timed out")) })
	if err := loop.RunUntilComplete(done); err != nil {
		return err
	}
	timeout.Cancel()
	t.Close()
	server.Close()
	if !bytes.Equal(c.got, message) {
		return fmt.Errorf("echoed %q, want %q", c.got, message)
	}
	v, err := asyncloop.LibraryVersion()
	if err != nil {
		return err
	}
	fmt.Println("echo ok", v, asyncloop.LibraryPath())
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "echo_roundtrip:", err)
		os.Exit(1)
	}
}
