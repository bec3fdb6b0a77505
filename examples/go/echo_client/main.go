// Command echo_client is the Go host's echo client: it connects to an echo
// server with the asyncloop Go binding (purego, CGO_ENABLED=0), sends
// 1 MiB in 64 chunks of 16 KiB, each chunk only after the previous one came
// back complete, verifies every byte and prints the median round trip.
//
//	CGO_ENABLED=0 go build -o echo_client ./examples/go/echo_client
//	ASYNCLOOP_LIBRARY=/path/to/libasyncloop.so ./echo_client HOST PORT
//
// It exits 0 only if every byte came back intact.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

const (
	chunkSize = 16 << 10
	chunks    = 64
	total     = chunkSize * chunks
)

// client sends one chunk at a time and checks the echo.
type client struct {
	asyncloop.BaseProtocol
	loop     *asyncloop.Loop
	tr       *asyncloop.Transport
	payload  []byte
	sent     int // chunks sent
	got      []byte
	start    time.Time
	rtts     []time.Duration
	matched  int // bytes verified
	mismatch bool
	err      error
	done     *asyncloop.Future[struct{}]
}

func (c *client) ConnectionMade(t *asyncloop.Transport) {
	c.tr = t
	c.sendNext()
}

func (c *client) sendNext() {
	chunk := c.payload[c.sent*chunkSize : (c.sent+1)*chunkSize]
	c.got = c.got[:0]
	c.start = time.Now()
	if _, err := c.tr.Write(chunk); err != nil {
		c.finish(err)
		return
	}
	c.sent++
}

func (c *client) DataReceived(data []byte) {
	c.got = append(c.got, data...)
	if len(c.got) < chunkSize {
		return
	}
	c.rtts = append(c.rtts, time.Since(c.start))
	want := c.payload[(c.sent-1)*chunkSize : c.sent*chunkSize]
	if len(c.got) != chunkSize || !bytes.Equal(c.got, want) {
		c.mismatch = true
		c.finish(fmt.Errorf("chunk %d: echoed bytes differ", c.sent-1))
		return
	}
	c.matched += chunkSize
	if c.sent == chunks {
		c.finish(nil)
		return
	}
	c.sendNext()
}

func (c *client) ConnectionLost(err error) {
	if err == nil {
		err = fmt.Errorf("connection closed after %d of %d bytes", c.matched, total)
	}
	c.finish(err)
}

func (c *client) finish(err error) {
	if c.done.Done() {
		return
	}
	c.err = err
	c.done.SetResult(struct{}{})
}

func run(host string, port int) error {
	runtime.LockOSThread() // this goroutine owns the loop
	loop, err := asyncloop.NewLoop()
	if err != nil {
		return err
	}
	defer loop.Close()
	done, err := asyncloop.NewFuture[struct{}](loop)
	if err != nil {
		return err
	}
	payload := make([]byte, total)
	for i := range payload {
		payload[i] = byte(i*7 + i>>8)
	}
	c := &client{loop: loop, payload: payload, done: done}
	cf, err := loop.CreateConnection(context.Background(), host, port, c)
	if err != nil {
		return err
	}
	timeout, _ := loop.CallLater(30*time.Second, func() { c.finish(fmt.Errorf("timed out")) })
	if err := loop.RunUntilComplete(cf); err != nil {
		return err
	}
	if err := loop.RunUntilComplete(done); err != nil {
		return err
	}
	timeout.Cancel()
	if c.err != nil {
		return c.err
	}
	if c.matched != total || c.mismatch {
		return fmt.Errorf("only %d of %d bytes matched", c.matched, total)
	}
	// Close and let the transport finish (ConnectionLost).
	if c.tr.Close() == nil {
		for i := 0; i < 100 && !c.tr.Lost(); i++ {
			loop.RunOnce(10 * time.Millisecond)
		}
	}
	slices.Sort(c.rtts)
	med := c.rtts[len(c.rtts)/2]
	if len(c.rtts)%2 == 0 {
		med = (c.rtts[len(c.rtts)/2-1] + c.rtts[len(c.rtts)/2]) / 2
	}
	fmt.Printf("%-8s%d bytes echoed, median round trip %.1f us\n", "Go", c.matched, float64(med.Nanoseconds())/1e3)
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: echo_client HOST PORT")
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo_client: bad port:", os.Args[2])
		os.Exit(2)
	}
	if err := run(os.Args[1], port); err != nil {
		fmt.Fprintln(os.Stderr, "echo_client:", err)
		os.Exit(1)
	}
}
