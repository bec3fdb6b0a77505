package asyncloop

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event queue (include/asyncloop.h, "The event queue"): a purego
// callback costs about 0.5 us (purego builds the Go call with reflection),
// so the datagram endpoints of a loop this binding owns are registered with
// ALOOP_PROTOCOL_QUEUED and their events come back as records. Once a loop
// has such an endpoint, its run calls drive it with aloop_loop_poll (as
// aloop_loop_poll_args: one pointer, no reflection in purego), one
// call per iteration, and dispatch the records here, in order, right after
// the poll: behind the callbacks that were ready before it, ahead of those
// of the next iteration, which is where asyncio runs its I/O callbacks.
// The library itself calls the protocol's functions for an event that
// happens outside a poll (pause_writing inside a SendTo, say), as before.
//
// A loop borrowed from another host (LoopFromHandle) is run by that host:
// its endpoints keep their callbacks.

const (
	queueEvents = 256     // records per poll (40 bytes each)
	queueArena  = 1 << 20 // read arena: datagrams and their senders' addresses
)

// evQueue is a loop's event queue: one block of C memory (cmem.go: the
// library keeps it from aloop_loop_set_event_queue until the loop is freed,
// so it must not be Go memory) that holds aloop_loop_poll_args's block, the
// records and the read arena. The library fills it during a poll; the
// binding reads it between polls. It is unmapped by loopMem.release once
// the library dropped it: data handed to DatagramReceived from the arena is
// valid only during the call.
type evQueue struct {
	mem    []byte     // the mapping (nil once unmapped)
	args   *cPollArgs // aloop_loop_poll_args's block: no reflection per call
	events []cEvent   // queueEvents records
	arena  []byte     // queueArena bytes
}

// newEvQueue maps an event queue for loop h.
func newEvQueue(h uintptr) (*evQueue, error) {
	argsSize := (int(unsafe.Sizeof(cPollArgs{})) + 63) &^ 63
	eventsSize := queueEvents * int(unsafe.Sizeof(cEvent{}))
	arenaOff := (argsSize + eventsSize + 4095) &^ 4095
	mem, err := mapC(arenaOff + queueArena)
	if err != nil {
		return nil, err
	}
	q := &evQueue{mem: mem}
	q.args = &cArray[cPollArgs](mem, 0, 1)[0]
	q.events = cArray[cEvent](mem, argsSize, queueEvents)
	q.arena = mem[arenaOff : arenaOff+queueArena : arenaOff+queueArena]
	*q.args = cPollArgs{size: unsafe.Sizeof(cPollArgs{}), loop: h}
	return q, nil
}

// unmap unmaps the queue and drops every Go view of it (a slice into an
// unmapped range must not survive: the range may become Go heap).
func (q *evQueue) unmap() {
	unmapC(q.mem)
	q.mem, q.args, q.events, q.arena = nil, nil, nil, nil
}

// queued returns the loop's event queue, giving it to the library the first
// time; nil for a borrowed or closed loop or when the library refuses it.
func (l *Loop) queued() *evQueue {
	if l.q != nil || l.borrowed || l.closed.Load() {
		return l.q
	}
	q, err := newEvQueue(l.h)
	if err != nil {
		return nil
	}
	runtime.LockOSThread()
	rc := lib.loopSetEventQueue(l.h, unsafe.Pointer(&q.events[0]), queueEvents, unsafe.Pointer(&q.arena[0]), queueArena)
	runtime.UnlockOSThread()
	if rc < 0 {
		q.unmap() // refused: the library did not keep it
		return nil
	}
	l.q = q
	l.mem.q.Store(q)
	return q
}

// dropQueue takes the event queue back from loop h, which is closed and
// about to be freed (aloop_loop_free drops it too): true when the library
// no longer holds it (or never had one).
func dropQueue(h uintptr, m *loopMem) bool {
	if m == nil || m.q.Load() == nil {
		return true
	}
	return lib.loopSetEventQueue(h, nil, 0, nil, 0) >= 0
}

// datagramProto is the C protocol of a datagram endpoint on l.
func (l *Loop) datagramProto() unsafe.Pointer {
	if l.queued() != nil {
		return unsafe.Pointer(&cb.queuedDatagramProtocol)
	}
	return unsafe.Pointer(&cb.datagramProtocol)
}

// Loops running under a poll, by the thread that runs them: while records
// are dispatched the library's loop is not running, but Go code there is
// inside the run call (IsRunning, GetRunningLoop).
var (
	pollingMu sync.Mutex
	polling   = map[int]*Loop{}
)

func pollingLoop() *Loop {
	pollingMu.Lock()
	defer pollingMu.Unlock()
	if len(polling) == 0 {
		return nil
	}
	return polling[threadID()]
}

// pollRun is Run's loop for a loop with an event queue: mode as Run's;
// until, if not nil, ends the run once it reports true (RunUntilComplete).
// The caller holds the OS thread. It returns the library's error code.
func (l *Loop) pollRun(mode RunMode, timeout float64, until func() bool) int32 {
	if l.pollTid != 0 {
		return EBUSY
	}
	tid := threadID()
	l.pollTid = -1
	if tid != 0 {
		l.pollTid = tid
		pollingMu.Lock()
		polling[tid] = l
		pollingMu.Unlock()
	}
	defer func() {
		if tid != 0 {
			pollingMu.Lock()
			delete(polling, tid)
			pollingMu.Unlock()
		}
		l.pollTid = 0
	}()
	if mode == RunModeNoWait {
		timeout = 0
	}
	for {
		l.q.args.timeout = timeout
		n := rawLoopPollArgs(l.q.args)
		if n < 0 {
			return n
		}
		l.dispatch(int(n))
		if mode != RunModeDefault {
			// A Stop in a single iteration applies to the next
			// RunForever (as aloop_loop_run's).
			return 0
		}
		stopped := rawLoopTakeStop(l.h) > 0
		if until != nil && until() {
			return 0
		}
		if stopped {
			if until != nil {
				return ESTOPPED
			}
			return 0
		}
		if l.closed.Load() {
			return 0
		}
	}
}

// dispatch runs the protocol methods of the last poll's n records.
func (l *Loop) dispatch(n int) {
	q := l.q
	for i := 0; i < n; i++ {
		l.dispatchOne(q, &q.events[i])
	}
}

func (l *Loop) dispatchOne(q *evQueue, ev *cEvent) {
	c := dgramOf(ev.userdata)
	if c == nil {
		return
	}
	t := c.transport
	defer guard(l)
	switch ev.kind {
	case eventDatagram:
		end := ev.offset + ev.length
		data := q.arena[ev.offset:end:end]
		var raw []byte
		if ev.error > 0 {
			raw = q.arena[end : end+uint64(ev.error)]
		}
		// The transport's protocol now: one set with SetProtocol while
		// earlier records were dispatched gets the rest.
		t.conn.proto.DatagramReceived(data, t.conn.rawSender(raw))
	case eventConnectionMade:
		if t.h == 0 {
			t.h = ev.transport
			l.datagrams[t.h] = t
		}
		c.proto.ConnectionMade(t)
	case eventErrorReceived:
		t.conn.proto.ErrorReceived(t.wrapErr("read", codeError(uintptr(uint32(ev.error)))))
	case eventConnectionLost:
		t.lost.Store(true)
		delete(l.datagrams, t.h)
		t.conn.proto.ConnectionLost(codeError(uintptr(uint32(ev.error))))
	case eventPauseWriting:
		t.conn.proto.PauseWriting()
	case eventResumeWriting:
		t.conn.proto.ResumeWriting()
	}
}

// rawSender is senderAddr for a sender given as the struct sockaddr the
// kernel wrote (nil: none).
func (c *dgramConn) rawSender(raw []byte) net.Addr {
	if len(raw) < 2 {
		return nil
	}
	if p := c.peers[string(raw)]; p != nil {
		if p.intact() {
			return p.addr
		}
		delete(c.byAddr, p.udp)
	}
	host, port, ok := parseRawSockaddr(raw)
	if !ok {
		return nil
	}
	p := c.remember(string(raw), host, port)
	if p.udp != nil {
		p.raw = append([]byte(nil), raw...)
	}
	return p.addr
}

// parseRawSockaddr returns the numeric host (the path for AF_UNIX) and the
// port of a struct sockaddr, as the library formats them.
func parseRawSockaddr(raw []byte) (string, int, bool) {
	var family int
	if runtime.GOOS == "linux" {
		family = int(*(*uint16)(unsafe.Pointer(&raw[0]))) // sa_family_t, native order
	} else {
		family = int(raw[1]) // BSD: sa_len, then an 8-bit sa_family
	}
	switch {
	case family == unix.AF_INET && len(raw) >= 8:
		return netip.AddrFrom4([4]byte(raw[4:8])).String(), int(binary.BigEndian.Uint16(raw[2:4])), true
	case family == unix.AF_INET6 && len(raw) >= 28:
		s := netip.AddrFrom16([16]byte(raw[8:24])).String()
		if zone := *(*uint32)(unsafe.Pointer(&raw[24])); zone != 0 {
			if ifi, err := net.InterfaceByIndex(int(zone)); err == nil {
				s += "%" + ifi.Name
			}
		}
		return s, int(binary.BigEndian.Uint16(raw[2:4])), true
	case family == unix.AF_UNIX:
		p := raw[2:]
		if len(p) > 0 && p[0] == 0 {
			return "@" + string(p[1:]), 0, true // abstract (Linux)
		}
		n := 0
		for n < len(p) && p[n] != 0 {
			n++
		}
		return string(p[:n]), 0, true
	}
	return "", 0, false
}

// runTimeout converts RunOnce's timeout to the library's seconds.
func runTimeout(timeout time.Duration) float64 {
	if timeout < 0 {
		return -1
	}
	return timeout.Seconds()
}
