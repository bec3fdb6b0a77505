//go:build linux

package poll

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func fdReadable(t *testing.T, fd int) bool {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestWakeCoalesced(t *testing.T) {
	p := newPoller(t)
	var hooks atomic.Int32
	f := func() { hooks.Add(1) }
	p.OnWake.Store(&f)
	if fdReadable(t, p.Fd()) {
		t.Fatalf("fresh poller fd readable")
	}
	for i := 0; i < 10; i++ {
		p.Wake()
	}
	if hooks.Load() != 1 {
		t.Fatalf("10 wakes before a wait called the hook %d times, want 1 (coalesced)", hooks.Load())
	}
	if !fdReadable(t, p.Fd()) {
		t.Fatalf("poller fd not readable after Wake")
	}
	calls := 0
	woken, err := p.Wait(0, func(int, uint32) { calls++ })
	if err != nil || !woken || calls != 0 {
		t.Fatalf("Wait after Wake: woken=%v err=%v fd callbacks=%d", woken, err, calls)
	}
	if fdReadable(t, p.Fd()) {
		t.Fatalf("poller fd still readable after the wake-up was consumed")
	}
	woken, _ = p.Wait(0, func(int, uint32) { calls++ })
	if woken {
		t.Fatalf("second Wait reports a wake-up")
	}
	p.Wake()
	if hooks.Load() != 2 {
		t.Fatalf("Wake after a consumed wake-up did not write again (hook calls %d)", hooks.Load())
	}
	p.OnWake.Store(nil)
	if woken, _ := p.Wait(0, nil); !woken {
		t.Fatalf("wake-up lost")
	}
}

// Every Wake after the waiter consumed the previous one must wake it: a
// ping-pong of 2000 rounds, each with a bounded wait.
func TestWakeNeverLost(t *testing.T) {
	p := newPoller(t)
	var seq atomic.Int64
	ack := make(chan int64)
	go func() {
		for i := int64(1); i <= 2000; i++ {
			seq.Store(i)
			p.Wake()
			if got := <-ack; got != i {
				return
			}
		}
	}()
	for i := int64(1); i <= 2000; i++ {
		deadline := time.Now().Add(5 * time.Second)
		for seq.Load() < i {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: wake-up lost", i)
			}
			if _, err := p.Wait(int64(time.Second), func(int, uint32) {}); err != nil {
				t.Fatal(err)
			}
		}
		ack <- i
	}
}

func TestWaitBlocksUntilWokenFromAnotherGoroutine(t *testing.T) {
	p := newPoller(t)
	go func() {
		time.Sleep(30 * time.Millisecond)
		p.Wake()
	}()
	start := time.Now()
	woken, err := p.Wait(int64(10*time.Second), func(int, uint32) {})
	if err != nil || !woken {
		t.Fatalf("Wait: woken=%v err=%v", woken, err)
	}
	if d := time.Since(start); d < 25*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Wait returned after %v", d)
	}
}

func TestWaitTimeoutNanoseconds(t *testing.T) {
	p := newPoller(t)
	best := time.Hour
	for i := 0; i < 20; i++ {
		start := time.Now()
		woken, err := p.Wait(300_000, func(int, uint32) { t.Errorf("fd callback on an idle poller") })
		d := time.Since(start)
		if err != nil || woken {
			t.Fatalf("Wait: woken=%v err=%v", woken, err)
		}
		if d < 300*time.Microsecond {
			t.Fatalf("Wait(300µs) returned after %v", d)
		}
		if d > 200*time.Millisecond {
			t.Fatalf("Wait(300µs) returned after %v", d)
		}
		best = min(best, d)
	}
	if best >= time.Millisecond {
		t.Fatalf("Wait(300µs) never returned within 1ms (best %v): timeout rounded to ms", best)
	}
}

func TestAddModDel(t *testing.T) {
	p := newPoller(t)
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer func() {
		unix.Close(fds[0])
		if fds[1] >= 0 {
			unix.Close(fds[1])
		}
	}()
	r, w := fds[0], fds[1]
	type ev struct {
		fd     int
		events uint32
	}
	collect := func() []ev {
		var got []ev
		if _, err := p.Wait(0, func(fd int, e uint32) { got = append(got, ev{fd, e}) }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if err := p.Add(r, In); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(r, In); err == nil {
		t.Fatalf("second Add of the same fd succeeded")
	}
	if got := collect(); len(got) != 0 {
		t.Fatalf("empty pipe reported: %v", got)
	}
	unix.Write(w, []byte("x"))
	for i := 0; i < 2; i++ { // level-triggered
		got := collect()
		if len(got) != 1 || got[0].fd != r || got[0].events&In == 0 {
			t.Fatalf("round %d: %v", i, got)
		}
	}
	if err := p.Add(w, Out); err != nil {
		t.Fatal(err)
	}
	got := collect()
	if len(got) != 2 {
		t.Fatalf("readable + writable: %v", got)
	}
	if err := p.Mod(w, In); err != nil { // a write end is never readable
		t.Fatal(err)
	}
	got = collect()
	if len(got) != 1 || got[0].fd != r {
		t.Fatalf("after Mod(w, In): %v", got)
	}
	if err := p.Del(r); err != nil {
		t.Fatal(err)
	}
	if err := p.Del(r); err == nil {
		t.Fatalf("second Del succeeded")
	}
	if got := collect(); len(got) != 0 {
		t.Fatalf("after Del: %v", got)
	}
	// Hang-up of the peer is reported on the read end.
	p.Add(r, In)
	unix.Close(w)
	fds[1] = -1
	got = collect()
	if len(got) != 1 || got[0].events&(In|Hup) == 0 {
		t.Fatalf("after closing the write end: %v", got)
	}
}

func TestManyReadyFds(t *testing.T) {
	p := newPoller(t)
	const n = 600 // more than the initial event array
	var ends []int
	for i := 0; i < n; i++ {
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			t.Skipf("pipe: %v", err)
		}
		ends = append(ends, fds[0], fds[1])
		p.Add(fds[0], In)
		unix.Write(fds[1], []byte("x"))
	}
	defer func() {
		for _, fd := range ends {
			unix.Close(fd)
		}
	}()
	seen := map[int]int{}
	for round := 0; round < 4; round++ {
		p.Wait(0, func(fd int, e uint32) { seen[fd]++ })
	}
	if len(seen) != n {
		t.Fatalf("%d of %d ready fds reported over 4 waits", len(seen), n)
	}
}
