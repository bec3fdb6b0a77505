package core

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Queued fd watchers (AddReaderQueued / AddWriterQueued, ReaddQueued): their
// readiness is an Event record of Poll, level-triggered, never a call.

// watchPoll polls once (without waiting long) and returns its records.
func watchPoll(t *testing.T, l *Loop, q *qHost, before func()) []Event {
	t.Helper()
	n, err := l.Poll(0.05, before)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return append([]Event(nil), q.events[:n]...)
}

func TestQueuedReaderRecords(t *testing.T) {
	h := newHarness(t)
	l := h.l
	q := newQHost(h, 16, 64<<10)
	r, w := pipe(t)
	if err := l.AddReaderQueued(r, 7); err != nil {
		t.Fatal(err)
	}
	if evs := watchPoll(t, l, q, nil); len(evs) != 0 {
		t.Fatalf("records on an empty pipe: %+v", evs)
	}
	unix.Write(w, []byte("x"))
	// Level-triggered: the byte stays, so every poll reports it.
	for i := 0; i < 3; i++ {
		evs := watchPoll(t, l, q, nil)
		if len(evs) != 1 || evs[0].Kind != EventReadable || evs[0].Transport != uint64(r) || evs[0].Userdata != 7 || evs[0].Err != 0 {
			t.Fatalf("poll %d: records %+v, want one EventReadable for fd %d, userdata 7", i, evs, r)
		}
	}
	// A run other than Poll reports nothing (and calls nothing).
	if err := l.RunOnceTimeout(0); err != nil {
		t.Fatal(err)
	}
	// Replaced by a callback watcher: no record any more, the callback runs.
	calls := 0
	if err := l.AddReader(r, func() { calls++ }, nil); err != nil {
		t.Fatal(err)
	}
	if evs := watchPoll(t, l, q, nil); len(evs) != 0 || calls != 1 {
		t.Fatalf("after AddReader: records %+v, calls %d", evs, calls)
	}
	if err := l.AddReaderQueued(r, 8); err != nil {
		t.Fatal(err)
	}
	if evs := watchPoll(t, l, q, nil); len(evs) != 1 || evs[0].Userdata != 8 || calls != 1 {
		t.Fatalf("queued again: records %+v, calls %d", evs, calls)
	}
	if !l.RemoveReader(r) {
		t.Fatal("RemoveReader of a queued reader returned false")
	}
	if evs := watchPoll(t, l, q, nil); len(evs) != 0 {
		t.Fatalf("records after RemoveReader: %+v", evs)
	}
	if l.Alive() {
		t.Fatal("Alive after RemoveReader")
	}
}

func TestQueuedReaderThenWriter(t *testing.T) {
	h := newHarness(t)
	l := h.l
	q := newQHost(h, 16, 64<<10)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := l.AddWriterQueued(fds[0], 2); err != nil {
		t.Fatal(err)
	}
	if err := l.AddReaderQueued(fds[0], 1); err != nil {
		t.Fatal(err)
	}
	unix.Write(fds[1], []byte("x"))
	evs := watchPoll(t, l, q, nil)
	if len(evs) != 2 || evs[0].Kind != EventReadable || evs[0].Userdata != 1 || evs[1].Kind != EventWritable || evs[1].Userdata != 2 {
		t.Fatalf("records %+v, want READABLE (1) then WRITABLE (2)", evs)
	}
	l.RemoveReader(fds[0])
	l.RemoveWriter(fds[0])
}

// The host removed a queued reader in its own tables only, the fd was closed
// and its number reused: ReaddQueued checks the registration with epoll
// (which forgot the closed file) and registers the new file.
func TestReaddQueuedAfterFdReuse(t *testing.T) {
	h := newHarness(t)
	l := h.l
	q := newQHost(h, 16, 64<<10)
	r, _ := pipe(t)
	if err := l.AddReaderQueued(r, 5); err != nil {
		t.Fatal(err)
	}
	r2, w2 := pipe(t)
	if err := unix.Dup3(r2, r, unix.O_CLOEXEC); err != nil { // closes the old r
		t.Fatal(err)
	}
	unix.Write(w2, []byte("x"))
	if evs := watchPoll(t, l, q, nil); len(evs) != 0 {
		t.Fatalf("the closed file's registration reported %+v", evs)
	}
	evs := watchPoll(t, l, q, func() { l.ReaddQueued(r, false) })
	if len(evs) != 1 || evs[0].Kind != EventReadable || evs[0].Transport != uint64(r) || evs[0].Userdata != 5 || evs[0].Err != 0 {
		t.Fatalf("after ReaddQueued: records %+v, want one EventReadable (userdata 5 kept)", evs)
	}
	// A re-add of a reader that is gone makes a queued one (userdata 0).
	l.RemoveReader(r)
	evs = watchPoll(t, l, q, func() { l.ReaddQueued(r, false) })
	if len(evs) != 1 || evs[0].Userdata != 0 || evs[0].Err != 0 {
		t.Fatalf("re-add after remove: records %+v", evs)
	}
	l.RemoveReader(r)
}

// A re-add on an fd that was closed (not reused) fails: the record carries
// the error and the watcher is gone.
func TestReaddQueuedClosedFd(t *testing.T) {
	h := newHarness(t)
	l := h.l
	q := newQHost(h, 16, 64<<10)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	if err := l.AddReaderQueued(p[0], 9); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[0])
	evs := watchPoll(t, l, q, func() { l.ReaddQueued(p[0], false) })
	if len(evs) != 1 || evs[0].Kind != EventReadable || evs[0].Userdata != 9 || evs[0].Err != -int32(unix.EBADF) {
		t.Fatalf("records %+v, want one EventReadable with Err -EBADF", evs)
	}
	if l.RemoveReader(p[0]) {
		t.Fatal("the failed watcher is still registered")
	}
	if l.Alive() {
		t.Fatal("Alive after a failed re-add")
	}
}

// A queued watcher left on a closed fd number (its removal not flushed yet)
// does not keep a transport the loop makes on that number from working.
func TestClaimEntryDropsStaleWatcher(t *testing.T) {
	h := newHarness(t)
	l := h.l
	p := staleQueuedWatcher(h)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	if fds[0] != p[0] {
		unix.Close(fds[0])
		t.Skipf("fd number not reused (%d, %d)", fds[0], p[0])
	}
	tr := l.newTransport(fds[0])
	if tr.e.watchers != 0 || tr.e.reader != nil {
		t.Fatalf("stale watcher kept: watchers %d", tr.e.watchers)
	}
	if l.RemoveReader(fds[0]) {
		t.Fatal("RemoveReader removed something from a transport's fd")
	}
	tr.e.owner = nil
	l.forget(tr.e)
	l.objects--
	unix.Close(fds[0])
}

// staleQueuedWatcher leaves a queued reader on a closed fd number (its
// removal not flushed: no Poll since) and returns the pipe's two numbers:
// p[0] is the closed one, free for the next socket; p[1] is closed at the
// end of the test.
func staleQueuedWatcher(h *harness) [2]int {
	h.t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { unix.Close(p[1]) })
	if err := h.l.AddReaderQueued(p[0], 1); err != nil {
		h.t.Fatal(err)
	}
	unix.Close(p[0])
	return p
}
