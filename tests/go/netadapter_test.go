package gotest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// runningLoop starts a loop in its own goroutine (locked to its thread) and
// stops and closes it when the test ends.
func runningLoop(t *testing.T) *asyncloop.Loop {
	t.Helper()
	ready := make(chan *asyncloop.Loop)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		l, err := asyncloop.NewLoop()
		if err != nil {
			t.Error(err)
			close(ready)
			return
		}
		ready <- l
		for {
			if err := l.RunForever(); err != nil {
				t.Error(err)
			}
			// Close once every transport and server is gone.
			if err := l.Close(); err == nil {
				break
			}
			l.CallLater(10*time.Millisecond, func() { l.Stop() })
		}
		close(done)
	}()
	l := <-ready
	if l == nil {
		t.FailNow()
	}
	t.Cleanup(func() {
		l.Stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the loop did not close (live transports or servers)")
		}
	})
	return l
}

// net/http serves over the loop: a net/http client of package net, and one
// that dials through the loop too.
func TestHTTPOverLoop(t *testing.T) {
	l := runningLoop(t)
	ln, err := l.Listen(bg, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ln.Addr().(*net.TCPAddr); !ok {
		t.Fatalf("Addr %#v", ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from %s", r.URL.Query().Get("name"), r.RemoteAddr)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	for _, via := range []string{"net", "loop"} {
		tr := &http.Transport{}
		if via == "loop" {
			tr.DialContext = l.Dial
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		url := "http://" + ln.Addr().String()
		for i := range 3 { // keep-alive: one connection, several requests
			resp, err := client.Get(fmt.Sprintf("%s/hello?name=%s%d", url, via, i))
			if err != nil {
				t.Fatalf("%s: %v", via, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), fmt.Sprintf("hello %s%d from 127.0.0.1:", via, i)) {
				t.Fatalf("%s: body %q", via, body)
			}
		}
		big := make([]byte, 3<<20)
		rand.NewChaCha8([32]byte{3, 4}).Read(big)
		resp, err := client.Post(url+"/echo", "application/octet-stream", bytes.NewReader(big))
		if err != nil {
			t.Fatalf("%s: %v", via, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || sha256.Sum256(got) != sha256.Sum256(big) {
			t.Fatalf("%s: echoed %d bytes (%v), want %d", via, len(got), err, len(big))
		}
		tr.CloseIdleConnections()
	}
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
}

// The net.Conn semantics: EOF, deadlines, Close waking a reader, flow
// control both ways.
func TestNetConnSemantics(t *testing.T) {
	l := runningLoop(t)
	var wg sync.WaitGroup
	defer wg.Wait() // after ln.Close
	ln, err := l.Listen(bg, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// An echo server written against net.Conn.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Accept: %v", err)
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	c, err := l.Dial(bg, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // a failure below must not leave the echo goroutine (and wg.Wait) hanging
	if c.RemoteAddr().String() != ln.Addr().String() || c.LocalAddr() == nil {
		t.Fatalf("addresses %v -> %v", c.LocalAddr(), c.RemoteAddr())
	}
	// 8 MiB each way at once: the writer is slowed by the reader, never
	// unbounded.
	payload := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{5, 6}).Read(payload)
	go func() {
		c.Write(payload)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo of 8 MiB: %d bytes, %v", len(got), err)
	}
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}

	// Deadlines.
	d, err := l.Dial(bg, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The deadline from start (a deadline set from an earlier time.Now
	// can expire less than 30 ms after a later start: it failed so under load).
	start := time.Now()
	d.SetReadDeadline(start.Add(30 * time.Millisecond))
	_, err = d.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("Read past the deadline: %v after %v", err, time.Since(start))
	}
	d.SetReadDeadline(time.Time{})
	d.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("after clearing the deadline: %q %v", buf, err)
	}
	// A deadline in the past wakes a blocked reader (net/http relies on it).
	readErr := make(chan error, 1)
	go func() { _, err := d.Read(buf); readErr <- err }()
	time.Sleep(20 * time.Millisecond)
	d.SetReadDeadline(time.Unix(1, 0))
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked Read after a past deadline: %v", err)
	}
	// Close wakes a blocked reader.
	d.SetReadDeadline(time.Time{})
	go func() { _, err := d.Read(buf); readErr <- err }()
	time.Sleep(20 * time.Millisecond)
	d.Close()
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked Read after Close: %v", err)
	}
	if err := d.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}

	// Dialing a closed port: the loop's *net.OpError.
	if _, err := l.Dial(bg, "tcp", fmt.Sprintf("127.0.0.1:%d", freePort(t))); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial to a closed port: %v", err)
	}
	// On the loop's own thread the blocking adapters refuse.
	inside := make(chan error, 1)
	l.CallSoonThreadsafe(func() { _, err := l.Dial(bg, "tcp", ln.Addr().String()); inside <- err })
	if err := <-inside; err == nil || !strings.Contains(err.Error(), "deadlock") {
		t.Fatalf("Dial on the loop thread: %v", err)
	}
}
