package core

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// harness owns one loop driven by the test goroutine, which is locked to its
// OS thread so that "runs on the loop thread" can be checked with gettid.
type harness struct {
	t   *testing.T
	l   *Loop
	tid int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	runtime.LockOSThread()
	l, err := NewLoop()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("NewLoop: %v", err)
	}
	h := &harness{t: t, l: l, tid: unix.Gettid()}
	t.Cleanup(func() {
		if !l.IsClosed() && !l.IsRunning() {
			if err := l.Close(); err != nil {
				t.Errorf("Loop.Close at the end of the test: %v", err)
			}
		}
		runtime.UnlockOSThread()
	})
	return h
}

// onLoop reports an error when called off the loop's thread.
func (h *harness) onLoop(where string) {
	if tid := unix.Gettid(); tid != h.tid {
		h.t.Errorf("%s ran on thread %d, loop thread is %d", where, tid, h.tid)
	}
}

// runUntil runs loop iterations until cond holds, failing after timeout.
func (h *harness) runUntil(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		if err := h.l.RunOnceTimeout(0.01); err != nil {
			h.t.Fatalf("RunOnceTimeout while waiting for %s: %v", what, err)
		}
	}
}

// runFor runs the loop for about d (used to show something does NOT happen).
func (h *harness) runFor(d time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := h.l.RunOnceTimeout(0.005); err != nil {
			h.t.Fatalf("RunOnceTimeout: %v", err)
		}
	}
}

// runDefault runs Run(RunDefault) with a watchdog that stops the loop and
// fails the test if it did not return by itself within timeout.
func (h *harness) runDefault(timeout time.Duration) {
	h.t.Helper()
	var fired, returned atomic.Bool
	wd := time.AfterFunc(timeout, func() {
		fired.Store(true)
		h.l.Stop()
		// If even Stop cannot wake the loop, fail fast instead of hanging
		// until go test's global timeout.
		time.Sleep(3 * time.Second)
		if !returned.Load() {
			panic("Run(RunDefault) did not return 3s after Stop from another goroutine: lost wake-up")
		}
	})
	err := h.l.Run(RunDefault)
	returned.Store(true)
	wd.Stop()
	if err != nil {
		h.t.Fatalf("Run(RunDefault): %v", err)
	}
	if fired.Load() {
		h.t.Fatalf("Run(RunDefault) did not return within %v (watchdog stopped it)", timeout)
	}
}

func (h *harness) await(f *Future, timeout time.Duration) (any, error) {
	h.t.Helper()
	h.runUntil("future", timeout, f.Done)
	return f.Result()
}

// serve starts a server on 127.0.0.1:0 whose connections get newProto().
func (h *harness) serve(newProto func() Protocol) (*Server, int) {
	h.t.Helper()
	f, err := h.l.CreateServer("127.0.0.1", 0, func(t *Transport) error {
		t.SetProtocol(newProto())
		return nil
	}, nil)
	if err != nil {
		h.t.Fatalf("CreateServer: %v", err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		h.t.Fatalf("CreateServer future: %v", err)
	}
	s := v.(*Server)
	addrs := s.Addrs()
	if len(addrs) != 1 {
		h.t.Fatalf("server has %d addresses, want 1", len(addrs))
	}
	sa, ok := addrs[0].(*unix.SockaddrInet4)
	if !ok || sa.Port == 0 || sa.Addr != [4]byte{127, 0, 0, 1} {
		h.t.Fatalf("server bound to %#v", addrs[0])
	}
	return s, sa.Port
}

// dial connects to 127.0.0.1:port with proto and waits for the transport.
func (h *harness) dial(port int, proto Protocol) *Transport {
	h.t.Helper()
	f, err := h.l.CreateConnection("127.0.0.1", port, proto, nil)
	if err != nil {
		h.t.Fatalf("CreateConnection: %v", err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		h.t.Fatalf("CreateConnection future: %v", err)
	}
	return v.(*Transport)
}

// recProto records every protocol callback and checks asyncio's state
// machine: made once, data only between made and eof/lost, lost once.
type recProto struct {
	h       *harness
	name    string
	tr      *Transport
	made    int
	eofs    int
	losts   int
	pauses  int
	resumes int
	data    []byte
	lostErr error
	log     []string

	onMade   func(*Transport)
	onData   func(*Transport, []byte)
	onEOF    func(*Transport) bool
	onLost   func(*Transport, error)
	onPause  func(*Transport)
	onResume func(*Transport)
}

func newRec(h *harness, name string) *recProto { return &recProto{h: h, name: name} }

func (p *recProto) errorf(format string, args ...any) {
	p.h.t.Errorf("%s: %s", p.name, fmt.Sprintf(format, args...))
}

func (p *recProto) ConnectionMade(t *Transport) {
	p.h.onLoop(p.name + ".ConnectionMade")
	if p.made > 0 || p.losts > 0 {
		p.errorf("ConnectionMade after made=%d lost=%d", p.made, p.losts)
	}
	p.made++
	p.tr = t
	p.log = append(p.log, "made")
	if p.onMade != nil {
		p.onMade(t)
	}
}

func (p *recProto) DataReceived(t *Transport, b []byte) {
	p.h.onLoop(p.name + ".DataReceived")
	if p.made != 1 || p.eofs > 0 || p.losts > 0 {
		p.errorf("DataReceived with made=%d eof=%d lost=%d", p.made, p.eofs, p.losts)
	}
	if t != p.tr {
		p.errorf("DataReceived for another transport")
	}
	if len(b) == 0 {
		p.errorf("DataReceived with no data")
	}
	p.data = append(p.data, b...)
	if p.onData != nil {
		p.onData(t, b)
	}
}

func (p *recProto) EOFReceived(t *Transport) bool {
	p.h.onLoop(p.name + ".EOFReceived")
	if p.made != 1 || p.eofs > 0 || p.losts > 0 {
		p.errorf("EOFReceived with made=%d eof=%d lost=%d", p.made, p.eofs, p.losts)
	}
	p.eofs++
	p.log = append(p.log, "eof")
	if p.onEOF != nil {
		return p.onEOF(t)
	}
	return false
}

func (p *recProto) ConnectionLost(t *Transport, err error) {
	p.h.onLoop(p.name + ".ConnectionLost")
	if p.made != 1 || p.losts > 0 {
		p.errorf("ConnectionLost with made=%d lost=%d", p.made, p.losts)
	}
	p.losts++
	p.lostErr = err
	p.log = append(p.log, "lost")
	if p.onLost != nil {
		p.onLost(t, err)
	}
}

func (p *recProto) PauseWriting(t *Transport) {
	p.h.onLoop(p.name + ".PauseWriting")
	if p.pauses != p.resumes {
		p.errorf("PauseWriting twice without ResumeWriting")
	}
	p.pauses++
	if p.onPause != nil {
		p.onPause(t)
	}
}

func (p *recProto) ResumeWriting(t *Transport) {
	p.h.onLoop(p.name + ".ResumeWriting")
	if p.resumes+1 != p.pauses {
		p.errorf("ResumeWriting without PauseWriting")
	}
	p.resumes++
	if p.onResume != nil {
		p.onResume(t)
	}
}

// pattern returns n deterministic, non-periodic-looking bytes.
func pattern(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// firstDiff describes where two byte slices differ.
func firstDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return "equal"
	}
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("len got %d want %d, first difference at byte %d", len(got), len(want), i)
		}
	}
	return fmt.Sprintf("len got %d want %d (common prefix equal)", len(got), len(want))
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	return len(ents)
}

func readable(t *testing.T, fd int, timeoutMs int) bool {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, timeoutMs)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return n == 1 && pfd[0].Revents&unix.POLLIN != 0
	}
}
