package core

import (
	"testing"
	"time"
)

// A queued watcher left on a closed fd number (its removal not flushed yet:
// asyncio's sock_accept ended, the socket closed, no Poll since) does not
// keep a server the loop then listens with on that number from accepting:
// the stale entry's registration stood for the listener's, which was never
// made (found with anyio's TCP listener on the Python binding).
func TestServerOnStaleWatcherFd(t *testing.T) {
	h := newHarness(t)
	l := h.l
	p := staleQueuedWatcher(h)
	accepted := 0
	s, port := h.serve(func() Protocol { accepted++; return BaseProtocol{} })
	if fd := s.listeners[0].fd; fd != p[0] {
		t.Skipf("fd number not reused (%d, %d)", fd, p[0])
	}
	if l.RemoveReader(p[0]) {
		t.Fatal("RemoveReader removed something from a server's fd")
	}
	tr := h.dial(port, BaseProtocol{})
	h.runUntil("accept", 5*time.Second, func() bool { return accepted == 1 })
	tr.Abort()
	s.Close()
	wc := s.WaitClosed()
	h.runUntil("WaitClosed", 2*time.Second, func() bool { return wc.Done() && !h.l.Alive() })
}
