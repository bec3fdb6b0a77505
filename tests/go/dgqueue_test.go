package gotest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
	"github.com/ebitengine/purego"
)

// The datagram endpoints of a loop the binding owns use the library's event
// queue: the run calls poll and dispatch the records in Go. These check
// what a callback sees there is what it saw when the library called it.

// udpLog records what the endpoint's protocol sees, and what the loop says
// about itself from inside DatagramReceived.
type udpLog struct {
	asyncloop.BaseDatagramProtocol
	name    string
	l       *asyncloop.Loop
	tr      *asyncloop.DatagramTransport
	log     *[]string
	onFirst func()
	n       int
}

func (u *udpLog) ConnectionMade(t *asyncloop.DatagramTransport) { u.tr = t }
func (u *udpLog) DatagramReceived(b []byte, addr net.Addr) {
	u.n++
	running, _ := asyncloop.GetRunningLoop()
	*u.log = append(*u.log, fmt.Sprintf("%s:%s running=%v current=%v", u.name, b, u.l.IsRunning(), running == u.l))
	if u.n == 1 && u.onFirst != nil {
		u.onFirst()
	}
	u.tr.SendTo(b, addr)
}

func listenUDP(t *testing.T, l *asyncloop.Loop, p asyncloop.DatagramProtocol) (*asyncloop.DatagramTransport, *net.UDPAddr) {
	t.Helper()
	f, err := l.CreateDatagramEndpoint(bg, p, asyncloop.WithLocalAddr("127.0.0.1", 0))
	tr := await(t, l, f, err)
	return tr, tr.LocalAddr().(*net.UDPAddr)
}

func dialUDP(t *testing.T, to *net.UDPAddr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Datagrams that wait together are dispatched in order in one iteration;
// a callback scheduled by the first runs after all of them (asyncio runs an
// iteration's I/O callbacks before what they schedule); inside, the loop
// is running and current; a protocol set with SetProtocol by the first
// gets the rest; replies reach their senders.
func TestDatagramQueueOrder(t *testing.T) {
	l := newLoop(t)
	var log []string
	second := &udpLog{name: "B", l: l, log: &log}
	first := &udpLog{name: "A", l: l, log: &log}
	tr, addr := listenUDP(t, l, first)
	second.tr = tr
	first.onFirst = func() {
		l.CallSoon(func() { log = append(log, "soon"); l.Stop() })
		if err := tr.SetProtocol(second); err != nil {
			t.Error(err)
		}
	}
	c := dialUDP(t, addr)
	for i := 1; i <= 3; i++ {
		c.Write([]byte(fmt.Sprint(i)))
	}
	time.Sleep(50 * time.Millisecond) // all three wait in the socket
	runWithTimeout(t, l, 5*time.Second)
	want := "A:1 running=true current=true|B:2 running=true current=true|B:3 running=true current=true|soon"
	if got := strings.Join(log, "|"); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 1; i <= 3; i++ {
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != fmt.Sprint(i) {
			t.Fatalf("reply %d: %q %v", i, buf[:n], err)
		}
	}
	if l.IsRunning() {
		t.Fatal("IsRunning after the run returned")
	}
	tr.Abort()
	settle(l)
}

// A panic in DatagramReceived stops the loop and comes out of the run
// call as a *PanicError; the endpoint and the loop go on working.
func TestDatagramQueuePanic(t *testing.T) {
	l := newLoop(t)
	var log []string
	p := &udpLog{name: "A", l: l, log: &log}
	p.onFirst = func() { panic("boom") }
	tr, addr := listenUDP(t, l, p)
	c := dialUDP(t, addr)
	c.Write([]byte("x"))
	var got any
	func() {
		defer func() { got = recover() }()
		runWithTimeout(t, l, 5*time.Second)
	}()
	if pe, ok := got.(*asyncloop.PanicError); !ok || pe.Value != "boom" {
		t.Fatalf("recovered %#v, want *PanicError{boom}", got)
	}
	c.Write([]byte("y"))
	l.CallLater(100*time.Millisecond, func() { l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if len(log) != 2 || !strings.HasPrefix(log[1], "A:y") {
		t.Fatalf("after the panic: %q", log)
	}
	tr.Abort()
	settle(l)
}

// aloop_loop_stop called by other code that has the loop's C handle (a
// plugin, a C library; here from another thread) stops RunForever, and
// RunUntilComplete with ErrStopped, of a loop run over polls.
func TestDatagramQueueForeignStop(t *testing.T) {
	l := newLoop(t)
	var log []string
	tr, _ := listenUDP(t, l, &udpLog{name: "A", l: l, log: &log})
	h, err := purego.Dlopen(libPath, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Fatal(err)
	}
	var cStop func(loop uintptr) int32
	purego.RegisterLibFunc(&cStop, h, "aloop_loop_stop")
	ch, err := l.CHandle()
	if err != nil {
		t.Fatal(err)
	}
	stopLater := func() {
		go func() {
			time.Sleep(50 * time.Millisecond)
			if rc := cStop(ch); rc != 0 {
				t.Errorf("aloop_loop_stop: %d", rc)
			}
		}()
	}
	stopLater()
	runWithTimeout(t, l, 5*time.Second)
	f, _ := asyncloop.NewFuture[int](l)
	stopLater()
	if err := untilDone(t, l, f, 5*time.Second); !errors.Is(err, asyncloop.ErrStopped) {
		t.Fatalf("RunUntilComplete: %v, want ErrStopped", err)
	}
	// The request was taken: the next run waits for its own stop.
	t0 := time.Now()
	l.CallLater(100*time.Millisecond, func() { l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
	if d := time.Since(t0); d < 90*time.Millisecond {
		t.Fatalf("the run after a stop returned after %v", d)
	}
	// Closing the loop from inside a run is refused, as before.
	l.CallSoon(func() {
		if err := l.Close(); !errors.Is(err, syscall.EBUSY) {
			t.Errorf("Close inside the run: %v", err)
		}
		l.Stop()
	})
	runWithTimeout(t, l, 5*time.Second)
	tr.Abort()
	settle(l)
}
