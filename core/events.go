package core

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event queue: protocol callbacks as records in memory the host reads,
// instead of calls into the host.
//
// A host whose calls into the library are expensive (Python over ctypes pays
// 0.2-1.5 µs per crossing) polls with Loop.Poll: one call per iteration that
// waits, reads, and leaves every protocol event of the iteration in an array
// of Event records plus a read arena (both host memory), which the host walks
// and dispatches itself. Only transports whose protocol is a QueuedProtocol
// are queued; everything else keeps calling its callbacks.
//
// The contract:
//   - Events are queued only while a Poll runs. A QueuedProtocol event caused
//     synchronously by a host call outside a Poll (pause_writing inside a
//     write, for instance) goes to the protocol's Fallback at once, as asyncio
//     calls pause_writing inside write().
//   - Data is read straight into the arena (no copy in Go); a transport is not
//     read while the arena has less than minQueuedRead bytes free, and stays
//     readable (level-triggered), so the next Poll reads it.
//   - An event that does not fit (array full, or TLS plaintext larger than the
//     free arena) is kept in order and delivered first by the next Poll, which
//     then does not wait. Nothing is dropped.
//   - The arena and the array are reused by the next Poll: the host must be
//     done with the previous records before it polls again.
//   - Release hooks registered with DeferRelease (the host's userdata of a
//     closed queued transport) run at the start of the next Poll (or when the
//     loop closes), after the host has seen the events that name them.

// EventKind says which protocol callback an Event stands for.
type EventKind uint32

// Event kinds (the C ABI's ALOOP_EVENT_*).
const (
	EventConnectionMade EventKind = 1 + iota
	EventData                     // Offset/Length: the bytes in the arena
	EventEOF                      // eof_received: the host decides whether to close
	EventConnectionLost           // Err: 0 or the error code
	EventPauseWriting
	EventResumeWriting
	// EventDatagram (a QueuedDatagramProtocol): Offset/Length are the
	// datagram in the arena; Err is the size of the sender's address (a
	// struct sockaddr as the kernel gave it), stored right after the data
	// (0: none).
	EventDatagram
	EventErrorReceived // Err: the error code
	// EventReadable / EventWritable: a queued fd watcher's fd is ready
	// (AddReaderQueued / AddWriterQueued). Transport is the fd, Userdata the
	// watcher's; Err is 0, or the error of a queued re-add that failed (the
	// watcher is gone: the host runs its callback once, as for an fd error).
	EventReadable
	EventWritable
)

// Event is one protocol event. Its layout is the C ABI's aloop_event_t
// (40 bytes on 64-bit platforms).
type Event struct {
	Kind      EventKind
	Err       int32  // connection_lost: 0 for a clean close, else the error code
	Transport uint64 // the host's handle of the transport (EventQueue.ObjectID)
	Userdata  uint64 // QueuedProtocol.Userdata
	Offset    uint64 // EventData: where the bytes start in the arena
	Length    uint64 // EventData: how many bytes
}

// EventSize is the size of one Event record.
const EventSize = int(unsafe.Sizeof(Event{}))

// minQueuedRead is the least free arena space worth a read.
const minQueuedRead = 4096

// queuedReadBudget: a Poll starts no more reads once it has put this much
// in the arena. The host copies the bytes out of the arena after the Poll;
// while one Poll's reads stay near the size of a core's cache, they are
// still in the cache when it does. Measured (Python echo servers, 10
// connections, bench/cpu_per_request.sh, 5 runs, requests/s):
//
//	budget       100 KB echo   64 KiB TLS echo   16 KiB echo
//	128 KiB      45.8k         10.9k             143.6k
//	256 KiB      46.6k/46.1k   11.8k/11.6k       141.7k
//	512 KiB      40.4k         12.1k
//	1 MiB arena  37.5k/38.5k   12.2k/12.0k       141.2k
//
// 256 KiB keeps the 100 KB gain and loses 4% on TLS (whose p99 is lower
// with it: 1.10 ms against 1.40-1.48 ms). The transports it holds back are
// read first by the next Poll (held).
const queuedReadBudget = 256 * 1024

// heldReader is a transport a Poll held back (arena, array or budget): the
// next Poll reads it before it waits, so a few busy transports cannot keep
// the others waiting (epoll reports ready fds in the same order every time).
type heldReader interface{ readHeld() }

// queuedReadSize: the most one read puts in the arena (the host reads the
// arena after the poll, not at once, so readSize's cache argument does not
// hold; 256 KiB, as before readSize became 64 KiB, for the Python host).
const queuedReadSize = 256 * 1024

type pendingEvent struct {
	ev      Event
	data    []byte // EventData that did not fit in the arena (a copy)
	release func() // not an event: a DeferRelease behind undelivered events
	whole   bool   // data goes in one record (a datagram and its address)
}

// EventQueue holds the memory a host gave for queued events (see Poll).
type EventQueue struct {
	events []Event
	arena  []byte
	n      int // records written by this Poll
	used   int // arena bytes used by this Poll
	open   bool

	overflow []pendingEvent // in order, delivered first by the next Poll
	releases []func()
	held     []heldReader // held back by this Poll, read first by the next
	spare    []heldReader
	seq      uint64 // Polls so far: a transport is read at most once a Poll

	// ObjectID gives the host's handle of a transport (Event.Transport).
	ObjectID func(*Transport) uint64
	// ErrorCode maps a connection_lost error to the host's code (Event.Err).
	ErrorCode func(error) int32
}

// SetEventQueue gives the loop the memory Poll fills: room for len(events)
// records and an arena of len(arena) bytes. Both must stay valid and unused
// by the host while a Poll runs. Nil slices remove the queue.
func (l *Loop) SetEventQueue(events []Event, arena []byte) error {
	if l.evq != nil && l.evq.open {
		return ErrRunning
	}
	if len(events) == 0 && len(arena) == 0 {
		if l.evq != nil {
			l.evq.events, l.evq.arena = nil, nil
		}
		return nil
	}
	if len(events) == 0 || len(arena) < minQueuedRead {
		return ErrInvalid
	}
	if l.evq == nil {
		l.evq = &EventQueue{}
	}
	l.evq.events, l.evq.arena = events, arena
	return nil
}

// Events returns the loop's event queue (nil until SetEventQueue).
func (l *Loop) Events() *EventQueue { return l.evq }

// Poll runs one iteration of the loop (as RunOnceTimeout) with the event
// queue open and returns the number of Event records it wrote. before, if not
// nil, runs first inside the open queue (the host's queued writes).
// Poll does not wait when events are already queued.
func (l *Loop) Poll(timeout float64, before func()) (int, error) {
	q := l.evq
	if q == nil || len(q.events) == 0 {
		return 0, ErrInvalid
	}
	if l.closed {
		return 0, ErrClosed
	}
	if q.open || l.running.Load() {
		return 0, ErrRunning
	}
	q.n, q.used = 0, 0
	q.runReleases()
	q.open = true
	q.seq++
	q.drainOverflow()
	if before != nil {
		before()
	}
	q.readHeld()
	if q.n > 0 || len(q.overflow) > 0 {
		timeout = 0
	}
	err := l.RunOnceTimeout(timeout)
	q.open = false
	if err != nil && q.n == 0 {
		return 0, err
	}
	return q.n, nil
}

// Pending reports whether events are waiting for the next Poll (the host
// should then poll without waiting).
func (q *EventQueue) Pending() bool { return len(q.overflow) > 0 }

// DeferRelease runs fn once the host can no longer see a record that names
// what fn releases: at the start of the next Poll when called inside one or
// while the host dispatches the last Poll's records (a protocol replaced
// between two Polls), else at once. While events wait in the overflow, fn
// waits behind them: it runs at the start of the Poll after the one that
// delivered them. A run of the loop other than Poll ends the dispatching of
// the last Poll's records (see dispatched).
func (q *EventQueue) DeferRelease(fn func()) {
	switch {
	case len(q.overflow) > 0:
		q.overflow = append(q.overflow, pendingEvent{release: fn})
	case q.open || q.n > 0:
		q.releases = append(q.releases, fn)
	default:
		fn()
	}
}

// dispatched: the host runs the loop other than by Poll, so it is done with
// the records of the last Poll.
func (q *EventQueue) dispatched() {
	q.n = 0
	q.runReleases()
}

func (q *EventQueue) runReleases() {
	for len(q.releases) > 0 {
		r := q.releases
		q.releases = nil
		for _, fn := range r {
			fn()
		}
	}
}

// readHeld reads the transports the last Poll held back, in the order it
// held them (those this Poll holds back again wait for the next).
func (q *EventQueue) readHeld() {
	if len(q.held) == 0 {
		return
	}
	held := q.held
	q.held = q.spare
	for i, t := range held {
		held[i] = nil
		t.readHeld()
	}
	q.spare = held[:0]
}

// hold reports whether a read inside this Poll waits for the next one:
// the transport was read by this Poll already, or the arena, the array or
// the budget is spent, or records wait in the overflow (order). *seq is the
// transport's own mark of the last Poll that read or held it.
func (q *EventQueue) hold(t heldReader, seq *uint64) bool {
	if *seq == q.seq {
		return true // once a Poll; it is still ready (level-triggered)
	}
	*seq = q.seq
	if len(q.overflow) > 0 || q.n == len(q.events) || len(q.arena)-q.used < minQueuedRead || q.used >= queuedReadBudget {
		q.held = append(q.held, t)
		return true
	}
	return false
}

// close drops what the host will never see (loop close).
func (q *EventQueue) close() {
	clear(q.held)
	q.held = nil
	for _, p := range q.overflow {
		if p.release != nil {
			q.releases = append(q.releases, p.release)
		}
	}
	q.overflow = nil
	q.open = false
	q.runReleases()
	q.events, q.arena = nil, nil
}

func (q *EventQueue) drainOverflow() {
	k := 0
	for ; k < len(q.overflow); k++ {
		p := &q.overflow[k]
		if p.release != nil { // the events before it are delivered now
			q.releases = append(q.releases, p.release)
			continue
		}
		if p.data == nil {
			if q.n == len(q.events) {
				break
			}
			q.events[q.n] = p.ev
			q.n++
			continue
		}
		if p.whole {
			if !q.emitWhole(p.ev, p.data) {
				break
			}
			continue
		}
		p.data = q.emitData(p.ev, p.data)
		if len(p.data) > 0 {
			break
		}
	}
	if k == len(q.overflow) {
		q.overflow = q.overflow[:0]
	} else {
		q.overflow = append(q.overflow[:0], q.overflow[k:]...)
	}
}

// emitData writes as much of data as the array and the arena take (data
// larger than the whole arena goes in arena-sized records) and returns the
// rest.
func (q *EventQueue) emitData(ev Event, data []byte) []byte {
	for len(data) > 0 && q.n < len(q.events) {
		free := len(q.arena) - q.used
		if free < len(data) && free < minQueuedRead {
			break
		}
		ev.Offset = uint64(q.used)
		ev.Length = uint64(copy(q.arena[q.used:], data))
		q.used += int(ev.Length)
		data = data[ev.Length:]
		q.events[q.n] = ev
		q.n++
	}
	return data
}

// emitWhole writes one record whose bytes (Length of them, then whatever
// follows) all go in the arena, if they fit.
func (q *EventQueue) emitWhole(ev Event, payload []byte) bool {
	if q.n == len(q.events) || len(payload) > len(q.arena)-q.used {
		return false
	}
	ev.Offset = uint64(q.used)
	q.used += copy(q.arena[q.used:], payload)
	q.events[q.n] = ev
	q.n++
	return true
}

// pushWhole queues a record whose payload must stay in one piece; false
// when it can never fit the arena.
func (q *EventQueue) pushWhole(ev Event, payload []byte) bool {
	if len(payload) > len(q.arena) {
		return false
	}
	if len(q.overflow) == 0 && q.emitWhole(ev, payload) {
		return true
	}
	q.overflow = append(q.overflow, pendingEvent{ev: ev, data: append([]byte(nil), payload...), whole: true})
	return true
}

func (q *EventQueue) push(ev Event, data []byte) {
	if len(q.overflow) == 0 {
		if data == nil {
			if q.n < len(q.events) {
				q.events[q.n] = ev
				q.n++
				return
			}
		} else if data = q.emitData(ev, data); len(data) == 0 {
			return
		}
	}
	p := pendingEvent{ev: ev}
	if data != nil {
		p.data = append([]byte(nil), data...)
	}
	q.overflow = append(q.overflow, p)
}

// QueuedProtocol is a Protocol whose callbacks become Event records while
// the loop is inside Poll; outside Poll they go to Fallback (which may be a
// BufferedProtocol). EOF is queued without closing: the host calls Close
// when its eof_received says so.
type QueuedProtocol struct {
	Fallback Protocol
	Userdata uint64

	pending int // what the last GetBuffer handed out: bufArena, bufScratch, bufFallback
}

const (
	bufNone = iota
	bufArena
	bufScratch
	bufFallback
)

var _ BufferedProtocol = (*QueuedProtocol)(nil)

func (p *QueuedProtocol) queue(t *Transport) *EventQueue {
	if q := t.loop.evq; q != nil && q.open {
		return q
	}
	return nil
}

func (p *QueuedProtocol) event(q *EventQueue, t *Transport, kind EventKind) Event {
	ev := Event{Kind: kind, Userdata: p.Userdata}
	if q.ObjectID != nil {
		ev.Transport = q.ObjectID(t)
	}
	return ev
}

// readDeferred: inside Poll, whether a read waits for the next Poll
// (EventQueue.hold).
func (p *QueuedProtocol) readDeferred(t *Transport) bool {
	q := p.queue(t)
	return q != nil && q.hold(t, &t.heldPoll)
}

func (p *QueuedProtocol) ConnectionMade(t *Transport) {
	if q := p.queue(t); q != nil {
		q.push(p.event(q, t, EventConnectionMade), nil)
		return
	}
	p.Fallback.ConnectionMade(t)
}

func (p *QueuedProtocol) DataReceived(t *Transport, data []byte) {
	if len(data) == 0 {
		return
	}
	if q := p.queue(t); q != nil {
		q.push(p.event(q, t, EventData), data)
		return
	}
	if b, ok := p.Fallback.(BufferedProtocol); ok {
		for len(data) > 0 {
			buf := b.GetBuffer(t, len(data))
			if len(buf) == 0 {
				return
			}
			n := copy(buf, data)
			b.BufferUpdated(t, n)
			data = data[n:]
		}
		return
	}
	p.Fallback.DataReceived(t, data)
}

func (p *QueuedProtocol) EOFReceived(t *Transport) bool {
	if q := p.queue(t); q != nil {
		q.push(p.event(q, t, EventEOF), nil)
		return true // the host closes when its eof_received says so
	}
	return p.Fallback.EOFReceived(t)
}

func (p *QueuedProtocol) ConnectionLost(t *Transport, err error) {
	if q := p.queue(t); q != nil {
		ev := p.event(q, t, EventConnectionLost)
		if err != nil && q.ErrorCode != nil {
			ev.Err = q.ErrorCode(err)
		}
		q.push(ev, nil)
		return
	}
	p.Fallback.ConnectionLost(t, err)
}

func (p *QueuedProtocol) PauseWriting(t *Transport) {
	if q := p.queue(t); q != nil {
		q.push(p.event(q, t, EventPauseWriting), nil)
		return
	}
	p.Fallback.PauseWriting(t)
}

func (p *QueuedProtocol) ResumeWriting(t *Transport) {
	if q := p.queue(t); q != nil {
		q.push(p.event(q, t, EventResumeWriting), nil)
		return
	}
	p.Fallback.ResumeWriting(t)
}

// GetBuffer hands out the free arena inside Poll (the transport does not
// read when it is short: readDeferred), else the Fallback's buffer or the
// loop's read buffer.
func (p *QueuedProtocol) GetBuffer(t *Transport, sizehint int) []byte {
	if q := p.queue(t); q != nil && len(q.overflow) == 0 && q.n < len(q.events) && len(q.arena)-q.used >= minQueuedRead {
		p.pending = bufArena
		end := len(q.arena)
		if end-q.used > queuedReadSize {
			end = q.used + queuedReadSize
		}
		return q.arena[q.used:end]
	}
	if b, ok := p.Fallback.(BufferedProtocol); ok {
		p.pending = bufFallback
		return b.GetBuffer(t, sizehint)
	}
	p.pending = bufScratch
	return t.loop.readBuffer()
}

func (p *QueuedProtocol) BufferUpdated(t *Transport, n int) {
	kind := p.pending
	p.pending = bufNone
	switch kind {
	case bufArena:
		q := t.loop.evq
		ev := p.event(q, t, EventData)
		ev.Offset, ev.Length = uint64(q.used), uint64(n)
		q.used += n
		q.events[q.n] = ev
		q.n++
	case bufFallback:
		p.Fallback.(BufferedProtocol).BufferUpdated(t, n)
	case bufScratch:
		p.Fallback.DataReceived(t, t.loop.readBuf[:n])
	}
}

// QueuedDatagramProtocol is QueuedProtocol for datagram endpoints: inside
// Poll, every callback becomes a record; outside Poll, and for a datagram
// larger than the whole arena, Fallback is called.
type QueuedDatagramProtocol struct {
	Fallback DatagramProtocol
	Userdata uint64
	// ObjectID gives the host's handle of the endpoint (Event.Transport).
	ObjectID func(*DatagramTransport) uint64

	scratch []byte
}

func (p *QueuedDatagramProtocol) queue(t *DatagramTransport) *EventQueue {
	if q := t.loop.evq; q != nil && q.open {
		return q
	}
	return nil
}

func (p *QueuedDatagramProtocol) event(t *DatagramTransport, kind EventKind) Event {
	ev := Event{Kind: kind, Userdata: p.Userdata}
	if p.ObjectID != nil {
		ev.Transport = p.ObjectID(t)
	}
	return ev
}

// datagramDeferred: inside Poll, whether reading waits for the next Poll
// (EventQueue.hold).
func (p *QueuedDatagramProtocol) datagramDeferred(t *DatagramTransport) bool {
	q := p.queue(t)
	return q != nil && q.hold(t, &t.heldPoll)
}

func (p *QueuedDatagramProtocol) ConnectionMade(t *DatagramTransport) {
	if q := p.queue(t); q != nil {
		q.push(p.event(t, EventConnectionMade), nil)
		return
	}
	p.Fallback.ConnectionMade(t)
}

// datagramReceivedRaw queues a datagram inside Poll with its sender's
// struct sockaddr as received (the record's bytes); false outside Poll, or
// for a datagram larger than the arena (DatagramReceived then runs).
func (p *QueuedDatagramProtocol) datagramReceivedRaw(t *DatagramTransport, data, raw []byte) bool {
	q := p.queue(t)
	if q == nil {
		return false
	}
	ev := p.event(t, EventDatagram)
	ev.Length = uint64(len(data))
	ev.Err = int32(len(raw))
	if len(q.overflow) == 0 && q.n < len(q.events) && len(data)+len(raw) <= len(q.arena)-q.used {
		// Straight into the arena.
		ev.Offset = uint64(q.used)
		q.used += copy(q.arena[q.used:], data)
		q.used += copy(q.arena[q.used:], raw)
		q.events[q.n] = ev
		q.n++
		return true
	}
	payload := append(append(p.scratch[:0], data...), raw...)
	p.scratch = payload[:0]
	return q.pushWhole(ev, payload)
}

// ipSlot is the arena room recvmmsg gives one datagram of an IP socket:
// the largest UDP payload fits (65,507 bytes over IPv4, 65,527 over IPv6),
// and its sender's address after it.
const (
	ipDatagramMax = 65536
	ipSlot        = ipDatagramMax + unix.SizeofSockaddrAny
)

// recvScratch is the memory of datagramRecvBatch's recvmmsg (per
// endpoint, made on first use).
type recvScratch struct {
	hdrs  [datagramBatch]unix.Mmsghdr
	iovs  [datagramBatch]unix.Iovec
	names [datagramBatch]unix.RawSockaddrAny
}

// datagramRecvBatch: inside Poll, with room for at least two datagrams in
// the arena and the array, one recvmmsg reads up to datagramBatch
// datagrams of an IP socket straight into the arena (each in a slot large
// enough for any UDP datagram); each is then moved down behind the one
// before, with its sender's address, as the records want them. False when
// it did not read (outside Poll, little room, an interrupted call): the
// caller reads as usual.
func (p *QueuedDatagramProtocol) datagramRecvBatch(t *DatagramTransport) bool {
	q := p.queue(t)
	if q == nil || len(q.overflow) > 0 {
		return false
	}
	k := datagramBatch
	if r := len(q.events) - q.n; r < k {
		k = r
	}
	if r := (len(q.arena) - q.used) / ipSlot; r < k {
		k = r
	}
	if k < 2 {
		return false
	}
	if t.rmm == nil {
		t.rmm = &recvScratch{}
	}
	m := t.rmm
	base := q.used
	for i := 0; i < k; i++ {
		m.iovs[i].Base = &q.arena[base+i*ipSlot]
		m.iovs[i].SetLen(ipDatagramMax)
		m.hdrs[i] = unix.Mmsghdr{}
		h := &m.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&m.names[i]))
		h.Namelen = unix.SizeofSockaddrAny
		h.Iov = &m.iovs[i]
		h.SetIovlen(1)
	}
	r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(t.fd), uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(k), 0, 0, 0)
	clear(m.iovs[:k]) // no pointers into the host's memory kept
	switch {
	case errno == unix.EAGAIN:
		return true
	case errno == unix.EINTR:
		return false
	case errno != 0:
		t.errorReceived(&OpError{Op: "recvfrom", Err: errno})
		return true
	}
	for i := 0; i < int(r); i++ {
		n := int(m.hdrs[i].Len)
		alen := int(m.hdrs[i].Hdr.Namelen)
		if alen > unix.SizeofSockaddrAny {
			alen = unix.SizeofSockaddrAny
		}
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&m.names[i])), alen)
		if alen == 0 && t.address != nil {
			raw = t.senderRaw(t.address) // as DatagramReceived is given it
		}
		// Down behind the record before (never over a slot not yet moved).
		src := base + i*ipSlot
		ev := p.event(t, EventDatagram)
		ev.Offset = uint64(q.used)
		ev.Length = uint64(n)
		ev.Err = int32(len(raw))
		q.used += copy(q.arena[q.used:], q.arena[src:src+n])
		q.used += copy(q.arena[q.used:], raw)
		q.events[q.n] = ev
		q.n++
	}
	return true
}

func (p *QueuedDatagramProtocol) DatagramReceived(t *DatagramTransport, data []byte, addr unix.Sockaddr) {
	if q := p.queue(t); q != nil {
		raw := t.senderRaw(addr)
		payload := append(append(p.scratch[:0], data...), raw...)
		p.scratch = payload[:0]
		ev := p.event(t, EventDatagram)
		ev.Length = uint64(len(data))
		ev.Err = int32(len(raw))
		if q.pushWhole(ev, payload) {
			return
		}
	}
	p.Fallback.DatagramReceived(t, data, addr)
}

func (p *QueuedDatagramProtocol) ErrorReceived(t *DatagramTransport, err error) {
	if q := p.queue(t); q != nil {
		ev := p.event(t, EventErrorReceived)
		if q.ErrorCode != nil {
			ev.Err = q.ErrorCode(err)
		}
		q.push(ev, nil)
		return
	}
	p.Fallback.ErrorReceived(t, err)
}

func (p *QueuedDatagramProtocol) ConnectionLost(t *DatagramTransport, err error) {
	if q := p.queue(t); q != nil {
		ev := p.event(t, EventConnectionLost)
		if err != nil && q.ErrorCode != nil {
			ev.Err = q.ErrorCode(err)
		}
		q.push(ev, nil)
		return
	}
	p.Fallback.ConnectionLost(t, err)
}

func (p *QueuedDatagramProtocol) PauseWriting(t *DatagramTransport) {
	if q := p.queue(t); q != nil {
		q.push(p.event(t, EventPauseWriting), nil)
		return
	}
	p.Fallback.PauseWriting(t)
}

func (p *QueuedDatagramProtocol) ResumeWriting(t *DatagramTransport) {
	if q := p.queue(t); q != nil {
		q.push(p.event(t, EventResumeWriting), nil)
		return
	}
	p.Fallback.ResumeWriting(t)
}
