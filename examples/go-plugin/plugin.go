// Command go-plugin is a Go plugin: a Go library built with
// -buildmode=c-shared that a C or Python host (any host of libasyncloop)
// loads next to libasyncloop.so and hands its loop to. The plugin serves
// TCP echo on that loop through the asyncloop Go binding (purego): its
// callbacks run on the host's loop thread, inside the host's run call.
//
//	go build -buildmode=c-shared -o libgoplugin.so ./examples/go-plugin
//
// The C interface (goplugin.h next to this file):
//
//	int plugin_start(aloop_loop_t *loop);  // echo server on 127.0.0.1; its port, or -1
//	int plugin_stop(void);                 // closes it; bytes echoed, or -1
//	int plugin_ticks(void);                // timer ticks on the host's loop so far
//	int plugin_gc(int ms);                 // GC cycles in ms beside a call-free goroutine
//	int plugin_panic_soon(void);           // a callback that panics (to the exception handler)
//	const char *plugin_error(void);        // why the last call returned -1
//
// Three Go runtimes could meet in one process here: the library's, the
// plugin's and, for a Go host, the host's. README.md "Go plugins" (in
// bindings/go) says which combinations work and why.
package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

type echo struct {
	asyncloop.BaseProtocol
	t *asyncloop.Transport
}

func (e *echo) ConnectionMade(t *asyncloop.Transport) { e.t = t }

func (e *echo) DataReceived(data []byte) {
	echoed.Add(int64(len(data)))
	if _, err := e.t.Write(data); err != nil {
		e.t.Abort()
	}
}

func (e *echo) PauseWriting()  { e.t.PauseReading() }
func (e *echo) ResumeWriting() { e.t.ResumeReading() }

var (
	mu      sync.Mutex
	loop    *asyncloop.Loop
	server  *asyncloop.Server
	ticker  *asyncloop.Handle
	lastErr *C.char
	echoed  atomic.Int64
	ticks   atomic.Int64
)

func fail(err error) C.int {
	if lastErr != nil {
		C.free(unsafe.Pointer(lastErr))
	}
	lastErr = C.CString(err.Error())
	return -1
}

// tick runs every 10 ms on the host's loop.
func tick() {
	ticks.Add(1)
	h, err := loop.CallLater(10*time.Millisecond, tick)
	if err == nil {
		ticker = h
	}
}

//export plugin_start
func plugin_start(h unsafe.Pointer) C.int {
	mu.Lock()
	defer mu.Unlock()
	if loop != nil {
		return fail(fmt.Errorf("plugin already started"))
	}
	l, err := asyncloop.LoopFromHandle(uintptr(h))
	if err != nil {
		return fail(err)
	}
	// The port is known before the loop runs: the plugin binds the socket
	// and the loop serves on a duplicate of it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	f, err := l.CreateServer(context.Background(), "", 0, func() asyncloop.Protocol { return &echo{} },
		asyncloop.WithSocket(ln.(*net.TCPListener)))
	if err != nil {
		return fail(err)
	}
	// Resolved on the host's loop, once it runs.
	if _, err := f.AddDoneCallback(func(f *asyncloop.Future[*asyncloop.Server]) {
		srv, err := f.Result()
		if err != nil {
			panic(fmt.Sprintf("go-plugin: serving failed: %v", err)) // to the loop's exception handler
		}
		mu.Lock()
		server = srv
		mu.Unlock()
	}); err != nil {
		return fail(err)
	}
	loop = l
	if ticker, err = l.CallLater(10*time.Millisecond, tick); err != nil {
		return fail(err)
	}
	return C.int(port)
}

//export plugin_stop
func plugin_stop() C.int {
	mu.Lock()
	defer mu.Unlock()
	if loop == nil {
		return fail(fmt.Errorf("plugin not started"))
	}
	if ticker != nil {
		ticker.Cancel()
	}
	if server != nil {
		server.Close()
		server = nil
	}
	loop.Close() // detaches: the loop is the host's
	loop = nil
	return C.int(echoed.Load())
}

//export plugin_ticks
func plugin_ticks() C.int { return C.int(ticks.Load()) }

// plugin_gc runs garbage collections for ms milliseconds while a goroutine
// spins in a loop without function calls: each collection has to stop that
// goroutine with the plugin runtime's preemption signal (SIGURG), so this
// returns only if the plugin's SIGURG handling works in this process. It
// returns the number of collections.
//
//export plugin_gc
func plugin_gc(ms C.int) C.int {
	var stop atomic.Bool
	go func() {
		x := 0
		for !stop.Load() {
			x++
		}
		_ = x
	}()
	n := 0
	for deadline := time.Now().Add(time.Duration(ms) * time.Millisecond); time.Now().Before(deadline); n++ {
		runtime.GC()
	}
	stop.Store(true)
	return C.int(n)
}

// plugin_panic_soon schedules a callback on the host's loop that panics:
// the binding recovers it and passes it to the loop's exception handler
// (the host's), and the loop goes on.
//
//export plugin_panic_soon
func plugin_panic_soon() C.int {
	mu.Lock()
	defer mu.Unlock()
	if loop == nil {
		return fail(fmt.Errorf("plugin not started"))
	}
	if _, err := loop.CallSoon(func() { panic("go-plugin: a panic on purpose") }); err != nil {
		return fail(err)
	}
	return 0
}

//export plugin_error
func plugin_error() *C.char { return lastErr }

func main() {}
