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
