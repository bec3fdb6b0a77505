package core

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type rxDatagram struct {
	data []byte
	host string
	port int
}

// dgRec records every datagram protocol callback and checks the order:
// made once, datagrams/errors between made and lost, lost once.
type dgRec struct {
	h       *harness
	name    string
	tr      *DatagramTransport
	made    int
	losts   int
	lostErr error
	rx      []rxDatagram
	errs    []error
	pauses  int
	resumes int
	echo    bool
}

func (p *dgRec) ConnectionMade(t *DatagramTransport) {
	p.h.onLoop(p.name + ".ConnectionMade")
	if p.made > 0 || p.losts > 0 {
		p.h.t.Errorf("%s: ConnectionMade after made=%d lost=%d", p.name, p.made, p.losts)
	}
	p.made++
	p.tr = t
}

func (p *dgRec) DatagramReceived(t *DatagramTransport, data []byte, addr unix.Sockaddr) {
	p.h.onLoop(p.name + ".DatagramReceived")
	if p.made != 1 || p.losts > 0 || t != p.tr {
		p.h.t.Errorf("%s: DatagramReceived with made=%d lost=%d", p.name, p.made, p.losts)
	}
	host, port := SockaddrString(addr)
	p.rx = append(p.rx, rxDatagram{append([]byte(nil), data...), host, port})
	if p.echo {
		if err := t.SendTo(data, addr); err != nil {
			p.h.t.Errorf("%s: echo SendTo: %v", p.name, err)
		}
	}
}

func (p *dgRec) ErrorReceived(t *DatagramTransport, err error) {
	p.h.onLoop(p.name + ".ErrorReceived")
	if p.made != 1 || p.losts > 0 {
		p.h.t.Errorf("%s: ErrorReceived with made=%d lost=%d", p.name, p.made, p.losts)
	}
	p.errs = append(p.errs, err)
}

func (p *dgRec) ConnectionLost(t *DatagramTransport, err error) {
	p.h.onLoop(p.name + ".ConnectionLost")
	if p.made != 1 || p.losts > 0 {
		p.h.t.Errorf("%s: ConnectionLost with made=%d lost=%d", p.name, p.made, p.losts)
	}
	p.losts++
	p.lostErr = err
}

func (p *dgRec) PauseWriting(t *DatagramTransport) {
	if p.pauses != p.resumes {
		p.h.t.Errorf("%s: PauseWriting twice", p.name)
	}
	p.pauses++
}

func (p *dgRec) ResumeWriting(t *DatagramTransport) {
	if p.resumes+1 != p.pauses {
		p.h.t.Errorf("%s: ResumeWriting without PauseWriting", p.name)
	}
	p.resumes++
}

func (h *harness) endpoint(p *dgRec, o *DatagramOptions) *DatagramTransport {
	h.t.Helper()
	f, err := h.l.CreateDatagramEndpoint(p, o)
	if err != nil {
		h.t.Fatalf("CreateDatagramEndpoint: %v", err)
	}
	v, err := h.await(f, 5*time.Second)
	if err != nil {
		h.t.Fatalf("CreateDatagramEndpoint future: %v", err)
	}
	tr := v.(*DatagramTransport)
	if p.made != 1 || p.tr != tr {
		h.t.Fatalf("connection_made did not run before the future resolved")
	}
	return tr
}

func (h *harness) closeDatagram(tr *DatagramTransport, p *dgRec) {
	h.t.Helper()
	tr.Close()
	h.runUntil("connection_lost", 5*time.Second, func() bool { return p.losts == 1 })
	if p.lostErr != nil {
		h.t.Fatalf("%s lost with %v", p.name, p.lostErr)
	}
}

func udpEcho(t *testing.T, host string) {
	h := newHarness(t)
	srv := &dgRec{h: h, name: "server", echo: true}
	st := h.endpoint(srv, &DatagramOptions{Local: &DatagramAddr{host, 0}})
	ssa, err := st.Sockname()
	if err != nil {
		t.Fatal(err)
	}
	shost, sport := SockaddrString(ssa)
	if shost != host || sport == 0 {
		t.Fatalf("server bound to %s:%d", shost, sport)
	}
	if _, err := st.Peername(); Errno(err) != unix.ENOTCONN {
		t.Fatalf("unconnected peername: %v, want ENOTCONN", err)
	}
	cli := &dgRec{h: h, name: "client"}
	ct := h.endpoint(cli, &DatagramOptions{Remote: &DatagramAddr{host, sport}})
	psa, err := ct.Peername()
	if err != nil {
		t.Fatalf("connected peername: %v", err)
	}
	if ph, pp := SockaddrString(psa); ph != host || pp != sport {
		t.Fatalf("client peername %s:%d", ph, pp)
	}
	csa, _ := ct.Sockname()
	chost, cport := SockaddrString(csa)
	msgs := [][]byte{[]byte("one"), pattern(1400, 3), {}, pattern(60000, 4)}
	for _, m := range msgs {
		if err := ct.SendTo(m, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The same address given explicitly is fine; another one is not.
	if err := ct.SendTo([]byte("explicit"), psa); err != nil {
		t.Fatalf("SendTo with the remote address: %v", err)
	}
	if err := ct.SendTo([]byte("x"), &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 9}); !errors.Is(err, ErrInvalid) && host == "127.0.0.1" {
		t.Fatalf("SendTo another address on a connected endpoint: %v, want ErrInvalid", err)
	}
	h.runUntil("echoes", 5*time.Second, func() bool { return len(cli.rx) == len(msgs)+1 })
	for i, m := range append(msgs, []byte("explicit")) {
		if !bytes.Equal(srv.rx[i].data, m) || !bytes.Equal(cli.rx[i].data, m) {
			t.Fatalf("datagram %d differs", i)
		}
		if srv.rx[i].host != chost || srv.rx[i].port != cport {
			t.Fatalf("server saw sender %s:%d, want %s:%d", srv.rx[i].host, srv.rx[i].port, chost, cport)
		}
		if cli.rx[i].host != host || cli.rx[i].port != sport {
			t.Fatalf("client saw sender %s:%d, want %s:%d", cli.rx[i].host, cli.rx[i].port, host, sport)
		}
	}
	if len(srv.errs)+len(cli.errs) != 0 {
		t.Fatalf("errors: %v %v", srv.errs, cli.errs)
	}
	h.closeDatagram(ct, cli)
	h.closeDatagram(st, srv)
	if err := ct.SendTo([]byte("late"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendTo after close: %v, want ErrClosed", err)
	}
	if ct.Fd() != -1 {
		t.Fatalf("fd not released")
	}
}

func TestUDPEchoV4(t *testing.T) { udpEcho(t, "127.0.0.1") }

func TestUDPEchoV6(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}})
		unix.Close(fd)
	}
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	udpEcho(t, "::1")
}

func TestUDPUnconnectedSendTo(t *testing.T) {
	h := newHarness(t)
	srv := &dgRec{h: h, name: "server", echo: true}
	st := h.endpoint(srv, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", 0}})
	ssa, _ := st.Sockname()
	// An unbound endpoint (family only) sends to explicit addresses.
	cli := &dgRec{h: h, name: "client"}
	ct := h.endpoint(cli, &DatagramOptions{Family: unix.AF_INET})
	if err := ct.SendTo([]byte("x"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SendTo(nil) without a remote address: %v, want ErrInvalid", err)
	}
	dst, err := ct.ParseAddr("127.0.0.1", ssa.(*unix.SockaddrInet4).Port)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ct.ParseAddr("localhost", 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ParseAddr of a name: %v", err)
	}
	ct.SendTo([]byte("hello"), dst)
	h.runUntil("echo", 5*time.Second, func() bool { return len(cli.rx) == 1 })
	if string(cli.rx[0].data) != "hello" || cli.rx[0].host != "127.0.0.1" {
		t.Fatalf("got %+v", cli.rx[0])
	}
	h.closeDatagram(ct, cli)
	h.closeDatagram(st, srv)
}

// A connected UDP socket learns about an unreachable port through ICMP:
// error_received(ECONNREFUSED), and the transport stays open (asyncio).
func TestUDPConnectedRefused(t *testing.T) {
	h := newHarness(t)
	fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	sa, _ := unix.Getsockname(fd)
	unix.Close(fd) // the port is now closed
	port := sa.(*unix.SockaddrInet4).Port
	p := &dgRec{h: h, name: "client"}
	tr := h.endpoint(p, &DatagramOptions{Remote: &DatagramAddr{"127.0.0.1", port}})
	deadline := time.Now().Add(5 * time.Second)
	for len(p.errs) == 0 && time.Now().Before(deadline) {
		tr.SendTo([]byte("anyone?"), nil)
		h.runFor(20 * time.Millisecond)
	}
	if len(p.errs) == 0 {
		t.Fatal("no error_received")
	}
	if Errno(p.errs[0]) != unix.ECONNREFUSED {
		t.Fatalf("error_received(%v), want ECONNREFUSED", p.errs[0])
	}
	if tr.IsClosing() || p.losts != 0 {
		t.Fatalf("the transport closed on ECONNREFUSED")
	}
	h.closeDatagram(tr, p)
}

func TestUDPBroadcastAndReusePort(t *testing.T) {
	h := newHarness(t)
	p1 := &dgRec{h: h, name: "a"}
	t1 := h.endpoint(p1, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", 0}, ReusePort: true, AllowBroadcast: true})
	if v, _ := unix.GetsockoptInt(t1.Fd(), unix.SOL_SOCKET, unix.SO_BROADCAST); v != 1 {
		t.Fatalf("SO_BROADCAST = %d", v)
	}
	if v, _ := unix.GetsockoptInt(t1.Fd(), unix.SOL_SOCKET, unix.SO_REUSEPORT); v != 1 {
		t.Fatalf("SO_REUSEPORT = %d", v)
	}
	sa, _ := t1.Sockname()
	port := sa.(*unix.SockaddrInet4).Port
	// A second socket on the same port thanks to SO_REUSEPORT.
	p2 := &dgRec{h: h, name: "b"}
	t2 := h.endpoint(p2, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", port}, ReusePort: true})
	if v, _ := unix.GetsockoptInt(t2.Fd(), unix.SOL_SOCKET, unix.SO_BROADCAST); v != 0 {
		t.Fatalf("SO_BROADCAST set without AllowBroadcast")
	}
	// Without it: EADDRINUSE (through the future).
	f, err := h.l.CreateDatagramEndpoint(&dgRec{h: h, name: "c"}, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", port}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.await(f, time.Second); Errno(err) != unix.EADDRINUSE {
		t.Fatalf("bind to a used port: %v, want EADDRINUSE", err)
	}
	// With AllowBroadcast, a remote address is the default destination but
	// the socket is not connected (asyncio).
	p3 := &dgRec{h: h, name: "d"}
	t3 := h.endpoint(p3, &DatagramOptions{Remote: &DatagramAddr{"127.0.0.1", port}, AllowBroadcast: true})
	if _, err := t3.Peername(); Errno(err) != unix.ENOTCONN {
		t.Fatalf("broadcast endpoint peername: %v, want ENOTCONN", err)
	}
	if err := t3.SendTo([]byte("via default"), nil); err != nil {
		t.Fatal(err)
	}
	h.runUntil("datagram", 5*time.Second, func() bool { return len(p1.rx)+len(p2.rx) == 1 })
	h.closeDatagram(t1, p1)
	h.closeDatagram(t2, p2)
	h.closeDatagram(t3, p3)
}

func TestDatagramArgumentErrors(t *testing.T) {
	h := newHarness(t)
	p := &dgRec{h: h, name: "x"}
	if _, err := h.l.CreateDatagramEndpoint(p, &DatagramOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no address and no family: %v", err)
	}
	if _, err := h.l.CreateDatagramEndpoint(p, &DatagramOptions{Family: 12345}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad family: %v", err)
	}
	if _, err := h.l.CreateDatagramEndpoint(p, &DatagramOptions{Remote: &DatagramAddr{"127.0.0.1", 70000}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad port: %v", err)
	}
	// Local IPv4 and remote IPv6: no common family.
	f, err := h.l.CreateDatagramEndpoint(p, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", 0}, Remote: &DatagramAddr{"::1", 9}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.await(f, time.Second); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mismatched families: %v, want ErrInvalid", err)
	}
	if h.l.Alive() {
		t.Fatalf("failed endpoints left the loop alive")
	}
}

func TestUnixDatagramEchoAndBuffering(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	spath := filepath.Join(dir, "srv.sock")
	cpath := filepath.Join(dir, "cli.sock")
	// A stale socket file at the server path is replaced.
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	unix.Bind(fd, &unix.SockaddrUnix{Name: spath})
	unix.Close(fd)
	srv := &dgRec{h: h, name: "server", echo: true}
	st := h.endpoint(srv, &DatagramOptions{Family: unix.AF_UNIX, Local: &DatagramAddr{Host: spath}})
	cli := &dgRec{h: h, name: "client"}
	ct := h.endpoint(cli, &DatagramOptions{Family: unix.AF_UNIX, Local: &DatagramAddr{Host: cpath}, Remote: &DatagramAddr{Host: spath}})
	ct.SendTo([]byte("over unix"), nil)
	h.runUntil("echo", 5*time.Second, func() bool { return len(cli.rx) == 1 })
	if string(cli.rx[0].data) != "over unix" || cli.rx[0].host != spath || srv.rx[0].host != cpath {
		t.Fatalf("client got %+v, server saw %+v", cli.rx[0], srv.rx[0])
	}
	h.closeDatagram(st, srv)

	// Buffering: a receiver that does not read fills up; the sender
	// buffers, pauses the protocol, and delivers everything in order once
	// the receiver drains.
	rfd, snd, sn := slowUnixReceiver(h, dir)
	sn.SetWriteBufferLimits(8192, 1024)
	const n = 2000
	for i := 0; i < n; i++ {
		if err := sn.SendTo([]byte(fmt.Sprintf("%05d", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if sn.WriteBufferSize() == 0 || snd.pauses != 1 {
		t.Fatalf("nothing was buffered (size %d, pauses %d)", sn.WriteBufferSize(), snd.pauses)
	}
	sn.Close() // flushes first
	if !sn.IsClosing() {
		t.Fatal("not closing")
	}
	buf := make([]byte, 64)
	unix.SetNonblock(rfd, true)
	next := 0
	deadline := time.Now().Add(10 * time.Second)
	for next < n && time.Now().Before(deadline) {
		h.l.RunOnceTimeout(0.001)
		for {
			m, _, err := unix.Recvfrom(rfd, buf, 0)
			if err != nil {
				break
			}
			if string(buf[:m]) != fmt.Sprintf("%05d", next) {
				t.Fatalf("datagram %d: got %q", next, buf[:m])
			}
			next++
		}
	}
	if next != n {
		t.Fatalf("received %d of %d datagrams", next, n)
	}
	h.runUntil("lost after flush", 5*time.Second, func() bool { return snd.losts == 1 })
	if snd.resumes != 1 || snd.lostErr != nil {
		t.Fatalf("resumes %d lost %v", snd.resumes, snd.lostErr)
	}
	h.closeDatagram(ct, cli)
	if _, err := os.Stat(spath); err != nil {
		t.Fatalf("the server's socket file: %v", err)
	}
}

// SetWriteOverhead: each buffered datagram counts its bytes plus the
// overhead, in WriteBufferSize and against the water marks; a change counts
// the datagrams buffered then again; an empty datagram counts too.
func TestDatagramWriteOverhead(t *testing.T) {
	h := newHarness(t)
	_, snd, sn := slowUnixReceiver(h, t.TempDir())
	if err := sn.SetWriteOverhead(-1); err != ErrInvalid {
		t.Fatalf("SetWriteOverhead(-1): %v", err)
	}
	if err := sn.SetWriteOverhead(8); err != nil {
		t.Fatal(err)
	}
	sn.SetWriteBufferLimits(1<<20, 0)
	// Fill the receiver until the sender buffers.
	for i := 0; i < 100000 && sn.WriteBufferSize() == 0; i++ {
		sn.SendTo(make([]byte, 100), nil)
	}
	if sn.WriteBufferSize() != 108 {
		t.Fatalf("one buffered 100-byte datagram counts %d, want 108", sn.WriteBufferSize())
	}
	sn.SendTo(nil, nil) // an empty datagram: its header
	sn.SendTo(make([]byte, 50), nil)
	if got := sn.WriteBufferSize(); got != 108+8+58 {
		t.Fatalf("three buffered datagrams count %d, want %d", got, 108+8+58)
	}
	// The water mark compares that figure: high 170 < 174 pauses.
	sn.SetWriteBufferLimits(170, 0)
	if snd.pauses != 1 {
		t.Fatalf("pauses %d above the high water mark, want 1", snd.pauses)
	}
	if err := sn.SetWriteOverhead(0); err != nil {
		t.Fatal(err)
	}
	if got := sn.WriteBufferSize(); got != 150 {
		t.Fatalf("without the overhead the three count %d, want 150", got)
	}
	sn.Abort()
	if sn.WriteBufferSize() != 0 {
		t.Fatalf("after Abort: %d", sn.WriteBufferSize())
	}
	h.runUntil("connection_lost", 5*time.Second, func() bool { return snd.losts == 1 })
}

func TestUnixDatagramAbortDropsBuffer(t *testing.T) {
	h := newHarness(t)
	name := abstractName()
	rfd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(rfd)
	if err := unix.Bind(rfd, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	p := &dgRec{h: h, name: "sender"}
	tr := h.endpoint(p, &DatagramOptions{Family: unix.AF_UNIX, Remote: &DatagramAddr{Host: name}})
	for i := 0; i < 2000 && tr.WriteBufferSize() == 0; i++ {
		tr.SendTo([]byte("fill"), nil)
	}
	if tr.WriteBufferSize() == 0 {
		t.Fatal("could not fill the receiver")
	}
	tr.SendTo([]byte("more"), nil)
	tr.Abort()
	if tr.WriteBufferSize() != 0 {
		t.Fatal("abort kept the buffer")
	}
	h.runUntil("lost", time.Second, func() bool { return p.losts == 1 })
	if p.lostErr != nil {
		t.Fatalf("abort: lost with %v", p.lostErr)
	}
}

// replyProto replies to each datagram through ReplyGate, as capi does for
// a C host, and records what the gate said.
type replyProto struct {
	dgRec
	direct, refused int
	check           func(t *DatagramTransport, gate *uint32)
}

func (p *replyProto) DatagramReceived(t *DatagramTransport, data []byte, addr unix.Sockaddr) {
	p.dgRec.DatagramReceived(t, data, addr)
	fd, sa, salen, gate, ok := t.ReplyGate()
	if !ok {
		p.refused++
		if err := t.SendTo(data, addr); err != nil {
			p.h.t.Errorf("SendTo: %v", err)
		}
		return
	}
	if *gate != 0 || fd != t.Fd() || salen == 0 {
		p.h.t.Errorf("ReplyGate: fd %d salen %d gate %d", fd, salen, *gate)
	}
	if errno := rawSendto(fd, data, sa, salen); errno != 0 {
		p.h.t.Errorf("direct sendto: %v", errno)
	}
	p.direct++
	if p.check != nil {
		p.check(t, gate)
	}
}

// ReplyGate: open while a reply sent by the host equals SendTo; closed by a
// buffered datagram, Close and Abort, and never open on a connected
// endpoint.
func TestReplyGate(t *testing.T) {
	h := newHarness(t)
	srv := &replyProto{dgRec: dgRec{h: h, name: "server"}}
	st := h.endpoint(&srv.dgRec, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", 0}})
	st.SetProtocol(srv)
	ssa, _ := st.Sockname()
	_, sport := SockaddrString(ssa)
	cli := &dgRec{h: h, name: "client"}
	ct := h.endpoint(cli, &DatagramOptions{Remote: &DatagramAddr{"127.0.0.1", sport}})
	if _, _, _, _, ok := ct.ReplyGate(); ok {
		t.Fatal("ReplyGate open on a connected endpoint")
	}
	for _, m := range []string{"one", "two"} {
		if err := ct.SendTo([]byte(m), nil); err != nil {
			t.Fatal(err)
		}
	}
	h.runUntil("direct replies", 5*time.Second, func() bool { return len(cli.rx) == 2 })
	if srv.direct != 2 || srv.refused != 0 || string(cli.rx[0].data) != "one" || string(cli.rx[1].data) != "two" {
		t.Fatalf("direct %d refused %d, client got %v", srv.direct, srv.refused, cli.rx)
	}
	// A datagram the transport buffers closes the gate, and the next
	// callback finds it closed (as when the socket would block).
	srv.check = func(tr *DatagramTransport, gate *uint32) {
		tr.wq = append(tr.wq, dgram{[]byte("held"), tr.lastSa}) // as if it had met EAGAIN
		if err := tr.SendTo([]byte("behind"), tr.lastSa); err != nil {
			t.Errorf("SendTo: %v", err)
		}
		if *gate == 0 {
			t.Errorf("a buffered datagram left the gate open")
		}
		if _, _, _, _, ok := tr.ReplyGate(); ok {
			t.Errorf("ReplyGate open with datagrams buffered")
		}
		tr.wq, tr.wqHead, tr.wsize = nil, 0, 0
		srv.check = func(tr *DatagramTransport, gate *uint32) {
			tr.Close()
			if *gate == 0 {
				t.Errorf("Close left the gate open")
			}
		}
	}
	ct.SendTo([]byte("three"), nil)
	h.runUntil("third", 5*time.Second, func() bool { return srv.direct == 3 })
	ct.SendTo([]byte("four"), nil)
	h.runUntil("fourth", 5*time.Second, func() bool { return srv.direct == 4 })
	h.runUntil("server lost", 5*time.Second, func() bool { return srv.losts == 1 })
	if _, _, _, _, ok := st.ReplyGate(); ok {
		t.Fatal("ReplyGate open after Close")
	}
	h.closeDatagram(ct, cli)
}

// Abort closes the gate too.
func TestReplyGateAbort(t *testing.T) {
	h := newHarness(t)
	srv := &replyProto{dgRec: dgRec{h: h, name: "server"}}
	st := h.endpoint(&srv.dgRec, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", 0}})
	st.SetProtocol(srv)
	ssa, _ := st.Sockname()
	_, sport := SockaddrString(ssa)
	srv.check = func(tr *DatagramTransport, gate *uint32) {
		tr.Abort()
		if *gate == 0 {
			t.Errorf("Abort left the gate open")
		}
	}
	cli := &dgRec{h: h, name: "client"}
	ct := h.endpoint(cli, &DatagramOptions{Remote: &DatagramAddr{"127.0.0.1", sport}})
	ct.SendTo([]byte("x"), nil)
	h.runUntil("aborted", 5*time.Second, func() bool { return srv.losts == 1 })
	h.closeDatagram(ct, cli)
}

// queuedSend frames a datagram for SendQueued: the address length, the
// struct sockaddr (nil: none), the data.
func queuedSend(t *testing.T, sa unix.Sockaddr, data []byte) []byte {
	t.Helper()
	var raw []byte
	if sa != nil {
		var rsa unix.RawSockaddrAny
		n, ok := toRaw(sa, &rsa)
		if !ok {
			t.Fatalf("toRaw(%v)", sa)
		}
		raw = unsafe.Slice((*byte)(unsafe.Pointer(&rsa)), n)
	}
	b := make([]byte, QueuedSendHeader, QueuedSendHeader+len(raw)+len(data))
	*(*uint32)(unsafe.Pointer(&b[0])) = uint32(len(raw))
	return append(append(b, raw...), data...)
}

// SendQueued (the write queue's ALOOP_WRITE_SENDTO) sends as SendTo, and
// reports to ErrorReceived what SendTo would have returned.
func TestUDPSendQueued(t *testing.T) {
	h := newHarness(t)
	srv := &dgRec{h: h, name: "server", echo: true}
	st := h.endpoint(srv, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", 0}})
	ssa, _ := st.Sockname()
	sport := ssa.(*unix.SockaddrInet4).Port

	// Unconnected: to an explicit address, twice (the parsed address is
	// kept), then an empty datagram.
	cli := &dgRec{h: h, name: "client"}
	ct := h.endpoint(cli, &DatagramOptions{Family: unix.AF_INET})
	ct.SendQueued(queuedSend(t, ssa, []byte("one")))
	ct.SendQueued(queuedSend(t, ssa, pattern(1400, 5)))
	ct.SendQueued(queuedSend(t, ssa, nil))
	h.runUntil("echoes", 5*time.Second, func() bool { return len(cli.rx) == 3 })
	if string(cli.rx[0].data) != "one" || !bytes.Equal(cli.rx[1].data, pattern(1400, 5)) || len(cli.rx[2].data) != 0 ||
		cli.rx[0].port != sport {
		t.Fatalf("echoes: %+v", cli.rx)
	}
	// No destination on an unconnected endpoint, a malformed frame, an
	// address that is not a struct sockaddr, one of another family: each an
	// ErrorReceived(EINVAL), nothing sent.
	ct.SendQueued(queuedSend(t, nil, []byte("nowhere")))
	ct.SendQueued([]byte{1, 2})
	bad := queuedSend(t, ssa, []byte("short"))
	*(*uint32)(unsafe.Pointer(&bad[0])) = 8 // an AF_INET address cut short
	ct.SendQueued(bad)
	ct.SendQueued(queuedSend(t, &unix.SockaddrUnix{Name: "/nonexistent"}, []byte("unix")))
	if len(cli.errs) != 4 {
		t.Fatalf("errors: %v, want 4", cli.errs)
	}
	for _, err := range cli.errs {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v, want ErrInvalid", err)
		}
	}
	cli.errs = nil

	// Connected: no address, or the remote address itself; another address
	// is an error.
	con := &dgRec{h: h, name: "connected"}
	cn := h.endpoint(con, &DatagramOptions{Remote: &DatagramAddr{"127.0.0.1", sport}})
	cn.SendQueued(queuedSend(t, nil, []byte("default")))
	cn.SendQueued(queuedSend(t, ssa, []byte("explicit")))
	cn.SendQueued(queuedSend(t, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 9}, []byte("other")))
	if len(con.errs) != 1 || !errors.Is(con.errs[0], ErrInvalid) {
		t.Fatalf("connected errors: %v", con.errs)
	}
	h.runUntil("connected echoes", 5*time.Second, func() bool { return len(con.rx) == 2 })
	if string(con.rx[0].data) != "default" || string(con.rx[1].data) != "explicit" {
		t.Fatalf("connected echoes: %+v", con.rx)
	}
	// After close nothing is sent or reported.
	h.closeDatagram(cn, con)
	cn.SendQueued(queuedSend(t, nil, []byte("late")))
	h.closeDatagram(ct, cli)
	h.closeDatagram(st, srv)
	if len(con.errs) != 1 || len(cli.errs) != 0 || len(srv.rx) != 5 {
		t.Fatalf("after close: errs %v %v, server got %d", con.errs, cli.errs, len(srv.rx))
	}
}

// SendQueuedBatch: runs of sends go out with sendmmsg, in order; a send the
// kernel refuses in the middle of a run (EACCES: a broadcast address without
// SO_BROADCAST, nothing leaves the machine) and one SendQueued must handle
// (another family) each give one ErrorReceived, and the rest still follows.
func TestUDPSendQueuedBatch(t *testing.T) {
	h := newHarness(t)
	srv := &dgRec{h: h, name: "server"}
	st := h.endpoint(srv, &DatagramOptions{Local: &DatagramAddr{"127.0.0.1", 0}})
	ssa, _ := st.Sockname()
	cli := &dgRec{h: h, name: "client"}
	ct := h.endpoint(cli, &DatagramOptions{Family: unix.AF_INET})
	bcast := &unix.SockaddrInet4{Addr: [4]byte{255, 255, 255, 255}, Port: 9}
	v6 := &unix.SockaddrInet6{Addr: [16]byte{15: 1}, Port: 9}
	var frames [][]byte
	var want []string
	for i := 0; i < 3*maxMmsg; i++ {
		m := fmt.Sprintf("m%d", i)
		switch i {
		case 5, maxMmsg + 3:
			frames = append(frames, queuedSend(t, bcast, []byte("refused")))
		case 40:
			frames = append(frames, queuedSend(t, v6, []byte("v6")))
		}
		frames = append(frames, queuedSend(t, ssa, []byte(m)))
		want = append(want, m)
	}
	ct.SendQueuedBatch(frames)
	if len(cli.errs) != 3 || Errno(cli.errs[0]) != unix.EACCES || Errno(cli.errs[1]) != unix.EACCES ||
		!errors.Is(cli.errs[2], ErrInvalid) {
		t.Fatalf("errors: %v", cli.errs)
	}
	h.runUntil("datagrams", 5*time.Second, func() bool { return len(srv.rx) == len(want) })
	for i, w := range want {
		if string(srv.rx[i].data) != w {
			t.Fatalf("datagram %d: %q, want %q", i, srv.rx[i].data, w)
		}
	}
	h.closeDatagram(ct, cli)
	h.closeDatagram(st, srv)
}

// slowUnixReceiver binds a Unix datagram socket in dir that nobody reads
// (closed at the end of the test) and connects a sender endpoint to it.
func slowUnixReceiver(h *harness, dir string) (int, *dgRec, *DatagramTransport) {
	h.t.Helper()
	rpath := filepath.Join(dir, "slow.sock")
	rfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { unix.Close(rfd) })
	if err := unix.Bind(rfd, &unix.SockaddrUnix{Name: rpath}); err != nil {
		h.t.Fatal(err)
	}
	snd := &dgRec{h: h, name: "sender"}
	return rfd, snd, h.endpoint(snd, &DatagramOptions{Family: unix.AF_UNIX, Remote: &DatagramAddr{Host: rpath}})
}
