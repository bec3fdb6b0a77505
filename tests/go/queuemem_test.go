package gotest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// The event queue's memory (records, read arena, the poll block) is kept
// by the library from the loop's first datagram endpoint until the loop is
// freed, so the binding maps it outside the Go heap and unmaps it once the
// library dropped it (bindings/go/cmem.go). These check that: many loops
// that used the queue are closed, or dropped without Close and collected,
// with collections forced between them; each loop's arena is unmapped
// afterwards (it was Go heap memory, which stays mapped, before); datagrams
// still flow on every new loop (a library write into an unmapped queue
// would kill the process with SIGSEGV, into a freed Go object corrupt the
// heap).

// mapping is the [start, end) of the mapping of /proc/self/maps that holds
// addr; ok is false when nothing is mapped there.
func mapping(t *testing.T, addr uintptr) (start, end uintptr, ok bool) {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		r, _, _ := strings.Cut(sc.Text(), " ")
		a, b, _ := strings.Cut(r, "-")
		s, err1 := strconv.ParseUint(a, 16, 64)
		e, err2 := strconv.ParseUint(b, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("/proc/self/maps: %q", sc.Text())
		}
		if uintptr(s) <= addr && addr < uintptr(e) {
			return uintptr(s), uintptr(e), true
		}
	}
	return 0, 0, false
}

// arenaEcho echoes datagrams and records where the queue's arena is.
type arenaEcho struct {
	asyncloop.BaseDatagramProtocol
	tr    *asyncloop.DatagramTransport
	arena uintptr // where the last datagram was (the queue's arena)
	n     int
}

func (e *arenaEcho) ConnectionMade(t *asyncloop.DatagramTransport) { e.tr = t }
func (e *arenaEcho) DatagramReceived(b []byte, addr net.Addr) {
	e.n++
	if len(b) > 0 {
		e.arena = uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	}
	e.tr.SendTo(b, addr)
}

// useQueue opens a datagram endpoint on l (which gives l its event queue),
// echoes a few datagrams through it, aborts it and runs until the library
// released its protocol. It returns where the arena was.
func useQueue(t *testing.T, l *asyncloop.Loop, round int) uintptr {
	t.Helper()
	base := asyncloop.LiveCallbacks()
	e := &arenaEcho{}
	f, err := l.CreateDatagramEndpoint(bg, e, asyncloop.WithLocalAddr("127.0.0.1", 0))
	tr := await(t, l, f, err)
	c, err := net.DialUDP("udp", nil, tr.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("round %d datagram %d", round, i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		got := ""
		for tries := 0; tries < 500 && got == ""; tries++ {
			if err := l.RunOnce(10 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if n, err := c.Read(buf); err == nil {
				got = string(buf[:n])
			}
		}
		if got != msg {
			t.Fatalf("round %d: echo %q, want %q", round, got, msg)
		}
	}
	if e.arena == 0 {
		t.Fatalf("round %d: no datagram seen", round)
	}
	tr.Abort()
	// connection_lost, then the free_cb at the start of the next poll.
	for tries := 0; tries < 100 && asyncloop.LiveCallbacks() > base; tries++ {
		if err := l.RunOnce(time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if n := asyncloop.LiveCallbacks() - base; n != 0 {
		t.Fatalf("round %d: %d userdata entries still live after the endpoint closed", round, n)
	}
	return e.arena
}

// gc forces collections and gives freed memory back to the OS, so that a
// freed Go object the library still wrote into would be reused or gone.
func gc() {
	runtime.GC()
	debug.FreeOSMemory()
}

func TestEventQueueMemoryAcrossLoops(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const rounds = 24
	for round := 0; round < rounds; round++ {
		l, err := asyncloop.NewLoop()
		if err != nil {
			t.Fatal(err)
		}
		arena := useQueue(t, l, round)
		s, e, ok := mapping(t, arena)
		if !ok {
			t.Fatalf("round %d: the arena %#x is not mapped while the loop lives", round, arena)
		}
		gc()
		if round%2 == 0 {
			// Closed and freed: the arena is unmapped at once.
			if err := l.Close(); err != nil {
				t.Fatalf("round %d: Close: %v", round, err)
			}
			if s2, e2, ok := mapping(t, arena); ok && s2 == s && e2 == e {
				t.Fatalf("round %d: the arena %#x (mapping %#x-%#x) is still mapped after Close: Go heap memory, or not given back", round, arena, s, e)
			}
		} else {
			// Dropped without Close: the loop's cleanup closes and frees
			// it, then unmaps the arena.
			l = nil
			deadline := time.Now().Add(10 * time.Second)
			for {
				gc()
				s2, e2, ok := mapping(t, arena)
				if !ok || s2 != s || e2 != e {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: the arena %#x of a dropped loop is still mapped (%#x-%#x)", round, arena, s, e)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		gc()
	}
	// Datagrams still flow on a new loop, and its queue works after all
	// that memory came and went.
	l := newLoop(t)
	useQueue(t, l, rounds)
	gc()
	useQueue(t, l, rounds+1)
}
