package core

// A graceful close that does not lose bytes.
//
// close(2) of a TCP socket whose receive queue holds unread data sends a RST
// instead of a FIN, and the kernel also answers with a RST when data arrives
// for a socket that was closed while its send queue still held bytes (the
// peer was still sending: an echo, a pipelined request, a TLS close_notify).
// A RST makes the kernel drop what the socket had not sent yet and makes the
// peer's kernel fail the connection: bytes that write() accepted and the
// transport handed to the kernel never reach a peer that is still reading.
// (asyncio has the same hole; it is easy to hit: an echo peer, or a TLS peer
// that sends close_notify while it is still reading.)
//
// So when a transport closes gracefully (Close, or the end of write_eof and
// a peer EOF — never Abort or a connection error, which drop data by
// definition), its socket is closed in steps:
//
//  1. the input that already arrived is read and discarded; if it ends
//     with EOF (or an error), nothing more can arrive and close(2) is safe;
//  2. if the kernel holds no unacknowledged output (SIOCOUTQ == 0), a RST
//     can no longer lose any of our bytes: close(2) now — the common case.
//     (A peer that still sends then gets a connection reset, as asyncio's
//     tests expect: e.g. a sendfile to a receiver that closed.)
//  3. otherwise the write side is shut down (FIN after the data) and the
//     socket lingers in a process-wide set served by one goroutine, which
//     reads and discards input until the peer acknowledged every byte,
//     closed its side, failed, or lingerTimeout passed; then it closes the
//     socket. The goroutine touches only these sockets (never a loop or the
//     host) and exits when the set is empty. Beyond lingerMax sockets a
//     close is immediate (as before), so a flood of closes cannot exhaust
//     the fds.
//
// A TLS transport has sent close_notify: as asyncio's sslproto, which waits
// for the peer's close_notify, it lingers in step 3 even when everything is
// acknowledged, until the peer's EOF, or until the peer has everything and
// stayed quiet for lingerQuiet: a TLS peer answers our close_notify with
// its own, and a RST for it could make the peer fail before it read what
// it has.
//
// The protocol sees nothing of it: connection_lost runs when the transport
// is done, as before; only the fd stays open a little longer. Unix stream
// sockets are treated alike (SIOCOUTQ counts the bytes the peer has not
// read yet).

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// lingerTimeout bounds how long a closed socket waits for its peer (then it
// is closed anyway and the kernel keeps trying to deliver).
const lingerTimeout = 30 * time.Second

// lingerQuiet: a peer that has acknowledged everything and sent nothing for
// this long is not waited for any more.
const lingerQuiet = time.Second

// lingerMax bounds the number of lingering sockets.
const lingerMax = 4096

// lingerTick is the reaper's polling period.
const lingerTick = 5 * time.Millisecond

type lingerState struct {
	deadline  time.Time
	lastInput time.Time
	untilEOF  bool // TLS: wait for the peer's EOF (or quiet), not just its ACKs
}

type lingerSet struct {
	mu      sync.Mutex
	fds     map[int]*lingerState
	running bool
}

var lingering = lingerSet{fds: map[int]*lingerState{}}

// lingerCount is the number of sockets waiting for their peer (tests).
func lingerCount() int {
	lingering.mu.Lock()
	defer lingering.mu.Unlock()
	return len(lingering.fds)
}

// closeGracefully closes the socket of a transport that closed gracefully
// (see the comment of this file). buf is scratch space for discarded input.
func closeGracefully(fd int, buf []byte, untilEOF bool) {
	_, ended := drainInput(fd, buf, 16)
	if ended {
		unix.Close(fd)
		return
	}
	outq, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil || (outq == 0 && !untilEOF) {
		unix.Close(fd)
		return
	}
	s := &lingering
	s.mu.Lock()
	if len(s.fds) >= lingerMax {
		s.mu.Unlock()
		unix.Close(fd)
		return
	}
	unix.Shutdown(fd, unix.SHUT_WR)
	now := time.Now()
	s.fds[fd] = &lingerState{deadline: now.Add(lingerTimeout), lastInput: now, untilEOF: untilEOF}
	if !s.running {
		s.running = true
		go s.run()
	}
	s.mu.Unlock()
}

// drainInput reads and discards what fd has (at most max reads): the bytes
// read, and whether the input ended (EOF) or failed, so that nothing more
// can arrive.
func drainInput(fd int, buf []byte, max int) (got int, ended bool) {
	for i := 0; i < max; i++ {
		n, errno := rawRead(fd, buf)
		switch {
		case errno == unix.EINTR:
		case errno == unix.EAGAIN:
			return got, false
		case errno != 0 || n == 0:
			return got, true
		default:
			got += n
		}
	}
	return got, false
}

func (s *lingerSet) run() {
	buf := make([]byte, 64<<10)
	var fds []int
	for {
		time.Sleep(lingerTick)
		s.mu.Lock()
		fds = fds[:0]
		for fd := range s.fds {
			fds = append(fds, fd)
		}
		s.mu.Unlock()
		now := time.Now()
		for _, fd := range fds {
			s.mu.Lock()
			st := s.fds[fd] // only this goroutine removes entries
			s.mu.Unlock()
			got, ended := drainInput(fd, buf, 64)
			if got > 0 {
				st.lastInput = now
			}
			done := ended || now.After(st.deadline)
			if !done && (!st.untilEOF || now.Sub(st.lastInput) >= lingerQuiet) {
				outq, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
				done = err != nil || outq == 0
			}
			if done {
				s.mu.Lock()
				delete(s.fds, fd)
				s.mu.Unlock()
				unix.Close(fd)
			}
		}
		s.mu.Lock()
		if len(s.fds) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}
