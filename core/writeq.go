package core

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The write buffer of stream transports (sockets and pipes): the bytes that
// write() accepted and the kernel did not take yet, in order. write() sends
// at once when nothing is buffered and copies only what the socket did not
// take; the copy goes into fixed-size chunks that the loop recycles, so a
// transport that keeps backing up (a bulk transfer, large echoes) allocates
// nothing once the loop's pool is warm. Flushes hand the chunks to the
// kernel in one sendmsg/writev.

const (
	chunkSize = 16 * 1024
	// maxPooledChunks bounds the memory a loop keeps for future write
	// buffers (1 MiB); chunks beyond it are left to the garbage collector.
	maxPooledChunks = 64
	// maxIov is the number of chunks one flush hands to the kernel.
	maxIov = 64
)

// getChunk returns an empty chunk (capacity chunkSize).
func (l *Loop) getChunk() []byte {
	if n := len(l.chunks); n > 0 {
		c := l.chunks[n-1]
		l.chunks[n-1] = nil
		l.chunks = l.chunks[:n-1]
		return c
	}
	return make([]byte, 0, chunkSize)
}

// putChunk recycles a chunk that is no longer referenced.
func (l *Loop) putChunk(c []byte) {
	if l.chunks == nil {
		l.chunks = make([][]byte, 0, maxPooledChunks) // never grown
	}
	if len(l.chunks) < maxPooledChunks {
		l.chunks = append(l.chunks, c[:0])
	}
}

// queueWrite appends data to the write buffer (a copy).
func (t *Transport) queueWrite(data []byte) {
	t.closeGate() // buffered bytes go first: no direct send behind them
	l := t.loop
	t.wsize += len(data)
	for len(data) > 0 {
		if k := len(t.wq); k > t.wqHead {
			tail := t.wq[k-1]
			if n := copy(tail[len(tail):cap(tail)], data); n > 0 {
				t.wq[k-1] = tail[:len(tail)+n]
				data = data[n:]
				continue
			}
		}
		if t.wqHead > 0 && len(t.wq) == cap(t.wq) {
			// Reuse the room of the chunks already sent.
			k := copy(t.wq, t.wq[t.wqHead:])
			clear(t.wq[k:])
			t.wq = t.wq[:k]
			t.wqHead = 0
		}
		t.wq = append(t.wq, l.getChunk())
	}
}

// pendingIov fills the loop's iovec array with the buffered bytes (at most
// maxIov chunks) and returns how many entries it used.
func (t *Transport) pendingIov() int {
	iov := &t.loop.iov
	n := 0
	off := t.wqOff
	for i := t.wqHead; i < len(t.wq) && n < maxIov; i++ {
		b := t.wq[i][off:]
		off = 0
		if len(b) == 0 {
			continue
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	return n
}

// clearIov drops the loop's references to the chunks of the last flush.
func (l *Loop) clearIov(n int) {
	for i := 0; i < n; i++ {
		l.iov[i] = unix.Iovec{}
	}
}

// consume drops n sent bytes from the front of the write buffer; the chunks
// that are all sent go back to the loop's pool.
func (t *Transport) consume(n int) {
	t.wsize -= n
	for n > 0 {
		b := t.wq[t.wqHead]
		rest := len(b) - t.wqOff
		if n < rest {
			t.wqOff += n
			return
		}
		n -= rest
		t.loop.putChunk(b)
		t.wq[t.wqHead] = nil
		t.wqHead++
		t.wqOff = 0
	}
	if t.wqHead == len(t.wq) {
		t.wq = t.wq[:0]
		t.wqHead = 0
	}
}

// dropWrites discards the write buffer (abort); it returns what was in it.
func (t *Transport) dropWrites() int {
	n := t.wsize
	for i := t.wqHead; i < len(t.wq); i++ {
		t.loop.putChunk(t.wq[i])
		t.wq[i] = nil
	}
	t.wq, t.wqHead, t.wqOff, t.wsize = t.wq[:0], 0, 0, 0
	return n
}

// flushSocket sends the write buffer with one sendmsg (a writev that does
// not raise SIGPIPE); the bytes sent, or the error.
func (t *Transport) flushSocket() (int, unix.Errno) {
	if len(t.wq)-t.wqHead == 1 {
		return rawSend(t.fd, t.wq[t.wqHead][t.wqOff:])
	}
	l := t.loop
	n := t.pendingIov()
	msg := unix.Msghdr{Iov: &l.iov[0]}
	msg.SetIovlen(n)
	r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(t.fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
	l.clearIov(n)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// writevRaw is writeRaw for several buffers: when nothing is buffered, one
// sendmsg for (up to maxIov of) them; what the socket did not take is
// copied to the write buffer.
func (t *Transport) writevRaw(bufs [][]byte) {
	if t.lostScheduled || t.fd < 0 {
		return
	}
	i, off := 0, 0 // the first byte not sent: bufs[i][off]
	if t.wsize == 0 {
		l := t.loop
		n := 0
		for _, b := range bufs {
			if len(b) == 0 {
				continue
			}
			if n == maxIov {
				break
			}
			l.iov[n].Base = &b[0]
			l.iov[n].SetLen(len(b))
			n++
		}
		if n == 0 {
			return
		}
		msg := unix.Msghdr{Iov: &l.iov[0]}
		msg.SetIovlen(n)
		r, _, errno := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(t.fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_NOSIGNAL)
		l.clearIov(n)
		if errno != 0 && errno != unix.EAGAIN && errno != unix.EINTR {
			t.fatal(&OpError{Op: "write", Err: errno}, "Fatal write error on socket transport")
			return
		}
		sent := 0
		if errno == 0 {
			sent = int(r)
		}
		for i < len(bufs) && sent >= len(bufs[i]) {
			sent -= len(bufs[i])
			i++
		}
		off = sent
		if i == len(bufs) {
			return
		}
		t.e.writer = t.writeFn
		l.update(t.e)
	}
	for ; i < len(bufs); i++ {
		t.queueWrite(bufs[i][off:])
		off = 0
	}
	if t.wsize > 0 {
		t.maybePauseProtocol()
	}
}
