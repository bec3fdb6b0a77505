package gotest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// Typed futures: results without casts, typed done-callbacks, removal by
// ID; nothing to release.
func TestTypedFutures(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	f, err := asyncloop.NewFuture[int](l)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	id1, err := f.AddDoneCallback(func(g *asyncloop.Future[int]) {
		v, _ := g.Result()
		got = append(got, "one:"+string(rune('0'+v)))
	})
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := f.AddDoneCallback(func(*asyncloop.Future[int]) { got = append(got, "two") })
	if id1 == id2 || id1 == 0 {
		t.Fatalf("IDs %v %v", id1, id2)
	}
	if n := f.RemoveDoneCallback(id2); n != 1 {
		t.Fatalf("RemoveDoneCallback removed %d", n)
	}
	if n := f.RemoveDoneCallback(id2); n != 0 {
		t.Fatalf("second RemoveDoneCallback removed %d", n)
	}
	l.CallSoon(func() { f.SetResult(7) })
	if err := l.RunUntilComplete(f); err != nil {
		t.Fatal(err)
	}
	var v int = must(f.Result())
	if v != 7 {
		t.Fatalf("Result %d", v)
	}
	// A callback added once the future is done runs on the next iteration.
	id3, err := f.AddDoneCallback(func(*asyncloop.Future[int]) { got = append(got, "late") })
	if err != nil || id3 != 0 {
		t.Fatalf("late AddDoneCallback %v %v", id3, err)
	}
	settle(l)
	if strings.Join(got, ",") != "one:7,late" {
		t.Fatalf("callbacks %v", got)
	}
	// RunUntilComplete of a done future returns its result at once.
	if err := l.RunUntilComplete(f); err != nil {
		t.Fatal(err)
	}
	// Library futures release themselves when done: every userdata entry
	// of these operations is gone.
	for range 20 {
		g, err := l.GetAddrInfo(bg, "127.0.0.1", "80", 0, syscall.SOCK_STREAM, 0, 0)
		addrs := await(t, l, g, err)
		if len(addrs) != 1 || addrs[0].Addr.String() != "127.0.0.1:80" {
			t.Fatalf("getaddrinfo %+v", addrs)
		}
	}
	settle(l)
	checkLeaks(t, base)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Server.WaitClosed takes a context that cancels the wait, not the server.
func TestServerWaitClosedContext(t *testing.T) {
	l := newLoop(t)
	lost := make(chan error, 1)
	srv, port := startEchoServer(t, l, lost)
	done, _ := asyncloop.NewFuture[any](l)
	cl, _ := asyncloop.NewFuture[any](l)
	c := &echoClient{want: 1, done: done, lost: cl}
	cf, err := l.CreateConnection(bg, "127.0.0.1", port, c)
	tr := await(t, l, cf, err)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if srv.IsServing() {
		t.Fatal("serving after Close")
	}
	if srv.Addr() == nil || srv.Port() != port {
		t.Fatalf("addresses after Close: %v %d", srv.Addr(), srv.Port())
	}
	// A connection is still open: the wait times out.
	ctx, cancel := context.WithTimeout(bg, 30*time.Millisecond)
	defer cancel()
	w, err := srv.WaitClosed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, w, 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitClosed with an open connection: %v", err)
	}
	// Once the connection is gone it resolves.
	tr.Close()
	w2, err := srv.WaitClosed(bg)
	if err != nil {
		t.Fatal(err)
	}
	if err := untilDone(t, l, w2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	settle(l)
}

// A server nobody can reach any more keeps serving (as in asyncio); debug
// mode reports it, and Loop.Close releases it.
func TestDroppedServerIsReleasedAtClose(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l, err := asyncloop.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	l.SetDebug(true)
	var reports []string
	l.SetExceptionHandler(func(_ *asyncloop.Loop, c *asyncloop.ExceptionContext) { reports = append(reports, c.Message) })
	port := func() int {
		sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return &echoServer{t: t, lost: make(chan error, 4)} })
		srv := await(t, l, sf, err)
		return srv.Port()
	}()
	for i := 0; i < 50 && len(reports) == 0; i++ {
		runtime.GC()
		l.RunOnce(10 * time.Millisecond)
	}
	if len(reports) != 1 || !strings.Contains(reports[0], "unclosed server on 127.0.0.1:") || !strings.Contains(reports[0], "futures_test.go") {
		t.Fatalf("reports %q", reports)
	}
	// Still serving.
	c := newCollector(t, l, 4)
	cf, err := l.CreateConnection(bg, "127.0.0.1", port, c)
	tr := await(t, l, cf, err)
	tr.WriteString("echo")
	if got := await(t, l, c.got, nil); string(got) != "echo" {
		t.Fatalf("the dropped server did not serve: %q", got)
	}
	tr.Close()
	await(t, l, c.lost, nil)
	settle(l)
	// Close releases it (no ALOOP_EBUSY), and the port is closed.
	if err := l.Close(); err != nil {
		t.Fatalf("Close with a dropped server: %v", err)
	}
	if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		conn.Close()
		t.Fatal("the port still accepts after Close")
	}
	checkLeaks(t, base)
}

// A Loop dropped without Close is closed by a cleanup; in debug mode that
// is reported on stderr (checked in a child process).
func TestDroppedLoopReported(t *testing.T) {
	if os.Getenv(childEnv) == "droppedloop" {
		if err := asyncloop.Open(libPath); err != nil {
			t.Fatal(err)
		}
		func() {
			l, err := asyncloop.NewLoop()
			if err != nil {
				t.Fatal(err)
			}
			l.SetDebug(true)
		}()
		for range 20 {
			runtime.GC()
			time.Sleep(5 * time.Millisecond)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDroppedLoopReported$")
	cmd.Env = append(os.Environ(), childEnv+"=droppedloop", asyncloop.LibraryEnv+"="+libPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "asyncloop: a Loop created at") || !strings.Contains(string(out), "futures_test.go") {
		t.Fatalf("no leak report:\n%s", out)
	}
}

// get_running_loop / get_event_loop / set_event_loop, per OS thread.
func TestCurrentLoop(t *testing.T) {
	l := newLoop(t) // locked to this thread
	if _, err := asyncloop.GetRunningLoop(); !errors.Is(err, asyncloop.ErrNoLoop) {
		t.Fatalf("GetRunningLoop outside a run: %v", err)
	}
	var inside *asyncloop.Loop
	var insideErr error
	l.CallSoon(func() { inside, insideErr = asyncloop.GetRunningLoop(); l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if inside != l || insideErr != nil {
		t.Fatalf("GetRunningLoop in a callback: %p %v, want %p", inside, insideErr, l)
	}
	if err := asyncloop.SetEventLoop(l); err != nil {
		t.Fatal(err)
	}
	if got, err := asyncloop.GetEventLoop(); got != l || err != nil {
		t.Fatalf("GetEventLoop %p %v", got, err)
	}
	asyncloop.SetEventLoop(nil)
	if _, err := asyncloop.GetEventLoop(); !errors.Is(err, asyncloop.ErrNoLoop) {
		t.Fatalf("GetEventLoop after unset: %v", err)
	}
}

// get_exception_handler returns the Go function that was set.
func TestGetExceptionHandler(t *testing.T) {
	l := newLoop(t)
	if h, err := l.ExceptionHandler(); h != nil || err != nil {
		t.Fatalf("default handler: %v %v", h != nil, err)
	}
	called := 0
	l.SetExceptionHandler(func(*asyncloop.Loop, *asyncloop.ExceptionContext) { called++ })
	h, err := l.ExceptionHandler()
	if h == nil || err != nil {
		t.Fatalf("ExceptionHandler %v %v", h != nil, err)
	}
	h(l, &asyncloop.ExceptionContext{})
	if called != 1 {
		t.Fatal("not the handler that was set")
	}
	l.SetExceptionHandler(nil)
	if h, _ := l.ExceptionHandler(); h != nil {
		t.Fatal("handler not reset")
	}
}

// A Loop dropped with a Server nobody references either is released by its
// cleanup with aloop_loop_close_force: the port closes (aloop_loop_free
// alone refused the busy loop, which leaked with its listening socket).
func TestDroppedLoopWithDroppedServerIsReleased(t *testing.T) {
	port := func() int {
		l, err := asyncloop.NewLoop()
		if err != nil {
			t.Fatal(err)
		}
		sf, err := l.CreateServer(bg, "127.0.0.1", 0, func() asyncloop.Protocol { return &echoServer{t: t, lost: make(chan error, 4)} })
		srv := await(t, l, sf, err)
		return srv.Port()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if i > 0 {
			runtime.GC()
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			if i == 0 {
				t.Fatalf("the server did not listen: %v", err)
			}
			break // refused: the loop and its server were released
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server of a dropped Loop still listens")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
