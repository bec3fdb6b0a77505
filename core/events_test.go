package core

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// qHost is a host of the event queue: it polls, walks the records and keeps
// what a host would see.
type qHost struct {
	h      *harness
	events []Event
	arena  []byte
	log    []string
	data   map[uint64][]byte
	lost   map[uint64]int32
	made   map[uint64]uint64 // userdata -> transport id
	polls  int
	onEv   func(ev Event)
	before func() // run by Poll before its iteration (the host's writes)
}

func newQHost(h *harness, nevents, arena int) *qHost {
	q := &qHost{h: h, events: make([]Event, nevents), arena: make([]byte, arena),
		data: map[uint64][]byte{}, lost: map[uint64]int32{}, made: map[uint64]uint64{}}
	if err := h.l.SetEventQueue(q.events, q.arena); err != nil {
		h.t.Fatalf("SetEventQueue: %v", err)
	}
	ids := map[*Transport]uint64{}
	h.l.Events().ObjectID = func(t *Transport) uint64 {
		if id, ok := ids[t]; ok {
			return id
		}
		ids[t] = uint64(len(ids) + 100)
		return ids[t]
	}
	h.l.Events().ErrorCode = func(err error) int32 { return -int32(Errno(err)) }
	return q
}

func (q *qHost) poll(timeout float64) int {
	q.h.t.Helper()
	n, err := q.h.l.Poll(timeout, q.before)
	if err != nil {
		q.h.t.Fatalf("Poll: %v", err)
	}
	q.polls++
	for _, ev := range q.events[:n] {
		switch ev.Kind {
		case EventConnectionMade:
			q.made[ev.Userdata] = ev.Transport
			q.log = append(q.log, "made")
		case EventData:
			q.data[ev.Userdata] = append(q.data[ev.Userdata], q.arena[ev.Offset:ev.Offset+ev.Length]...)
		case EventEOF:
			q.log = append(q.log, "eof")
		case EventConnectionLost:
			q.lost[ev.Userdata] = ev.Err
			q.log = append(q.log, "lost")
		case EventPauseWriting:
			q.log = append(q.log, "pause")
		case EventResumeWriting:
			q.log = append(q.log, "resume")
		case EventDatagram, EventErrorReceived:
		default:
			q.h.t.Fatalf("unknown event kind %d", ev.Kind)
		}
		if q.onEv != nil {
			q.onEv(ev)
		}
	}
	return n
}

func (q *qHost) pollUntil(what string, cond func() bool) {
	q.h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			q.h.t.Fatalf("timed out waiting for %s (log %v)", what, q.log)
		}
		q.poll(0.01)
	}
}

// accepted connects one end of a socketpair to the loop with proto; *tr is
// set once the connection is made.
func accepted(h *harness, proto Protocol) (**Transport, int) {
	h.t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { unix.Close(fds[1]) })
	return acceptFd(h, fds[0], proto), fds[1]
}

// acceptFd connects fd to the loop with proto; *tr is set once the
// connection is made.
func acceptFd(h *harness, fd int, proto Protocol) **Transport {
	h.t.Helper()
	f, err := h.l.ConnectAcceptedSocket(fd, proto)
	if err != nil {
		h.t.Fatal(err)
	}
	tr := new(*Transport)
	f.AddDoneCallback(func(f *Future) {
		if v, err := f.Result(); err == nil {
			*tr = v.(*Transport)
		}
	}, nil, nil)
	return tr
}

func TestQueuedProtocolEventsInOrder(t *testing.T) {
	h := newHarness(t)
	q := newQHost(h, 64, 64*1024)
	fb := newRec(h, "fallback")
	p := &QueuedProtocol{Fallback: fb, Userdata: 7}
	tr, peer := accepted(h, p)
	q.pollUntil("connection_made", func() bool { return len(q.log) > 0 && *tr != nil })
	if _, err := unix.Write(peer, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	unix.Shutdown(peer, unix.SHUT_WR)
	q.pollUntil("eof", func() bool { return len(q.log) >= 2 })
	if got := string(q.data[7]); got != "hello" {
		t.Fatalf("data %q, want hello", got)
	}
	if q.made[7] != 100 {
		t.Fatalf("transport id %d, want the ObjectID 100", q.made[7])
	}
	// EOF was queued, not acted on: the transport stays open until the
	// host closes it (its eof_received decides).
	q.poll(0.02)
	if len(q.lost) != 0 || (*tr).IsClosing() {
		t.Fatalf("transport closed after EOF without a Close: %v", q.log)
	}
	(*tr).Close()
	q.pollUntil("connection_lost", func() bool { return len(q.lost) == 1 })
	if want := []string{"made", "eof", "lost"}; strings.Join(q.log, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", q.log, want)
	}
	if q.lost[7] != 0 {
		t.Fatalf("clean close reported error %d", q.lost[7])
	}
	if fb.made+fb.eofs+fb.losts != 0 || len(fb.data) != 0 {
		t.Fatalf("the fallback was called inside Poll: made=%d eof=%d lost=%d data=%d", fb.made, fb.eofs, fb.losts, len(fb.data))
	}
}

// A small arena: reads wait for room (no byte lost or reordered), and
// TLS-like DataReceived calls that do not fit overflow to the next Poll.
func TestQueuedProtocolSmallArenaKeepsEveryByte(t *testing.T) {
	h := newHarness(t)
	q := newQHost(h, 4, minQueuedRead)
	p := &QueuedProtocol{Fallback: newRec(h, "fallback"), Userdata: 1}
	tr, peer := accepted(h, p)
	want := pattern(1<<20, 3)
	go func() {
		for off := 0; off < len(want); {
			n, err := unix.Write(peer, want[off:])
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil {
				return
			}
			off += n
		}
	}()
	maxEvents := 0
	deadline := time.Now().Add(10 * time.Second)
	for len(q.data[1]) < len(want) && time.Now().Before(deadline) {
		if n := q.poll(0.01); n > maxEvents {
			maxEvents = n
		}
	}
	if !bytes.Equal(q.data[1], want) {
		t.Fatalf("received %d bytes, want %d; %s", len(q.data[1]), len(want), firstDiff(q.data[1], want))
	}
	if maxEvents > 4 {
		t.Fatalf("a Poll wrote %d records into room for 4", maxEvents)
	}
	(*tr).Abort()
	q.pollUntil("connection_lost", func() bool { return len(q.lost) == 1 })
}

// Records beyond the array's room are delivered, in order, by the next Poll.
func TestQueuedProtocolOverflowInOrder(t *testing.T) {
	h := newHarness(t)
	q := newQHost(h, 2, 64*1024)
	var trs []**Transport
	for i := 0; i < 5; i++ {
		tr, _ := accepted(h, &QueuedProtocol{Fallback: newRec(h, "fb"), Userdata: uint64(i + 1)})
		trs = append(trs, tr)
	}
	var order []uint64
	q.onEv = func(ev Event) { order = append(order, ev.Userdata) }
	q.pollUntil("five connection_made", func() bool { return len(order) == 5 })
	for i, u := range order {
		if u != uint64(i+1) {
			t.Fatalf("connection_made order %v, want 1..5", order)
		}
	}
	// Direct TLS-style data: DataReceived inside Poll beyond the arena.
	big := pattern(100*1024, 9)
	h.l.CallSoon(func() {
		for _, tr := range trs {
			(*tr).proto.DataReceived(*tr, big)
		}
	}, nil)
	q.pollUntil("all data", func() bool {
		for i := range trs {
			if len(q.data[uint64(i+1)]) < len(big) {
				return false
			}
		}
		return true
	})
	for i := range trs {
		if !bytes.Equal(q.data[uint64(i+1)], big) {
			t.Fatalf("transport %d: %s", i+1, firstDiff(q.data[uint64(i+1)], big))
		}
	}
	for _, tr := range trs {
		(*tr).Abort()
	}
	q.pollUntil("all lost", func() bool { return len(q.lost) == 5 })
}

// Transports that always have data (peers that write without pause) share
// the Polls: one that a Poll holds back (its budget spent) is read first by
// the next. epoll reports ready fds in the same order every time, so
// without that the first few would be read by every Poll and the others
// never (asyncio's selector loop reads each ready socket once an
// iteration).
func TestQueuedProtocolHeldTransportsReadFirst(t *testing.T) {
	h := newHarness(t)
	// An arena that takes one to three reads: which transports get them?
	q := newQHost(h, 256, 320*1024)
	const conns = 6
	var trs []**Transport
	stop := make(chan struct{})
	defer close(stop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i := 0; i < conns; i++ {
		// TCP over loopback: its receive buffer grows to megabytes, so
		// every read could fill the arena (a socketpair holds too little).
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.(*net.TCPConn).File() // a dup: the loop's own fd
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		trs = append(trs, acceptFd(h, fd, &QueuedProtocol{Fallback: newRec(h, "fb"), Userdata: uint64(i + 1)}))
		go func() { // the socket is kept full
			chunk := make([]byte, 256*1024)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
	}
	q.pollUntil("connections", func() bool {
		for _, tr := range trs {
			if *tr == nil {
				return false
			}
		}
		return true
	})
	time.Sleep(50 * time.Millisecond) // every socket full
	reads := map[uint64]int{}
	q.onEv = func(ev Event) {
		if ev.Kind == EventData {
			reads[ev.Userdata]++
		}
	}
	const polls = 6 * conns
	for i := 0; i < polls; i++ {
		q.poll(0.1)
		for k := range q.data {
			delete(q.data, k) // only the counts matter
		}
	}
	for i := 1; i <= conns; i++ {
		if reads[uint64(i)] < polls/conns/2 {
			t.Fatalf("in %d Polls with %d always-readable transports, transport %d was read %d times (reads %v)",
				polls, conns, i, reads[uint64(i)], reads)
		}
	}
	for _, tr := range trs {
		(*tr).Abort()
	}
	q.pollUntil("all lost", func() bool { return len(q.lost) == conns })
}

// Outside Poll (a host that drives the loop with Run), a QueuedProtocol is
// an ordinary protocol: its Fallback is called.
func TestQueuedProtocolFallbackOutsidePoll(t *testing.T) {
	h := newHarness(t)
	newQHost(h, 16, 64*1024)
	fb := newRec(h, "fallback")
	fb.onEOF = func(*Transport) bool { return false }
	_, peer := accepted(h, &QueuedProtocol{Fallback: fb, Userdata: 1})
	h.runUntil("connection_made", time.Second, func() bool { return fb.made == 1 })
	unix.Write(peer, []byte("abc"))
	unix.Shutdown(peer, unix.SHUT_WR)
	h.runUntil("connection_lost", time.Second, func() bool { return fb.losts == 1 })
	if string(fb.data) != "abc" || fb.eofs != 1 {
		t.Fatalf("fallback saw data %q eof %d", fb.data, fb.eofs)
	}
}

// Release hooks deferred inside a Poll run at the start of the next one.
func TestEventQueueDeferRelease(t *testing.T) {
	h := newHarness(t)
	q := newQHost(h, 16, 64*1024)
	released := 0
	h.l.CallSoon(func() { h.l.Events().DeferRelease(func() { released++ }) }, nil)
	q.poll(0)
	if released != 0 {
		t.Fatalf("released during the Poll that deferred it")
	}
	q.poll(0)
	if released != 1 {
		t.Fatalf("released %d times after the next Poll, want 1", released)
	}
	h.l.Events().DeferRelease(func() { released++ })
	if released != 2 {
		t.Fatalf("DeferRelease outside a Poll did not run at once")
	}
}

// A CONNECTION_LOST that did not fit in the array waits in the overflow; the
// release deferred with it waits too, until the Poll after the one that
// delivered it (the host reads the userdata while it dispatches).
func TestEventQueueReleaseWaitsForOverflowedEvent(t *testing.T) {
	h := newHarness(t)
	q := newQHost(h, 2, minQueuedRead)
	const n = 4
	var trs []**Transport
	released := map[uint64]int{}
	for i := 0; i < n; i++ {
		tr, _ := accepted(h, &QueuedProtocol{Fallback: newRec(h, "fb"), Userdata: uint64(i + 1)})
		trs = append(trs, tr)
	}
	q.pollUntil("connections", func() bool { return len(q.made) == n && *trs[n-1] != nil })
	for i, tr := range trs {
		ud := uint64(i + 1)
		(*tr).OnRelease = func(*Transport) { h.l.Events().DeferRelease(func() { released[ud]++ }) }
	}
	lostAt := map[uint64]int{}
	q.onEv = func(ev Event) {
		if released[ev.Userdata] != 0 {
			t.Fatalf("event %d of userdata %d after its release", ev.Kind, ev.Userdata)
		}
		if ev.Kind == EventConnectionLost {
			lostAt[ev.Userdata] = q.polls
		}
	}
	for _, tr := range trs {
		(*tr).Abort()
	}
	q.pollUntil("all lost", func() bool { return len(q.lost) == n })
	if lostAt[n] <= lostAt[1] {
		t.Fatalf("the CONNECTION_LOST records did not overflow (polls %v)", lostAt)
	}
	q.poll(0)
	for ud := uint64(1); ud <= n; ud++ {
		if released[ud] != 1 {
			t.Fatalf("userdata %d released %d times", ud, released[ud])
		}
	}
}

// A release deferred between two Polls (the host replaced a protocol while it
// dispatched the last Poll's records) waits for the next Poll, or for a run
// of the loop that is not a Poll.
func TestEventQueueReleaseBetweenPolls(t *testing.T) {
	h := newHarness(t)
	q := newQHost(h, 16, minQueuedRead)
	released := 0
	tr, peer := accepted(h, &QueuedProtocol{Fallback: newRec(h, "fb"), Userdata: 1})
	q.pollUntil("connection_made", func() bool { return len(q.made) == 1 })
	h.l.Events().DeferRelease(func() { released++ }) // while dispatching
	if released != 0 {
		t.Fatalf("released while the host dispatches the records naming it")
	}
	q.poll(0)
	if released != 1 {
		t.Fatalf("released %d times by the next Poll, want 1", released)
	}
	if _, err := unix.Write(peer, []byte("x")); err != nil {
		t.Fatal(err)
	}
	q.pollUntil("data", func() bool { return len(q.data[1]) == 1 })
	h.l.Events().DeferRelease(func() { released++ })
	if released != 1 {
		t.Fatalf("released while the host dispatches the records naming it")
	}
	if err := h.l.RunOnceTimeout(0); err != nil {
		t.Fatal(err)
	}
	if released != 2 {
		t.Fatalf("released %d times after a run that is not a Poll, want 2", released)
	}
	h.l.Events().DeferRelease(func() { released++ })
	if released != 3 {
		t.Fatalf("no record to dispatch: not released at once")
	}
	(*tr).Abort()
	q.pollUntil("connection_lost", func() bool { return len(q.lost) == 1 })
}

type nopDg struct{ BaseDatagramProtocol }

// Datagrams inside Poll are records: the data, then the sender's address as
// a struct sockaddr of Err bytes; an endpoint closed is a last record. A
// 64 KiB arena is read one datagram a recvfrom; a 1 MiB one with recvmmsg
// (several a call, moved down behind each other), also when the event
// array takes only a few records a poll.
func TestQueuedDatagramProtocolRecords(t *testing.T) {
	for _, c := range []struct{ nev, arena int }{{64, 64 << 10}, {64, 1 << 20}, {3, 1 << 20}} {
		t.Run(fmt.Sprintf("%d-records-%d-KiB", c.nev, c.arena>>10), func(t *testing.T) {
			queuedDatagramRecords(t, c.nev, c.arena)
		})
	}
}

func queuedDatagramRecords(t *testing.T, nev, arena int) {
	h := newHarness(t)
	q := newQHost(h, nev, arena)
	var got [][]byte
	var addrs [][]byte
	q.onEv = func(ev Event) {
		if ev.Kind == EventDatagram {
			end := ev.Offset + ev.Length
			got = append(got, append([]byte(nil), q.arena[ev.Offset:end]...))
			addrs = append(addrs, append([]byte(nil), q.arena[end:end+uint64(ev.Err)]...))
		}
	}
	p := &QueuedDatagramProtocol{Fallback: &nopDg{}, Userdata: 5}
	f, err := h.l.CreateDatagramEndpoint(p, &DatagramOptions{Family: unix.AF_INET,
		Local: &DatagramAddr{Host: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	var dt *DatagramTransport
	f.AddDoneCallback(func(f *Future) {
		if v, err := f.Result(); err == nil {
			dt = v.(*DatagramTransport)
		}
	}, nil, nil)
	q.pollUntil("endpoint", func() bool { return dt != nil })
	la, _ := unix.Getsockname(dt.fd)
	port := la.(*unix.SockaddrInet4).Port
	c, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(c)
	unix.Bind(c, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	ca, _ := unix.Getsockname(c)
	size := func(i int) int {
		if i%7 == 6 {
			return 60000 + i
		}
		return 100 + i
	}
	for i := 0; i < 20; i++ {
		if err := unix.Sendto(c, pattern(size(i), uint32(i)), 0, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
	}
	q.pollUntil("20 datagrams", func() bool { return len(got) == 20 })
	cport := ca.(*unix.SockaddrInet4).Port
	for i, d := range got {
		if !bytes.Equal(d, pattern(size(i), uint32(i))) {
			t.Fatalf("datagram %d differs", i)
		}
		a := addrs[i]
		if len(a) != unix.SizeofSockaddrInet4 || int(a[2])<<8|int(a[3]) != cport || !bytes.Equal(a[4:8], []byte{127, 0, 0, 1}) {
			t.Fatalf("datagram %d: sender address % x, want port %d", i, a, cport)
		}
	}
	dt.Close()
	q.pollUntil("connection_lost", func() bool { _, ok := q.lost[5]; return ok })
}
