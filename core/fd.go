package core

import (
	"github.com/asyncloop/asyncloop/core/internal/poll"
	"golang.org/x/sys/unix"
)

// fdEntry is the loop's registration of one fd: a read handler and a write
// handler, each either a user watcher (AddReader/AddWriter) or a transport's.
type fdEntry struct {
	fd            int
	reader        func()
	writer        func()
	readerRelease func()
	writerRelease func()
	registered    uint32 // events currently in epoll; 0 = not in epoll
	watchers      int    // user watchers (0..2), counted in Loop.nfds
	owner         any    // the transport or server owning fd, if any
	// queued[w]: the reader (0) or writer (1) is a queued watcher (its
	// readiness is an Event record) with userdata qud[w].
	queued [2]bool
	qud    [2]uint64
}

// entry returns fd's entry (nil if none), creating it when create is set.
// The table is indexed by fd, so it grows only for an fd that is open: an
// fd number that came from a caller may be anything (2^31-1 would make a
// 16 GiB table), and every path that creates an entry has either checked
// the fd with a syscall or made it itself; nil for a closed fd.
func (l *Loop) entry(fd int, create bool) *fdEntry {
	if fd < 0 {
		return nil
	}
	if fd < len(l.fds) {
		if e := l.fds[fd]; e != nil || !create {
			return e
		}
	} else if !create || !fdOpen(fd) {
		return nil
	} else {
		n := 2 * len(l.fds)
		if n < fd+1 {
			n = fd + 64
		}
		nf := make([]*fdEntry, n)
		copy(nf, l.fds)
		l.fds = nf
	}
	e := &fdEntry{fd: fd}
	l.fds[fd] = e
	return e
}

// update applies e's wanted events to epoll and frees the entry when it has
// nothing left.
func (l *Loop) update(e *fdEntry) error {
	var want uint32
	if e.reader != nil {
		want |= poll.In
	}
	if e.writer != nil {
		want |= poll.Out
	}
	var err error
	switch {
	case want == e.registered:
	case want == 0:
		err = l.poller.Del(e.fd)
		e.registered = 0
	case e.registered == 0:
		err = l.poller.Add(e.fd, want)
		if err == nil {
			e.registered = want
		}
	default:
		err = l.modOrAdd(e.fd, want)
		if err == nil {
			e.registered = want
		}
	}
	if want == 0 && e.owner == nil && e.watchers == 0 && e.fd < len(l.fds) && l.fds[e.fd] == e {
		l.fds[e.fd] = nil
	}
	return err
}

// forget unregisters fd entirely (before it is closed).
func (l *Loop) forget(e *fdEntry) {
	if e.registered != 0 {
		l.poller.Del(e.fd)
		e.registered = 0
	}
	if e.fd < len(l.fds) && l.fds[e.fd] == e {
		l.fds[e.fd] = nil
	}
}

func (l *Loop) dispatch(fd int, events uint32) {
	var e *fdEntry
	if fd < len(l.fds) {
		e = l.fds[fd]
	}
	if e == nil {
		l.poller.Del(fd)
		return
	}
	if events&(poll.In|poll.Err|poll.Hup) != 0 && e.reader != nil {
		e.reader()
	}
	if events&(poll.Out|poll.Err|poll.Hup) != 0 && e.writer != nil && fd < len(l.fds) && l.fds[fd] == e {
		e.writer()
	}
}

// fdOpen reports whether fd is an open file descriptor.
func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func (l *Loop) checkWatchFd(fd int, op string) (*fdEntry, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if fd < 0 {
		return nil, ErrInvalid
	}
	e := l.entry(fd, false)
	if e != nil && e.owner != nil {
		return nil, &OpError{Op: op, Err: unix.EBUSY, Addr: "fd is used by a transport"}
	}
	if e == nil {
		// Checked before the entry exists, so that a bad fd never grows
		// the table (issue 9).
		if !fdOpen(fd) {
			return nil, &OpError{Op: op, Err: unix.EBADF}
		}
		if e = l.entry(fd, true); e == nil {
			return nil, &OpError{Op: op, Err: unix.EBADF}
		}
	}
	return e, nil
}

// handler returns the fields of e's reader (write false) or writer.
func (e *fdEntry) handler(write bool) (fn, release *func()) {
	if write {
		return &e.writer, &e.writerRelease
	}
	return &e.reader, &e.readerRelease
}

// AddReader calls fn every iteration while fd is readable (level-triggered).
// A previous reader of fd is replaced (its release hook runs).
func (l *Loop) AddReader(fd int, fn func(), release func()) error {
	if fn == nil {
		return ErrInvalid
	}
	return l.addWatcher(fd, false, fn, release, nil, 0)
}

// AddWriter calls fn every iteration while fd is writable.
func (l *Loop) AddWriter(fd int, fn func(), release func()) error {
	if fn == nil {
		return ErrInvalid
	}
	return l.addWatcher(fd, true, fn, release, nil, 0)
}

// modOrAdd changes fd's registration to want; when the file registered
// was closed (the kernel dropped it) and the number now names another one
// (a queued watcher whose removal the host has not flushed yet), it
// registers the new file.
func (l *Loop) modOrAdd(fd int, want uint32) error {
	err := l.poller.Mod(fd, want)
	if err == unix.ENOENT {
		err = l.poller.Add(fd, want)
	}
	return err
}

// addOp names the operation of adding a reader or writer (errors).
func addOp(write bool) string {
	if write {
		return "add_writer"
	}
	return "add_reader"
}

// watchKind is the record of a queued reader (EventReadable) or writer.
func watchKind(write bool) EventKind {
	if write {
		return EventWritable
	}
	return EventReadable
}

func dir(write bool) int {
	if write {
		return 1
	}
	return 0
}

func (l *Loop) addWatcher(fd int, write bool, fn func(), release func(), fnQueued func(), qud uint64) error {
	op := addOp(write)
	e, err := l.checkWatchFd(fd, op)
	if err != nil {
		return err
	}
	h, rel := e.handler(write)
	old, oldRel := *h, *rel
	w := dir(write)
	oldQ, oldUD := e.queued[w], e.qud[w]
	if fn == nil { // a queued watcher (addQueued)
		*h = fnQueued
	} else {
		*h = func() { l.protect(nil, fn) }
	}
	e.queued[w], e.qud[w] = fn == nil, qud
	*rel = release
	if old == nil {
		e.watchers++
		l.nfds++
	}
	if err := l.update(e); err != nil {
		*h, *rel = old, oldRel
		e.queued[w], e.qud[w] = oldQ, oldUD
		if old == nil {
			e.watchers--
			l.nfds--
		}
		l.update(e)
		return &OpError{Op: op, Err: err}
	}
	if oldRel != nil {
		oldRel()
	}
	return nil
}

// RemoveReader removes fd's reader; it reports whether one was registered.
func (l *Loop) RemoveReader(fd int) bool { return l.removeWatcher(fd, false) }

// RemoveWriter removes fd's writer; it reports whether one was registered.
func (l *Loop) RemoveWriter(fd int) bool { return l.removeWatcher(fd, true) }

func (l *Loop) removeWatcher(fd int, write bool) bool {
	e := l.entry(fd, false)
	if e == nil || e.owner != nil {
		return false
	}
	h, rel := e.handler(write)
	if *h == nil {
		return false
	}
	release := *rel
	*h, *rel = nil, nil
	e.queued[dir(write)], e.qud[dir(write)] = false, 0
	e.watchers--
	l.nfds--
	if err := l.update(e); err != nil {
		// The fd was closed behind our back: epoll dropped it already.
		l.forget(e)
		if e.watchers > 0 {
			l.fds[fd] = e
		}
	}
	if release != nil {
		release()
	}
	return true
}

// Queued fd watchers: for a host whose callbacks are expensive (see Poll),
// readiness becomes an EventReadable / EventWritable record instead of a
// call. Level-triggered as AddReader: a ready fd gives a record at every
// Poll until it is removed. A run of the loop other than Poll does not
// report it (the fd stays ready, so the next Poll does).

// AddReaderQueued watches fd for reading; inside Poll, each iteration in
// which fd is readable leaves an EventReadable record (Transport: fd,
// Userdata: userdata). It replaces fd's reader, as AddReader.
func (l *Loop) AddReaderQueued(fd int, userdata uint64) error {
	return l.addQueued(fd, false, userdata)
}

// AddWriterQueued is AddReaderQueued for writing (EventWritable).
func (l *Loop) AddWriterQueued(fd int, userdata uint64) error {
	return l.addQueued(fd, true, userdata)
}

func (l *Loop) addQueued(fd int, write bool, userdata uint64) error {
	kind := watchKind(write)
	return l.addWatcher(fd, write, nil, nil, func() {
		if q := l.evq; q != nil && q.open {
			q.push(Event{Kind: kind, Transport: uint64(fd), Userdata: userdata}, nil)
		}
	}, userdata)
}

// ReaddQueued is the host's queued re-add of a queued watcher it removed
// since the last Poll without telling the loop (the write queue's
// ALOOP_WRITE_ADD_READER / _WRITER): the watcher of fd stays (or becomes,
// with the userdata it had, else 0) a queued one, and its registration is
// checked with the kernel, since fd may have been closed and its number
// reused meanwhile (epoll forgets a closed file). A failure removes the
// watcher and is reported as its record with Err set (inside Poll), or to
// the exception handler.
func (l *Loop) ReaddQueued(fd int, write bool) {
	e, err := l.readdQueued(fd, write)
	if err == nil {
		return
	}
	w := dir(write)
	var ud uint64
	if e != nil && e.queued[w] {
		ud = e.qud[w]
		l.removeWatcher(fd, write)
	}
	if q := l.evq; q != nil && q.open {
		ev := Event{Kind: watchKind(write), Transport: uint64(fd), Userdata: ud, Err: -int32(unix.EIO)}
		if q.ErrorCode != nil {
			ev.Err = q.ErrorCode(err)
		}
		q.push(ev, nil)
		return
	}
	l.CallExceptionHandler(&ExceptionContext{Message: "queued add_reader/add_writer failed", Err: err})
}

func (l *Loop) readdQueued(fd int, write bool) (*fdEntry, error) {
	op := addOp(write)
	e, err := l.checkWatchFd(fd, op)
	if err != nil {
		return e, err
	}
	w := dir(write)
	if h, _ := e.handler(write); *h == nil || !e.queued[w] {
		return e, l.addQueued(fd, write, e.qud[w])
	}
	// Registered: is it still this fd's file?
	if e.registered != 0 {
		if err := l.modOrAdd(fd, e.registered); err != nil {
			return e, &OpError{Op: op, Err: err}
		}
	}
	return e, nil
}

// claimEntry returns fd's entry for an owner (a transport, a connection
// attempt, a datagram endpoint) on an fd that the loop made or that was
// checked to be unused: watchers still found there belong to a file that
// was closed and whose number came back (a queued watcher whose removal
// the host has not flushed yet, or a watcher never removed); they are
// dropped, as the kernel dropped their registration.
func (l *Loop) claimEntry(fd int) *fdEntry {
	if e := l.entry(fd, false); e != nil && e.owner == nil && e.watchers > 0 {
		for _, w := range [2]bool{false, true} {
			l.removeWatcher(fd, w)
		}
	}
	return l.entry(fd, true)
}
