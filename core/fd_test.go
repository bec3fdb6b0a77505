package core

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func TestAddReaderLevelTriggered(t *testing.T) {
	h := newHarness(t)
	l := h.l
	r, w := pipe(t)
	calls, rel := 0, 0
	if err := l.AddReader(r, func() { h.onLoop("reader"); calls++ }, func() { rel++ }); err != nil {
		t.Fatal(err)
	}
	if !l.Alive() {
		t.Fatalf("Alive false with a reader")
	}
	h.runFor(20 * time.Millisecond)
	if calls != 0 {
		t.Fatalf("reader called %d times on an empty pipe", calls)
	}
	unix.Write(w, []byte("x"))
	// Level-triggered: the byte is never read, so every iteration calls it.
	for i := 0; i < 3; i++ {
		if err := l.RunOnceTimeout(1); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 3 {
		t.Fatalf("reader called %d times in 3 iterations with unread data, want 3", calls)
	}
	var b [4]byte
	unix.Read(r, b[:])
	before := calls
	h.runFor(20 * time.Millisecond)
	if calls != before {
		t.Fatalf("reader called after the data was consumed")
	}
	if err := l.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("Close with a reader: %v, want ErrBusy", err)
	}
	if !l.RemoveReader(r) {
		t.Fatalf("RemoveReader returned false")
	}
	if rel != 1 {
		t.Fatalf("release ran %d times on RemoveReader", rel)
	}
	if l.RemoveReader(r) {
		t.Fatalf("second RemoveReader returned true")
	}
	unix.Write(w, []byte("y"))
	h.runFor(20 * time.Millisecond)
	if calls != before || rel != 1 {
		t.Fatalf("after RemoveReader: calls %d (was %d) rel %d", calls, before, rel)
	}
	if l.Alive() {
		t.Fatalf("Alive true after RemoveReader")
	}
}

// A writer on a pipe's write end is called while the pipe has room, not while
// it is full, and again once the reader drained it (level-triggered).
func TestAddWriterOnPipe(t *testing.T) {
	h := newHarness(t)
	l := h.l
	r, w := pipe(t)
	calls, rel := 0, 0
	if err := l.AddWriter(w, func() { h.onLoop("writer"); calls++ }, func() { rel++ }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l.RunOnceTimeout(1)
	}
	if calls != 3 {
		t.Fatalf("writer on an empty pipe called %d times in 3 iterations, want 3", calls)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.Write(w, chunk); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	before := calls
	h.runFor(30 * time.Millisecond)
	if calls != before {
		t.Fatalf("writer called %d times while the pipe is full", calls-before)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := unix.Read(r, buf); err != nil {
			break
		}
	}
	h.runUntil("writer after drain", 2*time.Second, func() bool { return calls > before })
	if !l.RemoveWriter(w) || l.RemoveWriter(w) {
		t.Fatalf("RemoveWriter should return true then false")
	}
	if rel != 1 {
		t.Fatalf("release ran %d times", rel)
	}
	n := calls
	h.runFor(20 * time.Millisecond)
	if calls != n || l.Alive() {
		t.Fatalf("after RemoveWriter: called again=%v Alive=%v", calls != n, l.Alive())
	}
}

func TestAddWriterAndReplace(t *testing.T) {
	h := newHarness(t)
	l := h.l
	var sp [2]int
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	fd := sp[0]
	wcalls, wrel := 0, 0
	if err := l.AddWriter(fd, func() { wcalls++ }, func() { wrel++ }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l.RunOnceTimeout(1)
	}
	if wcalls != 3 {
		t.Fatalf("writer on a writable socket called %d times in 3 iterations", wcalls)
	}
	// Reader on the same fd, then replaced: the old release runs, the new
	// function is used, and watcher counting stays right.
	r1, r1rel, r2, r2rel := 0, 0, 0, 0
	if err := l.AddReader(fd, func() { r1++ }, func() { r1rel++ }); err != nil {
		t.Fatal(err)
	}
	if err := l.AddReader(fd, func() {
		r2++
		var b [8]byte
		unix.Read(fd, b[:])
	}, func() { r2rel++ }); err != nil {
		t.Fatal(err)
	}
	if r1rel != 1 {
		t.Fatalf("replaced reader: release ran %d times", r1rel)
	}
	unix.Write(sp[1], []byte("hi"))
	h.runUntil("reader", 2*time.Second, func() bool { return r2 > 0 })
	if r1 != 0 {
		t.Fatalf("replaced reader still called")
	}
	wbefore := wcalls
	if !l.RemoveWriter(fd) || l.RemoveWriter(fd) {
		t.Fatalf("RemoveWriter should return true then false")
	}
	if wrel != 1 {
		t.Fatalf("writer release ran %d times", wrel)
	}
	h.runFor(20 * time.Millisecond)
	if wcalls != wbefore {
		t.Fatalf("writer called after RemoveWriter")
	}
	if !l.Alive() {
		t.Fatalf("Alive false with a reader left")
	}
	if !l.RemoveReader(fd) || l.RemoveReader(fd) {
		t.Fatalf("RemoveReader should return true then false")
	}
	if r2rel != 1 || r1rel != 1 {
		t.Fatalf("release counts r1=%d r2=%d", r1rel, r2rel)
	}
	if l.Alive() {
		t.Fatalf("Alive after removing all watchers")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close after removing all watchers: %v", err)
	}
}

func TestFdWatcherErrors(t *testing.T) {
	h := newHarness(t)
	l := h.l
	if err := l.AddReader(-1, func() {}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddReader(-1): %v, want ErrInvalid", err)
	}
	// An fd that is not open: epoll_ctl fails with EBADF; the release hook
	// of the refused watcher must not be leaked in the loop.
	rel := 0
	if err := l.AddReader(100000, func() {}, func() { rel++ }); !errors.Is(err, unix.EBADF) {
		t.Errorf("AddReader on a closed fd: %v, want EBADF", err)
	}
	if l.Alive() {
		t.Errorf("a refused AddReader left the loop alive")
	}
	if l.RemoveReader(100000) {
		t.Errorf("RemoveReader of a refused reader returned true")
	}
	// A regular file cannot be polled (EPERM); nothing stays registered.
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := l.AddReader(int(f.Fd()), func() {}, nil); !errors.Is(err, unix.EPERM) {
		t.Errorf("AddReader on a regular file: %v, want EPERM", err)
	}
	if l.Alive() || l.RemoveReader(int(f.Fd())) {
		t.Errorf("refused AddReader on a regular file left a watcher")
	}
	if l.RemoveReader(12345) || l.RemoveWriter(12345) {
		t.Errorf("Remove* of an unknown fd returned true")
	}
	// Negative fds are bad input: false, never a crash.
	for _, fd := range []int{-1, -1000} {
		noPanic(t, fmt.Sprintf("RemoveReader(%d)", fd), func() {
			if l.RemoveReader(fd) {
				t.Errorf("RemoveReader(%d) returned true", fd)
			}
		})
		noPanic(t, fmt.Sprintf("RemoveWriter(%d)", fd), func() {
			if l.RemoveWriter(fd) {
				t.Errorf("RemoveWriter(%d) returned true", fd)
			}
		})
		noPanic(t, fmt.Sprintf("AddWriter(%d)", fd), func() {
			if err := l.AddWriter(fd, func() {}, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("AddWriter(%d): %v, want ErrInvalid", fd, err)
			}
		})
	}
	// A panicking reader goes to the exception handler; the loop goes on.
	r, w := pipe(t)
	var msgs []string
	l.SetExceptionHandler(func(_ *Loop, c *ExceptionContext) {
		msgs = append(msgs, c.Message+": "+c.Err.Error())
	})
	l.AddReader(r, func() { panic("reader-panic") }, nil)
	unix.Write(w, []byte("x"))
	l.RunOnceTimeout(1)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "reader-panic") {
		t.Fatalf("exception handler: %q", msgs)
	}
	l.RemoveReader(r)
	// An fd used by a transport cannot be watched.
	s, port := h.serve(func() Protocol { return BaseProtocol{} })
	tr := h.dial(port, BaseProtocol{})
	if err := l.AddReader(tr.Fd(), func() {}, nil); !errors.Is(err, unix.EBUSY) {
		t.Errorf("AddReader on a transport's fd: %v, want EBUSY", err)
	}
	if l.RemoveReader(tr.Fd()) {
		t.Errorf("RemoveReader on a transport's fd returned true")
	}
	tr.Close()
	s.Close()
	h.runUntil("loop idle", 2*time.Second, func() bool { return l.Close() == nil })
}

// noPanic runs fn and turns a panic into a test failure, so that one crash
// does not take the rest of the suite down with it.
func noPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
		}
	}()
	fn()
}
