package core

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// collect reads from a non-blocking fd while the loop runs, until want bytes
// came.
func collect(h *harness, fd, want int) []byte {
	var got []byte
	buf := make([]byte, 64*1024)
	h.runUntil("the data", 10*time.Second, func() bool {
		for {
			n, err := unix.Read(fd, buf)
			if n <= 0 || err != nil {
				break
			}
			got = append(got, buf[:n]...)
		}
		return len(got) >= want
	})
	return got
}

// Writelines: many buffers (more than one sendmsg takes), some empty, on a
// socket with small buffers so that part is queued, then more writes behind
// them: everything arrives once, in order.
func TestWritelinesOrderAndRemainder(t *testing.T) {
	r := newEchoRig(t, &allocEcho{}, 1)
	h := r.h
	unix.SetsockoptInt(r.tr.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	var bufs [][]byte
	var want []byte
	for i := 0; i < 3*maxIov; i++ {
		b := bytes.Repeat([]byte{byte(i)}, (i%7)*1000)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	if err := r.tr.Writelines(bufs); err != nil {
		t.Fatal(err)
	}
	if r.tr.WriteBufferSize() == 0 {
		t.Fatal("the socket took everything: the test does not cover the remainder")
	}
	tail := []byte("tail")
	r.tr.Write(tail)
	if err := r.tr.Writelines([][]byte{nil, []byte("x"), {}, []byte("yz")}); err != nil {
		t.Fatal(err)
	}
	want = append(want, "tailxyz"...)
	for i := range bufs { // the transport copied what it kept
		clear(bufs[i])
	}
	got := collect(h, r.client, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("Writelines: %s", firstDiff(got, want))
	}
	if n := r.tr.WriteBufferSize(); n != 0 {
		t.Fatalf("write buffer holds %d bytes after the flush", n)
	}
}

// Writelines with nothing buffered sends everything at once when the socket
// has room: nothing is queued.
func TestWritelinesAllSent(t *testing.T) {
	r := newEchoRig(t, &allocEcho{}, 1)
	if err := r.tr.Writelines([][]byte{[]byte("ab"), nil, []byte("cd")}); err != nil {
		t.Fatal(err)
	}
	if n := r.tr.WriteBufferSize(); n != 0 {
		t.Fatalf("%d bytes queued", n)
	}
	if got := collect(r.h, r.client, 4); string(got) != "abcd" {
		t.Fatalf("got %q", got)
	}
}

// Writelines after WriteEOF fails as Write does.
func TestWritelinesAfterWriteEOF(t *testing.T) {
	r := newEchoRig(t, &allocEcho{}, 1)
	r.tr.WriteEOF()
	if err := r.tr.Writelines([][]byte{[]byte("x")}); Errno(err) != unix.EPIPE {
		t.Fatalf("Writelines after WriteEOF: %v, want EPIPE", err)
	}
}

// SendGate: open (0) only while a direct send equals Write; every change
// that makes it differ closes it, and WriteAfterSend buffers the rest in
// order.
func TestSendGate(t *testing.T) {
	r := newEchoRig(t, &allocEcho{}, 1)
	tr := r.tr
	fd, gate, ok := tr.SendGate()
	if !ok || fd != tr.Fd() || *gate != 0 {
		t.Fatalf("SendGate on an idle socket: fd %d ok %v gate %v", fd, ok, gate)
	}
	// A short send by the host: the rest is buffered and closes the gate.
	data := bytes.Repeat([]byte("abcdefgh"), 1024)
	n, _ := unix.SendmsgN(fd, data[:100], nil, nil, unix.MSG_NOSIGNAL)
	if err := tr.WriteAfterSend(data, n, 0); err != nil {
		t.Fatal(err)
	}
	if *gate == 0 || tr.WriteBufferSize() != len(data)-100 {
		t.Fatalf("after a short send: gate %d, buffered %d", *gate, tr.WriteBufferSize())
	}
	if _, _, ok := tr.SendGate(); ok {
		t.Fatal("SendGate opened with bytes buffered")
	}
	tr.Write([]byte("tail"))
	want := append(append([]byte{}, data...), "tail"...)
	if got := collect(r.h, r.client, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("WriteAfterSend: %s", firstDiff(got, want))
	}
	// Flushed: open again; write_eof closes it.
	if _, gate, ok = tr.SendGate(); !ok {
		t.Fatal("SendGate closed once the buffer drained")
	}
	tr.WriteEOF()
	if *gate == 0 {
		t.Fatal("WriteEOF left the gate open")
	}
	if _, _, ok := tr.SendGate(); ok {
		t.Fatal("SendGate opened after WriteEOF")
	}
	if err := tr.WriteAfterSend([]byte("x"), 0, unix.EPIPE); Errno(err) != unix.EPIPE {
		t.Fatalf("WriteAfterSend after WriteEOF: %v", err)
	}
}

// A send error handed to WriteAfterSend ends the transport with it.
func TestSendGateError(t *testing.T) {
	lost := make(chan error, 1)
	p := &lostProto{lost: lost}
	r := newEchoRig(t, p, 1)
	_, gate, ok := r.tr.SendGate()
	if !ok {
		t.Fatal("gate closed")
	}
	if err := r.tr.WriteAfterSend([]byte("x"), 0, unix.ECONNRESET); err != nil {
		t.Fatal(err)
	}
	if *gate == 0 {
		t.Fatal("gate open after an error")
	}
	r.h.runUntil("connection_lost", 5*time.Second, func() bool { return len(lost) > 0 })
	if err := <-lost; Errno(err) != unix.ECONNRESET {
		t.Fatalf("connection_lost(%v), want ECONNRESET", err)
	}
}

type lostProto struct {
	allocEcho
	lost chan error
}

func (p *lostProto) ConnectionLost(t *Transport, err error) { p.lost <- err }
