// Command rpc_go: the interop workloads driven from Go (bench/run.py, suite
// interop): libaloop_rpc's server and client on the Go binding's loop,
// loaded with purego.
//
//	rpc_go call|lib SECONDS WARMUP INFLIGHT SIZE
//
// call: INFLIGHT calls at a time, each wrapped with WrapFuture, its reply
// read and checked in a done-callback that starts the next call; lib:
// rpc_client_bench batches. Prints {"value": requests per second, ...}.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

var (
	serverStart func(loop uintptr, host string, port int32, out *uintptr) int32
	serverPort  func(s uintptr) int32
	serverClose func(s uintptr) int32
	connect     func(loop uintptr, host string, port int32, out *uintptr) int32
	call        func(c uintptr, method int32, data unsafe.Pointer, n uintptr, out *uintptr) int32
	replyData   func(r uintptr, n *uintptr) uintptr
	replyFree   func(r uintptr)
	clientClose func(c uintptr) int32
	clientBench func(c uintptr, count uint64, inflight int32, size uintptr, out *uintptr) int32
)

func fail(format string, a ...any) {
	fmt.Printf("{\"error\": %q}\n", fmt.Sprintf(format, a...))
	os.Exit(1)
}

func main() {
	runtime.LockOSThread()
	if len(os.Args) != 6 {
		fail("usage: rpc_go call|lib SECONDS WARMUP INFLIGHT SIZE")
	}
	mode := os.Args[1]
	secs, _ := strconv.ParseFloat(os.Args[2], 64)
	warm, _ := strconv.ParseFloat(os.Args[3], 64)
	inflight, _ := strconv.Atoi(os.Args[4])
	size, _ := strconv.Atoi(os.Args[5])

	l, err := asyncloop.NewLoop() // loads libasyncloop first
	if err != nil {
		fail("%v", err)
	}
	p := os.Getenv("ALOOP_RPC_LIBRARY")
	if p == "" {
		p = filepath.Join("build", "examples", "libaloop_rpc.so")
	}
	h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		fail("%v", err)
	}
	for name, fp := range map[string]any{
		"rpc_server_start": &serverStart, "rpc_server_port": &serverPort,
		"rpc_server_close": &serverClose, "rpc_connect": &connect, "rpc_call": &call,
		"rpc_reply_data": &replyData, "rpc_reply_free": &replyFree,
		"rpc_client_close": &clientClose, "rpc_client_bench": &clientBench,
	} {
		purego.RegisterLibFunc(fp, h, name)
	}
	lh, _ := l.CHandle()
	bg := context.Background()
	await := func(f uintptr, what string) uintptr {
		wf, err := l.WrapFuture(bg, f)
		if err == nil {
			err = l.RunUntilComplete(wf)
		}
		v, err2 := wf.Result()
		if err != nil || err2 != nil {
			fail("%s: %v %v", what, err, err2)
		}
		return v
	}
	var f uintptr
	if rc := serverStart(lh, "127.0.0.1", 0, &f); rc < 0 {
		fail("rpc_server_start %d", rc)
	}
	srv := await(f, "rpc_server_start")
	if rc := connect(lh, "127.0.0.1", serverPort(srv), &f); rc < 0 {
		fail("rpc_connect %d", rc)
	}
	client := await(f, "rpc_connect")

	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*131 + 7)
	}
	read := func(fh uintptr) ([]byte, error) {
		r, err := asyncloop.FutureResultPointer(fh)
		if err != nil {
			return nil, err
		}
		var n uintptr
		d := replyData(r, &n)
		b := bytes.Clone(unsafe.Slice((*byte)(unsafe.Pointer(d)), n))
		replyFree(r)
		return b, nil
	}

	run := func(seconds float64) int {
		end := time.Now().Add(time.Duration(seconds * float64(time.Second)))
		k := 0
		if mode == "lib" {
			for time.Now().Before(end) {
				var bf uintptr
				if rc := clientBench(client, 1000, int32(inflight), uintptr(size), &bf); rc < 0 {
					fail("rpc_client_bench %d", rc)
				}
				await(bf, "rpc_client_bench")
				k += 1000
			}
			return k
		}
		outstanding := 0
		var issue func()
		issue = func() {
			var cf uintptr
			if rc := call(client, 1, unsafe.Pointer(&payload[0]), uintptr(size), &cf); rc < 0 {
				fail("rpc_call %d", rc)
			}
			wf, err := asyncloop.WrapFuture(l, nil, cf, read)
			if err != nil {
				fail("%v", err)
			}
			outstanding++
			wf.AddDoneCallback(func(wf *asyncloop.Future[[]byte]) {
				outstanding--
				b, err := wf.Result()
				if err != nil || !bytes.Equal(b, payload) {
					fail("a reply did not match (%v)", err)
				}
				k++
				if time.Now().Before(end) {
					issue()
				} else if outstanding == 0 {
					l.Stop()
				}
			})
		}
		for i := 0; i < inflight; i++ {
			issue()
		}
		l.RunForever()
		return k
	}
	run(warm)
	t0 := time.Now()
	k := run(secs)
	el := time.Since(t0).Seconds()
	clientClose(client)
	serverClose(srv)
	for i := 0; i < 10; i++ {
		l.RunOnce(time.Millisecond)
	}
	fmt.Printf("{\"value\": %.1f, \"requests\": %d}\n", float64(k)/el, k)
}
