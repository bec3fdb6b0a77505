package core

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func tempFile(t *testing.T, data []byte) int {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// drain reads fd on the loop (sock_recv_into) until n bytes or EOF.
func (h *harness) drain(fd int, n int, timeout time.Duration) []byte {
	h.t.Helper()
	var got []byte
	buf := make([]byte, 1<<16)
	var rf *Future
	eof := false
	h.runUntil("data", timeout, func() bool {
		if rf == nil {
			rf, _ = h.l.SockRecvInto(fd, buf)
		} else if rf.Done() {
			v, err := rf.Result()
			if err != nil {
				h.t.Fatalf("recv: %v", err)
			}
			got = append(got, buf[:v.(int)]...)
			eof = v.(int) == 0
			rf = nil
		}
		return len(got) >= n || eof
	})
	if rf != nil {
		rf.Cancel("")
	}
	return got
}

func TestSockSendfileNative(t *testing.T) {
	h := newHarness(t)
	data := pattern(3<<20+17, 5)
	file := tempFile(t, data)
	a, b := socketPair(t, unix.SOCK_STREAM)
	f, err := h.l.SockSendfile(a, file, 1000, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	got := h.drain(b, len(data)-1000, 20*time.Second)
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		t.Fatalf("sock_sendfile: %v", err)
	}
	if v.(int64) != int64(len(data)-1000) || !bytes.Equal(got, data[1000:]) {
		t.Fatalf("sent %v: %s", v, firstDiff(got, data[1000:]))
	}
	if off, _ := unix.Seek(file, 0, 1); off != int64(len(data)) {
		t.Errorf("file offset %d after sendfile, want %d", off, len(data))
	}
	// offset + count.
	f, _ = h.l.SockSendfile(a, file, 5, 100000, false)
	got = h.drain(b, 100000, 5*time.Second)
	if v, err := h.await(f, time.Second); err != nil || v.(int64) != 100000 || !bytes.Equal(got, data[5:100005]) {
		t.Fatalf("count: %v %v", v, err)
	}
	// Bad arguments.
	if _, err := h.l.SockSendfile(a, file, -1, 0, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative offset: %v", err)
	}
	if _, err := h.l.SockSendfile(a, 999, 0, 0, true); Errno(err) != unix.EBADF {
		t.Errorf("bad file: %v", err)
	}
}

func TestSockSendfileFallback(t *testing.T) {
	h := newHarness(t)
	data := pattern(1<<20+3, 6)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	go func() {
		unix.Write(p[1], data) // blocks until read
		unix.Close(p[1])
	}()
	a, b := socketPair(t, unix.SOCK_STREAM)
	// A pipe cannot be sendfile(2)'s source: without fallback it fails.
	f, _ := h.l.SockSendfile(a, p[0], 0, 0, false)
	if _, err := h.await(f, time.Second); Errno(err) != unix.ENOSYS {
		t.Fatalf("no fallback: %v, want ENOSYS", err)
	}
	f, _ = h.l.SockSendfile(a, p[0], 0, 0, true)
	got := h.drain(b, len(data), 20*time.Second)
	v, err := h.await(f, 5*time.Second)
	if err != nil || v.(int64) != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("fallback: %v %v %s", v, err, firstDiff(got, data))
	}
	h.runFor(5 * time.Millisecond)
	if h.l.Alive() {
		t.Fatal("loop alive after the fallback finished")
	}
}

func TestTransportSendfile(t *testing.T) {
	h := newHarness(t)
	data := pattern(6<<20, 7)
	file := tempFile(t, data)
	var sp *recProto
	s, port := h.serve(func() Protocol { sp = newRec(h, "server"); return sp })
	defer s.Close()
	tr := h.dial(port, BaseProtocol{})
	// A big write first: sendfile starts after it is flushed.
	head := pattern(4<<20, 8)
	tr.Write(head)
	if tr.WriteBufferSize() == 0 {
		t.Log("the whole head went out at once")
	}
	f, err := tr.Sendfile(file, 0, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Sendfile(file, 0, 0, true); !errors.Is(err, ErrBusy) {
		t.Errorf("a second sendfile: %v, want ErrBusy", err)
	}
	if err := tr.Write([]byte("x")); !errors.Is(err, ErrBusy) {
		t.Errorf("write during sendfile: %v, want ErrBusy", err)
	}
	v, err := h.await(f, 20*time.Second)
	if err != nil || v.(int64) != int64(len(data)) {
		t.Fatalf("sendfile: %v %v", v, err)
	}
	if err := tr.Write([]byte("trailer")); err != nil {
		t.Fatalf("write after sendfile: %v", err)
	}
	// Close right after another sendfile: it waits for it.
	f2, _ := tr.Sendfile(file, 10, 1000, true)
	tr.Close()
	want := append(append(append(append([]byte(nil), head...), data...), "trailer"...), data[10:1010]...)
	h.runUntil("all data", 20*time.Second, func() bool { return sp != nil && sp.losts == 1 })
	if !bytes.Equal(sp.data, want) {
		t.Fatalf("server got %s", firstDiff(sp.data, want))
	}
	if v, err := f2.Result(); err != nil || v.(int64) != 1000 {
		t.Fatalf("sendfile before close: %v %v", v, err)
	}
}

func TestTransportSendfileFallbackAndAbort(t *testing.T) {
	h := newHarness(t)
	data := pattern(2<<20, 9)
	var p [2]int
	unix.Pipe2(p[:], unix.O_CLOEXEC)
	defer unix.Close(p[0])
	go func() { unix.Write(p[1], data); unix.Close(p[1]) }()
	var sp *recProto
	s, port := h.serve(func() Protocol { sp = newRec(h, "server"); return sp })
	defer s.Close()
	c := newRec(h, "client")
	tr := h.dial(port, c)
	f, _ := tr.Sendfile(p[0], 0, 0, true)
	if v, err := h.await(f, 20*time.Second); err != nil || v.(int64) != int64(len(data)) {
		t.Fatalf("fallback: %v %v", v, err)
	}
	if !tr.IsReading() {
		t.Fatal("reading not resumed after sendfile")
	}
	h.runUntil("data", 10*time.Second, func() bool { return len(sp.data) == len(data) })
	if !bytes.Equal(sp.data, data) {
		t.Fatal(firstDiff(sp.data, data))
	}
	// Abort during a sendfile fails it.
	file := tempFile(t, pattern(64<<20, 1))
	sp.tr.PauseReading() // the server stops reading: the sendfile waits
	f, _ = tr.Sendfile(file, 0, 0, false)
	h.runFor(50 * time.Millisecond)
	if f.Done() {
		t.Fatal("64 MiB went through a paused reader")
	}
	tr.Abort()
	if _, err := h.await(f, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("sendfile after abort: %v", err)
	}
	h.runUntil("lost", time.Second, func() bool { return c.losts == 1 })
	sp.tr.Close()
	s.Close()
	h.runUntil("loop closable", 2*time.Second, func() bool { return h.l.Close() == nil })
}

// On a TLS transport the file goes through TLS (the fallback), in order with
// writes, and a close right after it waits for it.
func TestTransportSendfileTLS(t *testing.T) {
	h := newHarness(t)
	data := pattern(3<<20+11, 10)
	file := tempFile(t, data)
	var srv *tlsRecorder
	s, port := h.tlsServe(srvTLSOpts(getPKI().server), func() Protocol {
		srv = &tlsRecorder{h: h}
		return srv
	})
	cli := &tlsRecorder{h: h}
	f, err := h.l.CreateConnection("127.0.0.1", port, cli, &ConnectOptions{TLS: clientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.await(f, 10*time.Second)
	if err != nil {
		t.Fatalf("TLS connect: %v", err)
	}
	tr := v.(*Transport)
	// Without fallback: not available.
	sf, err := tr.Sendfile(file, 0, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.await(sf, time.Second); Errno(err) != unix.ENOSYS {
		t.Fatalf("TLS sendfile without fallback: %v, want ENOSYS", err)
	}
	tr.Write([]byte("head"))
	sf, err = tr.Sendfile(file, 0, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Write([]byte("x")); !errors.Is(err, ErrBusy) {
		t.Errorf("write during sendfile: %v", err)
	}
	v, err = h.await(sf, 20*time.Second)
	if err != nil || v.(int64) != int64(len(data)) {
		t.Fatalf("TLS sendfile: %v %v", v, err)
	}
	tr.Write([]byte("tail"))
	sf2, _ := tr.Sendfile(file, 1, 100000, true)
	tr.Close()
	h.runUntil("closed", 20*time.Second, func() bool { return srv != nil && srv.lost == 1 && cli.lost == 1 })
	want := append(append(append([]byte("head"), data...), "tail"...), data[1:100001]...)
	if !bytes.Equal(srv.data.Bytes(), want) {
		t.Fatalf("server got %s", firstDiff(srv.data.Bytes(), want))
	}
	if v, err := sf2.Result(); err != nil || v.(int64) != 100000 {
		t.Fatalf("sendfile before close: %v %v", v, err)
	}
	s.Close()
}
