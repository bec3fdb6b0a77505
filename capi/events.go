package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
)

// The event queue (core/events.go): aloop_loop_set_event_queue,
// aloop_loop_set_write_queue, aloop_loop_poll, aloop_loop_flush.

// The C records and the core's must be the same memory layout.
var _ = [1]struct{}{}[unsafe.Sizeof(C.aloop_event_t{})-uintptr(core.EventSize)]
var _ = [1]struct{}{}[unsafe.Sizeof(C.aloop_write_op_t{})-16]

// writeQueue is the host's queued writes (host memory).
type writeQueue struct {
	ops   []C.aloop_write_op_t
	arena []byte
	// frames: a run of ALOOP_WRITE_SENDTO on one endpoint (reused)
	frames [][]byte
}

// cQueued is a queued protocol whose fallback is the C protocol.
type cQueued struct {
	core.QueuedProtocol
	p *cProto
}

func (a *cQueued) ConnectionMade(t *core.Transport) {
	if to := tobj(t); to.proto == nil {
		to.proto = a.p
		a.p.adopted = true
	}
	a.QueuedProtocol.ConnectionMade(t)
}

// releaseQueued drops a protocol's userdata: a queued protocol's (flags)
// after the host has seen the records that name it (the next poll).
func releaseQueued(flags C.uint, d *hostData, l *core.Loop) {
	if flags&C.ALOOP_PROTOCOL_QUEUED != 0 {
		if q := l.Events(); q != nil {
			q.DeferRelease(d.release)
			return
		}
	}
	d.release()
}

func releaseProto(t *core.Transport, p *cProto) { releaseQueued(p.flags, &p.hostData, t.Loop()) }

func (lo *loopObj) eventQueue() *core.EventQueue {
	q := lo.l.Events()
	if q != nil && q.ObjectID == nil {
		q.ObjectID = func(t *core.Transport) uint64 { return uint64(transportHandle(t)) }
		q.ErrorCode = func(err error) int32 { return int32(errCode(err)) }
	}
	return q
}

//export aloop_loop_set_event_queue
func aloop_loop_set_event_queue(loop C.uintptr_t, events *C.aloop_event_t, nevents C.size_t, arena unsafe.Pointer, size C.size_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		if (events == nil) != (nevents == 0) || (arena == nil) != (size == 0) || (events == nil) != (arena == nil) {
			return fail(C.ALOOP_EINVAL, "events and arena go together with their sizes (or NULL/0 for both)")
		}
		if nevents > 1<<24 || size > 1<<32 {
			return fail(C.ALOOP_EINVAL, "event queue too large (%d records, %d bytes)", uint64(nevents), uint64(size))
		}
		inject()
		var evs []core.Event
		var ar []byte
		if events != nil {
			evs = unsafe.Slice((*core.Event)(unsafe.Pointer(events)), int(nevents))
			ar = unsafe.Slice((*byte)(arena), int(size))
		}
		if err := lo.l.SetEventQueue(evs, ar); err != nil {
			if err == core.ErrInvalid {
				return fail(C.ALOOP_EINVAL, "the event queue needs at least 1 record and 4096 bytes of arena")
			}
			return failErr(err)
		}
		lo.eventQueue()
		return 0
	})
}

//export aloop_loop_set_write_queue
func aloop_loop_set_write_queue(loop C.uintptr_t, ops *C.aloop_write_op_t, nops C.size_t, arena unsafe.Pointer, size C.size_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		if (ops == nil) != (nops == 0) || (arena == nil) != (size == 0) {
			return fail(C.ALOOP_EINVAL, "ops and arena go together with their sizes (or NULL/0)")
		}
		if nops > 1<<24 || size > 1<<32 {
			return fail(C.ALOOP_EINVAL, "write queue too large (%d operations, %d bytes)", uint64(nops), uint64(size))
		}
		inject()
		lo.wq = writeQueue{}
		if ops != nil {
			lo.wq.ops = unsafe.Slice(ops, int(nops))
		}
		if arena != nil {
			lo.wq.arena = unsafe.Slice((*byte)(arena), int(size))
		}
		return 0
	})
}

// checkWrites validates the first n queued write operations.
func (lo *loopObj) checkWrites(n int) C.int {
	ops := lo.wq.ops
	if n > len(ops) {
		return fail(C.ALOOP_EINVAL, "%d write operations queued, room for %d", n, len(ops))
	}
	total := 0
	for i := 0; i < n; i++ {
		switch op := &ops[i]; op.kind {
		case C.ALOOP_WRITE_DATA:
			total += int(op.length)
		case C.ALOOP_WRITE_SENDTO:
			ln := int(op.length)
			if total+ln <= len(lo.wq.arena) {
				if _, _, ok := core.SplitQueuedSend(lo.wq.arena[total : total+ln]); !ok {
					return fail(C.ALOOP_EINVAL, "write operation %d (ALOOP_WRITE_SENDTO): %d bytes do not hold a 4-byte address length and that many bytes of address", i, ln)
				}
			}
			total += ln
		case C.ALOOP_WRITE_EOF, C.ALOOP_WRITE_CLOSE:
		case C.ALOOP_WRITE_REMOVE_READER, C.ALOOP_WRITE_REMOVE_WRITER, C.ALOOP_WRITE_ADD_READER, C.ALOOP_WRITE_ADD_WRITER:
			if fd := *(*uint64)(unsafe.Pointer(op)); fd > 1<<31-1 {
				return fail(C.ALOOP_EINVAL, "write operation %d: fd %d", i, fd)
			}
		default:
			return fail(C.ALOOP_EINVAL, "write operation %d has kind %d", i, int(op.kind))
		}
	}
	if total > len(lo.wq.arena) {
		return fail(C.ALOOP_EINVAL, "write operations take %d bytes, the write arena has %d", total, len(lo.wq.arena))
	}
	return 0
}

// flush performs the first n queued write operations (checked).
func (lo *loopObj) flush(n int) {
	ops := lo.wq.ops
	off := 0
	for i := 0; i < n; i++ {
		op := &ops[i]
		if op.kind >= C.ALOOP_WRITE_REMOVE_READER {
			// An fd watcher's operation: the first field is the fd.
			fd := int(*(*uint64)(unsafe.Pointer(op)))
			switch op.kind {
			case C.ALOOP_WRITE_REMOVE_READER:
				lo.l.RemoveReader(fd)
			case C.ALOOP_WRITE_REMOVE_WRITER:
				lo.l.RemoveWriter(fd)
			case C.ALOOP_WRITE_ADD_READER:
				lo.l.ReaddQueued(fd, false)
			case C.ALOOP_WRITE_ADD_WRITER:
				lo.l.ReaddQueued(fd, true)
			}
			continue
		}
		// The handle is read as an integer: it is never a Go pointer.
		h := *(*uintptr)(unsafe.Pointer(op))
		if op.kind == C.ALOOP_WRITE_SENDTO {
			// A datagram endpoint's handle (a stream's: skipped); the sends
			// that follow on the same endpoint go with it (one sendmmsg).
			frames := lo.wq.frames[:0]
			lo.wq.frames = nil // a flush from a callback inside makes its own
			for {
				ln := int(ops[i].length)
				frames = append(frames, lo.wq.arena[off:off+ln:off+ln])
				off += ln
				if i+1 == n || ops[i+1].kind != C.ALOOP_WRITE_SENDTO || *(*uintptr)(unsafe.Pointer(&ops[i+1])) != h {
					break
				}
				i++
			}
			if do := datagrams.get(h); do != nil && do.t.Loop() == lo.l {
				if len(frames) == 1 {
					do.t.SendQueued(frames[0])
				} else {
					do.t.SendQueuedBatch(frames)
				}
			}
			clear(frames)
			lo.wq.frames = frames[:0]
			continue
		}
		t := transports.get(h)
		if t != nil && t.Loop() != lo.l {
			t = nil
		}
		switch op.kind {
		case C.ALOOP_WRITE_DATA:
			ln := int(op.length)
			if t != nil {
				t.Write(lo.wq.arena[off : off+ln : off+ln])
			}
			off += ln
		case C.ALOOP_WRITE_EOF:
			if t != nil {
				t.WriteEOF()
			}
		case C.ALOOP_WRITE_CLOSE:
			if t != nil {
				t.Close()
			} else if do := datagrams.get(h); do != nil && do.t.Loop() == lo.l {
				do.t.Close() // after the sends queued before it
			}
		}
	}
}

//export aloop_loop_poll
func aloop_loop_poll(loop C.uintptr_t, timeout C.double, nwrites C.size_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	if timeout != timeout { // NaN
		return fail(C.ALOOP_EINVAL, "timeout is NaN")
	}
	if lo.l.Events() == nil {
		return fail(C.ALOOP_EINVAL, "no event queue: call aloop_loop_set_event_queue first")
	}
	if nwrites > 1<<24 {
		return fail(C.ALOOP_EINVAL, "%d write operations", uint64(nwrites))
	}
	nw := int(nwrites)
	if rc := lo.checkWrites(nw); rc < 0 {
		return rc
	}
	inject()
	var before func()
	if nw > 0 {
		// A closure made once per loop (one per poll would allocate).
		if lo.flushFn == nil {
			lo.flushFn = func() { lo.flush(lo.flushN) }
		}
		lo.flushN = nw
		before = lo.flushFn
	}
	n, err := lo.l.Poll(float64(timeout), before)
	if err != nil {
		return failErr(err)
	}
	return C.int(n)
}

//export aloop_loop_poll_args
func aloop_loop_poll_args(args *C.aloop_poll_args_t) (rc C.int) {
	defer guard(&rc)
	if args == nil {
		return fail(C.ALOOP_EINVAL, "args is NULL")
	}
	if args.size < C.size_t(unsafe.Sizeof(*args)) {
		return fail(C.ALOOP_EINVAL, "args.size is %d; set it to sizeof(aloop_poll_args_t)", int(args.size))
	}
	return aloop_loop_poll(C.uintptr_t(uintptr(unsafe.Pointer(args.loop))), args.timeout, C.size_t(args.nwrites))
}

//export aloop_loop_take_stop
func aloop_loop_take_stop(loop C.uintptr_t) (rc C.int) {
	defer guard(&rc)
	lo, rc := getLoop(loop)
	if lo == nil {
		return rc
	}
	if lo.l.TakeStop() {
		return 1
	}
	return 0
}

//export aloop_loop_flush
func aloop_loop_flush(loop C.uintptr_t, nwrites C.size_t) (rc C.int) {
	defer guard(&rc)
	return with(loop, getLoopT, func(lo *loopObj) C.int {
		if nwrites > 1<<24 {
			return fail(C.ALOOP_EINVAL, "%d write operations", uint64(nwrites))
		}
		if rc := lo.checkWrites(int(nwrites)); rc < 0 {
			return rc
		}
		inject()
		lo.flush(int(nwrites))
		return 0
	})
}
