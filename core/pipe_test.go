package core

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return p[0], p[1]
}

func fdClosed(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == unix.EBADF
}

func (h *harness) pipeTransport(read bool, fd int, p Protocol) *Transport {
	h.t.Helper()
	var f *Future
	var err error
	if read {
		f, err = h.l.ConnectReadPipe(fd, p)
	} else {
		f, err = h.l.ConnectWritePipe(fd, p)
	}
	if err != nil {
		h.t.Fatalf("connect pipe: %v", err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		h.t.Fatalf("connect pipe future: %v", err)
	}
	return v.(*Transport)
}

func TestReadPipe(t *testing.T) {
	h := newHarness(t)
	r, w := newPipe(t)
	p := newRec(h, "reader")
	tr := h.pipeTransport(true, r, p)
	if p.made != 1 || tr.Fd() != r {
		t.Fatalf("made %d fd %d", p.made, tr.Fd())
	}
	if fl, _ := unix.FcntlInt(uintptr(r), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatal("the pipe was not made non-blocking")
	}
	if !tr.IsReading() || tr.CanWriteEOF() {
		t.Fatalf("is_reading %v can_write_eof %v", tr.IsReading(), tr.CanWriteEOF())
	}
	if err := tr.Write([]byte("x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("write on a read pipe: %v", err)
	}
	if err := tr.WriteEOF(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("write_eof on a read pipe: %v", err)
	}
	unix.Write(w, []byte("hello "))
	h.runUntil("data", 5*time.Second, func() bool { return string(p.data) == "hello " })
	// Paused: nothing is delivered.
	tr.PauseReading()
	if tr.IsReading() {
		t.Fatal("is_reading after pause")
	}
	unix.Write(w, []byte("world"))
	h.runFor(50 * time.Millisecond)
	if string(p.data) != "hello " {
		t.Fatalf("data while paused: %q", p.data)
	}
	tr.ResumeReading()
	h.runUntil("data after resume", 5*time.Second, func() bool { return string(p.data) == "hello world" })
	// EOF: eof_received, then connection_lost(nil); the fd is closed.
	unix.Close(w)
	h.runUntil("lost", 5*time.Second, func() bool { return p.losts == 1 })
	if len(p.log) != 3 || p.log[1] != "eof" || p.log[2] != "lost" || p.lostErr != nil {
		t.Fatalf("log %v err %v", p.log, p.lostErr)
	}
	if !fdClosed(r) {
		t.Fatal("read end still open")
	}
}

func TestReadPipeCloseAndBigData(t *testing.T) {
	h := newHarness(t)
	r, w := newPipe(t)
	defer unix.Close(w)
	p := newRec(h, "reader")
	tr := h.pipeTransport(true, r, p)
	msg := pattern(1<<20, 9)
	go func() {
		// A blocking writer thread: the data arrives in many reads.
		for off := 0; off < len(msg); {
			n, err := unix.Write(w, msg[off:])
			if err != nil {
				return
			}
			off += n
		}
	}()
	h.runUntil("all data", 10*time.Second, func() bool { return len(p.data) == len(msg) })
	if !bytes.Equal(p.data, msg) {
		t.Fatalf("data differs: %s", firstDiff(p.data, msg))
	}
	tr.Close()
	tr.Close()
	if !tr.IsClosing() || tr.IsReading() {
		t.Fatal("not closing")
	}
	h.runUntil("lost", time.Second, func() bool { return p.losts == 1 })
	if p.eofs != 0 || p.lostErr != nil {
		t.Fatalf("close: eofs %d err %v", p.eofs, p.lostErr)
	}
}

func TestWritePipeFlowControlAndClose(t *testing.T) {
	h := newHarness(t)
	r, w := newPipe(t)
	defer unix.Close(r)
	p := newRec(h, "writer")
	tr := h.pipeTransport(false, w, p)
	if !tr.CanWriteEOF() || tr.IsReading() {
		t.Fatalf("can_write_eof %v is_reading %v", tr.CanWriteEOF(), tr.IsReading())
	}
	msg := pattern(1<<20, 5)
	if err := tr.Write(msg); err != nil {
		t.Fatal(err)
	}
	if tr.WriteBufferSize() == 0 || p.pauses != 1 {
		t.Fatalf("1 MiB into a pipe: buffered %d, pauses %d", tr.WriteBufferSize(), p.pauses)
	}
	tr.Close() // flushes, then closes
	// While the buffer drains, a write is still taken and sent in order
	// (asyncio's socket transports do so; a layered protocol flushes its own
	// buffer from resume_writing during the close).
	if err := tr.Write([]byte("late")); err != nil {
		t.Fatalf("write after close while flushing: %v", err)
	}
	msg = append(msg, "late"...)
	var got []byte
	buf := make([]byte, 65536)
	unix.SetNonblock(r, true)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.l.RunOnceTimeout(0.001)
		n, err := unix.Read(r, buf)
		if n == 0 && err == nil {
			break // EOF: the transport closed the write end
		}
		if n > 0 {
			got = append(got, buf[:n]...)
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("reader got: %s", firstDiff(got, msg))
	}
	h.runUntil("lost", time.Second, func() bool { return p.losts == 1 })
	if p.resumes != 1 || p.lostErr != nil || !fdClosed(w) {
		t.Fatalf("resumes %d err %v closed %v", p.resumes, p.lostErr, fdClosed(w))
	}
}

// The reader goes away: with data still buffered the transport ends with
// EPIPE; with an empty buffer it ends cleanly (asyncio).
func TestWritePipeReaderGoesAway(t *testing.T) {
	h := newHarness(t)
	r, w := newPipe(t)
	p := newRec(h, "writer")
	tr := h.pipeTransport(false, w, p)
	tr.Write(pattern(200000, 1))
	if tr.WriteBufferSize() == 0 {
		t.Fatal("nothing buffered")
	}
	unix.Close(r)
	h.runUntil("lost", 5*time.Second, func() bool { return p.losts == 1 })
	if Errno(p.lostErr) != unix.EPIPE {
		t.Fatalf("connection_lost(%v), want EPIPE", p.lostErr)
	}
	if !fdClosed(w) {
		t.Fatal("write end still open")
	}

	r2, w2 := newPipe(t)
	p2 := newRec(h, "writer2")
	h.pipeTransport(false, w2, p2)
	unix.Close(r2)
	h.runUntil("lost", 5*time.Second, func() bool { return p2.losts == 1 })
	if p2.lostErr != nil {
		t.Fatalf("empty buffer: connection_lost(%v), want nil", p2.lostErr)
	}

	// A write that meets the broken pipe before the loop noticed: EPIPE
	// (and no SIGPIPE kills the process).
	r3, w3 := newPipe(t)
	p3 := newRec(h, "writer3")
	tr3 := h.pipeTransport(false, w3, p3)
	unix.Close(r3)
	if err := tr3.Write([]byte("into the void")); err != nil {
		t.Fatalf("write returned %v (errors go to connection_lost)", err)
	}
	h.runUntil("lost", 5*time.Second, func() bool { return p3.losts == 1 })
	if Errno(p3.lostErr) != unix.EPIPE {
		t.Fatalf("connection_lost(%v), want EPIPE", p3.lostErr)
	}
}

func TestWritePipeWriteEOFAndAbort(t *testing.T) {
	h := newHarness(t)
	r, w := newPipe(t)
	defer unix.Close(r)
	p := newRec(h, "writer")
	tr := h.pipeTransport(false, w, p)
	tr.Write([]byte("last words"))
	tr.WriteEOF()
	if !tr.IsClosing() {
		t.Fatal("write_eof did not start closing")
	}
	h.runUntil("lost", time.Second, func() bool { return p.losts == 1 })
	buf := make([]byte, 64)
	n, _ := unix.Read(r, buf)
	if string(buf[:n]) != "last words" {
		t.Fatalf("read %q", buf[:n])
	}
	if n, _ := unix.Read(r, buf); n != 0 {
		t.Fatal("no EOF after write_eof")
	}

	r2, w2 := newPipe(t)
	defer unix.Close(r2)
	p2 := newRec(h, "writer2")
	tr2 := h.pipeTransport(false, w2, p2)
	tr2.Write(pattern(300000, 2))
	tr2.Abort()
	if tr2.WriteBufferSize() != 0 {
		t.Fatal("abort kept the buffer")
	}
	h.runUntil("lost", time.Second, func() bool { return p2.losts == 1 })
	if p2.lostErr != nil {
		t.Fatalf("abort: %v", p2.lostErr)
	}
}

func TestPipeRejectsFiles(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "file")
	os.WriteFile(path, []byte("data"), 0o600)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := h.l.ConnectReadPipe(fd, newRec(h, "x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("regular file (read): %v, want ErrInvalid", err)
	}
	if _, err := h.l.ConnectWritePipe(fd, newRec(h, "x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("regular file (write): %v, want ErrInvalid", err)
	}
	dfd, _ := unix.Open(t.TempDir(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	defer unix.Close(dfd)
	if _, err := h.l.ConnectReadPipe(dfd, newRec(h, "x")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("directory: %v, want ErrInvalid", err)
	}
	if _, err := h.l.ConnectReadPipe(-1, newRec(h, "x")); Errno(err) != unix.EBADF {
		t.Fatalf("fd -1: %v", err)
	}
	if _, err := h.l.ConnectReadPipe(1<<20, newRec(h, "x")); Errno(err) != unix.EBADF {
		t.Fatalf("closed fd: %v", err)
	}
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
		t.Fatal("a rejected fd was modified")
	}
	if h.l.Alive() {
		t.Fatal("rejected pipes left the loop alive")
	}
}

// openPty returns a pty master and its slave in raw mode.
func openPty(t *testing.T) (master, slave int) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlockpt: %v", e)
	}
	r1, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	s := int(r1)
	if e != 0 {
		n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
		if err != nil {
			t.Fatalf("ptsname: %v", err)
		}
		s, err = unix.Open("/dev/pts/"+itoa(n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("open slave: %v", err)
		}
	}
	tio, err := unix.IoctlGetTermios(s, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	// cfmakeraw
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	if err := unix.IoctlSetTermios(s, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestPty(t *testing.T) {
	h := newHarness(t)
	m, s := openPty(t)
	rp := newRec(h, "master")
	rt := h.pipeTransport(true, m, rp)
	wp := newRec(h, "slave")
	wt := h.pipeTransport(false, s, wp)
	wt.Write([]byte("over a pty\n"))
	h.runUntil("data", 5*time.Second, func() bool { return len(rp.data) >= 11 })
	if string(rp.data) != "over a pty\n" {
		t.Fatalf("master read %q", rp.data)
	}
	// Closing the slave: the master's read fails with EIO, which ends the
	// read transport with connection_lost(EIO) (asyncio), not logged.
	logged := 0
	h.l.SetExceptionHandler(func(*Loop, *ExceptionContext) { logged++ })
	wt.Close()
	h.runUntil("both lost", 5*time.Second, func() bool { return wp.losts == 1 && rp.losts == 1 })
	if wp.lostErr != nil || Errno(rp.lostErr) != unix.EIO || logged != 0 {
		t.Fatalf("slave lost %v, master lost %v, logged %d", wp.lostErr, rp.lostErr, logged)
	}
	_ = rt
}

func TestPipeFdInUse(t *testing.T) {
	h := newHarness(t)
	r, w := newPipe(t)
	defer unix.Close(w)
	defer unix.Close(r)
	h.l.AddReader(r, func() {}, nil)
	if _, err := h.l.ConnectReadPipe(r, newRec(h, "x")); Errno(err) != unix.EBUSY {
		t.Fatalf("watched fd: %v, want EBUSY", err)
	}
	h.l.RemoveReader(r)
}

func TestPipeFutureCancelledClosesFd(t *testing.T) {
	h := newHarness(t)
	r, w := newPipe(t)
	defer unix.Close(w)
	p := newRec(h, "x")
	f, err := h.l.ConnectReadPipe(r, p)
	if err != nil {
		t.Fatal(err)
	}
	f.Cancel("")
	h.runFor(20 * time.Millisecond)
	if p.made != 0 || p.losts != 0 || !fdClosed(r) || h.l.Alive() {
		t.Fatalf("made %d lost %d closed %v alive %v", p.made, p.losts, fdClosed(r), h.l.Alive())
	}
}
