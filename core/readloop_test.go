package core

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A readiness event reads on while each read fills the buffer (at most
// readsPerEvent reads, as libuv), and stops as soon as the protocol pauses.
func TestReadsPerEvent(t *testing.T) {
	for _, pause := range []bool{false, true} {
		h := newHarness(t)
		var srv *recProto
		calls := map[uint64]int{} // iteration -> data_received calls
		server, port := h.serve(func() Protocol {
			srv = newRec(h, "server")
			srv.onData = func(tr *Transport, b []byte) {
				calls[h.l.iteration]++
				if pause && len(calls) == 1 && calls[h.l.iteration] == 1 {
					tr.PauseReading() // the first call only
				}
			}
			return srv
		})
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		h.runUntil("accept", 5*time.Second, func() bool { return srv != nil && srv.made == 1 })
		msg := pattern(readsPerEvent*readSize+readSize, 7)
		for off := 0; off < len(msg); {
			n, err := unix.Write(fd, msg[off:])
			if err != nil {
				t.Fatal(err)
			}
			off += n
		}
		time.Sleep(50 * time.Millisecond) // all of it in the server's receive buffer
		if err := h.l.RunOnceTimeout(1); err != nil {
			t.Fatal(err)
		}
		max := 0
		for _, n := range calls {
			if n > max {
				max = n
			}
		}
		// How much the kernel has let in depends on the receive window,
		// so: more than one read (at least 128 KiB was there), at most
		// readsPerEvent; one only when the protocol paused.
		if pause && max != 1 || !pause && (max < 2 || max > readsPerEvent) {
			t.Errorf("pause=%v: %d data_received calls in one iteration (%v)", pause, max, calls)
		}
		if pause {
			srv.tr.ResumeReading()
		}
		h.runUntil("all data", 5*time.Second, func() bool { return len(srv.data) == len(msg) })
		if d := firstDiff(srv.data, msg); d != "equal" {
			t.Errorf("pause=%v: %s", pause, d)
		}
		unix.Close(fd)
		h.runUntil("lost", 5*time.Second, func() bool { return srv.losts == 1 })
		server.Close()
		h.runFor(20 * time.Millisecond)
	}
}
