package gotest

// A protocol library written once in C (examples/rpc, libaloop_rpc) on the
// Go host's loop: (*Loop).CHandle and WrapFuture. The same compiled library
// is loaded by tests/c/test-interop.c, tests/python/test_interop.py and
// tests/node/interop.test.js. It runs next to the Go host's own server,
// connection and timers; every byte is checked.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

const (
	rpcEcho    = 1
	rpcReverse = 2
	rpcSleep   = 3
	rpcFail    = 4
	rpcHost    = 5
)

// rpcLib is the Go face a user would write over the C library (purego).
type rpcLib struct {
	version        func() int32
	liveObjects    func() int64
	serverStart    func(loop uintptr, host string, port int32, out *uintptr) int32
	serverPort     func(s uintptr) int32
	serverRequests func(s uintptr) uint64
	serverClose    func(s uintptr) int32
	serverRecv     func(s uintptr, out *uintptr) int32
	requestData    func(r uintptr, n *uintptr) uintptr
	requestRespond func(r uintptr, ok int32, data unsafe.Pointer, n uintptr) int32
	connect        func(loop uintptr, host string, port int32, out *uintptr) int32
	call           func(c uintptr, method int32, data unsafe.Pointer, n uintptr, out *uintptr) int32
	replyData      func(r uintptr, n *uintptr) uintptr
	replyFree      func(r uintptr)
	clientClose    func(c uintptr) int32
	clientSendRaw  func(c uintptr, data unsafe.Pointer, n uintptr) int32
	clientBench    func(c uintptr, count uint64, inflight int32, size uintptr, out *uintptr) int32
}

var (
	rpcOnce sync.Once
	rpcL    *rpcLib
	rpcErr  error
)

func rpcPath() string {
	if p := os.Getenv("ALOOP_RPC_LIBRARY"); p != "" {
		return p
	}
	if p := filepath.Join(filepath.Dir(libPath), "examples", "libaloop_rpc.so"); fileExists(p) {
		return p
	}
	return filepath.Join(repoRoot(), "build", "examples", "libaloop_rpc.so")
}

// loadRPC loads the example library after the binding loaded libasyncloop:
// its libasyncloop.so.0 dependency resolves to that same copy.
func loadRPC(t testing.TB) *rpcLib {
	t.Helper()
	rpcOnce.Do(func() {
		p := rpcPath()
		if !fileExists(p) {
			rpcErr = fmt.Errorf("%s is not built (make build)", p)
			return
		}
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			rpcErr = err
			return
		}
		r := &rpcLib{}
		for name, fp := range map[string]any{
			"rpc_version": &r.version, "rpc_live_objects": &r.liveObjects,
			"rpc_server_start": &r.serverStart,
			"rpc_server_port":  &r.serverPort, "rpc_server_requests": &r.serverRequests,
			"rpc_server_close": &r.serverClose, "rpc_server_recv": &r.serverRecv,
			"rpc_request_data": &r.requestData, "rpc_request_respond": &r.requestRespond,
			"rpc_connect": &r.connect, "rpc_call": &r.call, "rpc_reply_data": &r.replyData,
			"rpc_reply_free": &r.replyFree, "rpc_client_close": &r.clientClose,
			"rpc_client_send_raw": &r.clientSendRaw, "rpc_client_bench": &r.clientBench,
		} {
			purego.RegisterLibFunc(fp, h, name)
		}
		rpcL = r
	})
	if rpcErr != nil {
		t.Skip(rpcErr)
	}
	if v := rpcL.version(); v != 1 {
		t.Fatalf("rpc_version %d", v)
	}
	return rpcL
}

// released checks (at the end of a test, after its last settle) that the
// library released every object it allocated.
func (r *rpcLib) released(t *testing.T, l *asyncloop.Loop) {
	t.Helper()
	for i := 0; i < 100 && r.liveObjects() != 0; i++ {
		l.RunOnce(10 * time.Millisecond)
	}
	if n := r.liveObjects(); n != 0 {
		t.Fatalf("the library still holds %d objects", n)
	}
}

func ptrOf(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

func cBytes(p, n uintptr) []byte {
	if n == 0 {
		return []byte{}
	}
	return bytes.Clone(unsafe.Slice((*byte)(unsafe.Pointer(p)), n))
}

func rcErr(rc int32) error {
	if rc < 0 {
		return &asyncloop.Error{Code: int(rc), Name: fmt.Sprintf("rc %d", rc)}
	}
	return nil
}

func (r *rpcLib) startServer(t *testing.T, l *asyncloop.Loop) (uintptr, int) {
	t.Helper()
	lh, err := l.CHandle()
	if err != nil {
		t.Fatal(err)
	}
	var f uintptr
	if err := rcErr(r.serverStart(lh, "127.0.0.1", 0, &f)); err != nil {
		t.Fatal(err)
	}
	wf, err := l.WrapFuture(bg, f)
	s := await(t, l, wf, err)
	return s, int(r.serverPort(s))
}

func (r *rpcLib) connectTo(t *testing.T, l *asyncloop.Loop, port int) uintptr {
	t.Helper()
	lh, _ := l.CHandle()
	var f uintptr
	if err := rcErr(r.connect(lh, "127.0.0.1", int32(port), &f)); err != nil {
		t.Fatal(err)
	}
	wf, err := l.WrapFuture(bg, f)
	return await(t, l, wf, err)
}

// callFuture starts a call; its Go future's result is the reply's bytes
// (copied and released on the loop thread by the reader).
func (r *rpcLib) callFuture(ctx context.Context, l *asyncloop.Loop, c uintptr, method int, data []byte) (*asyncloop.Future[[]byte], error) {
	var f uintptr
	if err := rcErr(r.call(c, int32(method), ptrOf(data), uintptr(len(data)), &f)); err != nil {
		return nil, err
	}
	return asyncloop.WrapFuture(l, ctx, f, func(fh uintptr) ([]byte, error) {
		rep, err := asyncloop.FutureResultPointer(fh)
		if err != nil {
			return nil, err
		}
		var n uintptr
		p := r.replyData(rep, &n)
		b := cBytes(p, n)
		r.replyFree(rep)
		return b, nil
	})
}

func sleepPayload(ms uint32, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, ms)
	return append(b, data...)
}

func rpcFrame(id uint32, kind byte, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)+5))
	b = binary.BigEndian.AppendUint32(b, id)
	return append(append(b, kind), payload...)
}

func TestInteropCHandleAndBadFutures(t *testing.T) {
	loadRPC(t)
	l := newLoop(t)
	h, err := l.CHandle()
	if err != nil || h == 0 {
		t.Fatalf("CHandle %#x %v", h, err)
	}
	if _, err := l.WrapFuture(bg, 0); err == nil {
		t.Fatal("WrapFuture(0) succeeded")
	}
	var e *asyncloop.Error
	if _, err := l.WrapFuture(bg, 12345); !errors.As(err, &e) || e.Code != asyncloop.EBADF {
		t.Fatalf("WrapFuture(stale): %v", err)
	}
	other, err := asyncloop.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := other.CHandle(); !errors.Is(err, asyncloop.ErrClosed) {
		t.Fatalf("CHandle of a closed loop: %v", err)
	}
}

func TestInteropEveryMethodNextToGoIO(t *testing.T) {
	r := loadRPC(t)
	l := newLoop(t)
	base := asyncloop.LiveCallbacks()
	srv, port := r.startServer(t, l)
	c := r.connectTo(t, l, port)

	// The Go host's own echo server and client on the same loop.
	lost := make(chan error, 4)
	hostSrv, hostPort := startEchoServer(t, l, lost)
	hostDone, _ := l.NewFuture()
	hostLost, _ := l.NewFuture()
	hostMsg := bytes.Repeat([]byte("go host traffic "), 4096)
	cl := &echoClient{want: len(hostMsg), done: hostDone, lost: hostLost}
	cf, err := l.CreateConnection(bg, "127.0.0.1", hostPort, cl)
	hostTr := await(t, l, cf, err)
	if _, err := hostTr.Write(hostMsg); err != nil {
		t.Fatal(err)
	}
	// Go timers on the loop.
	var ticks []int
	var tick func()
	tick = func() {
		ticks = append(ticks, len(ticks))
		if len(ticks) < 6 {
			l.CallLater(10*time.Millisecond, tick)
		}
	}
	l.CallLater(10*time.Millisecond, tick)

	big := make([]byte, 3*1024*1024+17)
	for i := range big {
		big[i] = byte(i*131 + 7)
	}
	rev := make([]byte, len(big))
	for i := range big {
		rev[i] = big[len(big)-1-i]
	}
	type want struct {
		method int
		in     []byte
		out    []byte
	}
	calls := []want{
		{rpcEcho, []byte("hello"), []byte("hello")},
		{rpcEcho, []byte{}, []byte{}},
		{rpcReverse, []byte("abcdef"), []byte("fedcba")},
		{rpcEcho, big, big},
		{rpcReverse, big, rev},
		{rpcSleep, sleepPayload(60, "zzz"), []byte("zzz")},
	}
	start := time.Now()
	var futs []*asyncloop.Future[[]byte]
	for _, w := range calls {
		f, err := r.callFuture(bg, l, c, w.method, w.in)
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	// Out of order: decreasing sleeps complete in reverse.
	var order []string
	var sleeps []*asyncloop.Future[[]byte]
	for i := 0; i < 20; i++ {
		f, err := r.callFuture(bg, l, c, rpcSleep, sleepPayload(uint32(2*(20-i)), fmt.Sprintf("k%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.AddDoneCallback(func(f *asyncloop.Future[[]byte]) {
			b, _ := f.Result()
			order = append(order, string(b))
		})
		sleeps = append(sleeps, f)
	}
	for i, f := range futs {
		got := await(t, l, f, nil)
		if !bytes.Equal(got, calls[i].out) {
			t.Fatalf("call %d: %d bytes, want %d", i, len(got), len(calls[i].out))
		}
	}
	if d := time.Since(start); d < 55*time.Millisecond {
		t.Fatalf("sleep answered after %v", d)
	}
	for i, f := range sleeps {
		if got := await(t, l, f, nil); string(got) != fmt.Sprintf("k%d", i) {
			t.Fatalf("sleep %d: %q", i, got)
		}
	}
	if order[0] != "k19" {
		t.Fatalf("first done %q, want k19", order[0])
	}
	ff, err := r.callFuture(bg, l, c, rpcFail, []byte("no such key"))
	if err != nil {
		t.Fatal(err)
	}
	untilDone(t, l, ff, 5*time.Second)
	var e *asyncloop.Error
	if _, err := ff.Result(); !errors.As(err, &e) || e.Code != asyncloop.EIO || e.Message != "no such key" {
		t.Fatalf("fail call: %v", err)
	}
	if n := await(t, l, hostDone, nil); n != len(hostMsg) || !bytes.Equal(cl.got, hostMsg) {
		t.Fatalf("host echo: %v bytes", n)
	}
	for len(ticks) < 6 {
		l.RunOnce(10 * time.Millisecond)
	}
	if got := r.serverRequests(srv); got != 27 {
		t.Fatalf("%d requests", got)
	}
	hostTr.Close()
	await(t, l, hostLost, nil)
	hostSrv.Close()
	r.clientClose(c)
	r.serverClose(srv)
	settle(l)
	settle(l)
	checkLeaks(t, base)
	r.released(t, l)
}

func TestInteropGoAnswersRequests(t *testing.T) {
	r := loadRPC(t)
	l := newLoop(t)
	srv, port := r.startServer(t, l)
	c := r.connectTo(t, l, port)
	answered := 0
	var serve func()
	serve = func() {
		var f uintptr
		if err := rcErr(r.serverRecv(srv, &f)); err != nil {
			t.Error(err)
			return
		}
		wf, err := l.WrapFuture(bg, f)
		if err != nil {
			t.Error(err)
			return
		}
		wf.AddDoneCallback(func(wf *asyncloop.Future[uintptr]) {
			req, err := wf.Result()
			if err != nil {
				return // closed
			}
			var n uintptr
			data := cBytes(r.requestData(req, &n), n)
			// a Go timer between the request and its answer
			l.CallLater(time.Millisecond, func() {
				if string(data) == "fail" {
					msg := []byte("go refused")
					r.requestRespond(req, 0, ptrOf(msg), uintptr(len(msg)))
				} else {
					out := append([]byte("go:"), data...)
					r.requestRespond(req, 1, ptrOf(out), uintptr(len(out)))
				}
				answered++
			})
			serve()
		})
	}
	serve()
	var futs []*asyncloop.Future[[]byte]
	for i := 0; i < 10; i++ {
		f, err := r.callFuture(bg, l, c, rpcHost, []byte(fmt.Sprintf("q%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	for i, f := range futs {
		if got := await(t, l, f, nil); string(got) != fmt.Sprintf("go:q%d", i) {
			t.Fatalf("reply %d: %q", i, got)
		}
	}
	ff, _ := r.callFuture(bg, l, c, rpcHost, []byte("fail"))
	untilDone(t, l, ff, 5*time.Second)
	if _, err := ff.Result(); err == nil || !bytes.Contains([]byte(err.Error()), []byte("go refused")) {
		t.Fatalf("refused call: %v", err)
	}
	if answered != 11 {
		t.Fatalf("answered %d", answered)
	}
	r.clientClose(c)
	r.serverClose(srv) // fails the pending receive with ECLOSED
	settle(l)
	r.released(t, l)
}

func TestInteropLibraryErrorReachesGoHandler(t *testing.T) {
	r := loadRPC(t)
	l := newLoop(t)
	var seen []*asyncloop.ExceptionContext
	l.SetExceptionHandler(func(_ *asyncloop.Loop, ctx *asyncloop.ExceptionContext) {
		seen = append(seen, ctx)
	})
	srv, port := r.startServer(t, l)
	c := r.connectTo(t, l, port)
	pending, err := r.callFuture(bg, l, c, rpcSleep, sleepPayload(500, "x"))
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1}
	r.clientSendRaw(c, ptrOf(bad), uintptr(len(bad)))
	untilDone(t, l, pending, 5*time.Second)
	var e *asyncloop.Error
	if _, err := pending.Result(); !errors.As(err, &e) || e.Code != asyncloop.ECONNRESET {
		t.Fatalf("pending call: %v", err)
	}
	if len(seen) != 1 || !bytes.Contains([]byte(seen[0].Message), []byte("bad frame length (4294967295)")) {
		t.Fatalf("exception handler saw %d: %+v", len(seen), seen)
	}
	if !errors.As(seen[0].Err, &e) || e.Code != asyncloop.EINVAL {
		t.Fatalf("context error %v", seen[0].Err)
	}
	// A Go client speaking the wire format gets its frames answered.
	got, _ := l.NewFuture()
	lostF, _ := l.NewFuture()
	cl := &echoClient{want: 9 + 5, done: got, lost: lostF}
	cf, err := l.CreateConnection(bg, "127.0.0.1", port, cl)
	tr := await(t, l, cf, err)
	tr.Write(rpcFrame(42, rpcReverse, []byte("olleh")))
	await(t, l, got, nil)
	if !bytes.Equal(cl.got, rpcFrame(42, 0x80, []byte("hello"))) {
		t.Fatalf("raw reply % x", cl.got)
	}
	tr.Close()
	await(t, l, lostF, nil)
	r.clientClose(c)
	r.serverClose(srv)
	settle(l)
	r.released(t, l)
}

func TestInteropContextCancelsCFuture(t *testing.T) {
	r := loadRPC(t)
	l := newLoop(t)
	srv, port := r.startServer(t, l)
	c := r.connectTo(t, l, port)
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	slow, err := r.callFuture(ctx, l, c, rpcSleep, sleepPayload(300, "late"))
	if err != nil {
		t.Fatal(err)
	}
	untilDone(t, l, slow, 5*time.Second)
	if _, err := slow.Result(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled call: %v", err)
	}
	f, err := r.callFuture(bg, l, c, rpcSleep, sleepPayload(350, "after"))
	if got := await(t, l, f, err); string(got) != "after" {
		t.Fatalf("%q", got)
	}
	var bf uintptr
	if err := rcErr(r.clientBench(c, 2000, 16, 200, &bf)); err != nil {
		t.Fatal(err)
	}
	wf, err := l.WrapFuture(bg, bf)
	await(t, l, wf, err)
	if n := r.serverRequests(srv); n != 2002 {
		t.Fatalf("%d requests", n)
	}
	r.clientClose(c)
	r.serverClose(srv)
	settle(l)
	r.released(t, l)
}
