package core

import "golang.org/x/sys/unix"

// CloseForce closes the loop whatever is still alive on it (a close made
// for garbage-collected hosts, which cannot wait for connection_lost and
// retry Close): every transport, datagram endpoint, server, subprocess,
// sock_* operation, connection attempt and fd watcher is closed at once,
// and every pending future is cancelled, then the loop closes as Close
// does (pending callbacks and timers dropped).
//
// No protocol callback runs (no connection_lost: the host is tearing
// down), and neither do the done-callbacks of the cancelled futures nor
// any other callback; every release hook (OnRelease, the release of a
// callback or watcher) runs exactly once, before it returns. A subprocess
// still running is killed and reaped by the library. Goroutines of pending
// operations (name lookups, executor jobs) finish on their own; their
// results are dropped. released, if not nil, runs for each server closed
// (the object a C layer may need to release; transports, endpoints and
// subprocesses have their OnRelease).
//
// ErrRunning while the loop runs (it must not be called from one of its
// callbacks); on a closed loop it does nothing.
func (l *Loop) CloseForce(released func(obj any)) error {
	if l.running.Load() {
		return ErrRunning
	}
	if l.closed {
		return nil
	}
	// Pending futures first: their operations' cancel hooks run (executor
	// jobs leave the queue, TLS handshakes and sendfiles stop) while the
	// objects they use still exist.
	for f := l.pendingFuts; f != nil; {
		next := f.nextP
		f.Cancel("")
		f = next
	}
	for p := range l.procs {
		p.silent = true
	}
	entries := append([]*fdEntry(nil), l.fds...)
	servers := map[*Server]bool{}
	for _, e := range entries {
		if e == nil {
			continue
		}
		switch o := e.owner.(type) {
		case *Transport:
			o.started = false // no connection_lost
			o.forced = true
			o.connectionLost(ErrClosed)
		case *DatagramTransport:
			o.started = false
			o.connectionLost(ErrClosed)
		case *Server:
			servers[o] = true
		case *sockFd:
			o.closeForce()
		case *attempt:
			o.drop()
			unix.Close(o.fd)
		}
	}
	for s := range servers {
		s.Close()
		if released != nil {
			released(s)
		}
	}
	for p := range l.procs {
		p.Close() // kills a running child; Close below reaps and releases it
	}
	for _, e := range l.fds {
		if e != nil && e.watchers > 0 && e.owner == nil {
			l.removeWatcher(e.fd, false)
			l.removeWatcher(e.fd, true)
		}
	}
	l.objects, l.nfds = 0, 0
	return l.Close()
}

// closeForce drops every operation waiting on the fd (their futures were
// cancelled) and the fd's registration.
func (sf *sockFd) closeForce() {
	for _, op := range append(sf.readers, sf.writers...) {
		if !op.fut.Done() {
			op.fut.Cancel("")
		}
		op.finish(sf.loop)
	}
	sf.readers, sf.writers = nil, nil
	sf.e.reader, sf.e.writer = nil, nil
	sf.e.owner = nil
	if sf.e.watchers == 0 {
		sf.loop.forget(sf.e)
	} else {
		sf.loop.update(sf.e)
	}
}
