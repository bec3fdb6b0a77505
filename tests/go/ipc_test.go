package gotest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// collector gathers a stream's data and its end.
type collector struct {
	asyncloop.BaseProtocol
	tr   *asyncloop.Transport
	data []byte
	eof  bool
	want int
	got  *asyncloop.Future[[]byte]
	lost *asyncloop.Future[error]
}

func newCollector(t *testing.T, l *asyncloop.Loop, want int) *collector {
	got, _ := asyncloop.NewFuture[[]byte](l)
	lost, _ := asyncloop.NewFuture[error](l)
	return &collector{want: want, got: got, lost: lost}
}

func (c *collector) ConnectionMade(t *asyncloop.Transport) { c.tr = t }
func (c *collector) DataReceived(b []byte) {
	c.data = append(c.data, b...)
	if len(c.data) >= c.want && !c.got.Done() {
		c.got.SetResult(c.data)
	}
}
func (c *collector) EOFReceived() bool        { c.eof = true; return false }
func (c *collector) ConnectionLost(err error) { c.lost.SetResult(err) }

func TestUnixSocketEcho(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	path := filepath.Join(t.TempDir(), "echo.sock")
	lost := make(chan error, 4)
	sf, err := l.CreateUnixServer(bg, path, func() asyncloop.Protocol { return &echoServer{t: t, lost: lost} }, asyncloop.WithBacklog(8))
	srv := await(t, l, sf, err)
	if a, ok := srv.Addr().(*net.UnixAddr); !ok || a.Name != path || a.Net != "unix" {
		t.Fatalf("server Addr %#v", srv.Addr())
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("socket file: %v", err)
	}
	c := newCollector(t, l, 11)
	cf, err := l.CreateUnixConnection(bg, path, c)
	tr := await(t, l, cf, err)
	if a, ok := tr.RemoteAddr().(*net.UnixAddr); !ok || a.Name != path {
		t.Fatalf("RemoteAddr %#v", tr.RemoteAddr())
	}
	tr.WriteString("hello unix!")
	if got := await(t, l, c.got, nil); string(got) != "hello unix!" {
		t.Fatalf("echo %q", got)
	}
	tr.Close()
	await(t, l, c.lost, nil)
	closeServer(t, l, srv)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	// Nothing listens any more: ENOENT, in a *net.OpError naming the path.
	f, _ := l.CreateUnixConnection(bg, path, &asyncloop.BaseProtocol{})
	err = untilDone(t, l, f, 5*time.Second)
	var op *net.OpError
	if !errors.Is(err, syscall.ENOENT) || !errors.As(err, &op) || op.Net != "unix" || op.Addr.String() != path {
		t.Fatalf("connect to a removed socket: %v", err)
	}
	settle(l)
	checkLeaks(t, base)
}

func TestUnixAbstractSocket(t *testing.T) {
	l := newLoop(t)
	name := "@asyncloop-gotest-" + strings.ReplaceAll(t.Name(), "/", "-")
	sf, err := l.CreateUnixServer(bg, name, func() asyncloop.Protocol { return &echoServer{t: t, lost: make(chan error, 1)} })
	srv := await(t, l, sf, err)
	// A Go client of package net reaches it by the same name.
	done := make(chan string, 1)
	go func() {
		conn, err := net.Dial("unix", name)
		if err != nil {
			done <- err.Error()
			return
		}
		defer conn.Close()
		conn.Write([]byte("abstract"))
		buf := make([]byte, 8)
		io.ReadFull(conn, buf)
		done <- string(buf)
	}()
	var got string
	for got == "" {
		select {
		case got = <-done:
		default:
			l.RunOnce(10 * time.Millisecond)
		}
	}
	if got != "abstract" {
		t.Fatalf("net client got %q", got)
	}
	closeServer(t, l, srv)
}

// connect_accepted_socket: a connection accepted by package net is handed
// to the loop.
func TestConnectAcceptedSocket(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, l, 5)
	f, err := l.ConnectAcceptedSocket(bg, accepted.(*net.TCPConn), c)
	tr := await(t, l, f, err)
	if tr.RemoteAddr().String() != client.LocalAddr().String() {
		t.Fatalf("RemoteAddr %v, want %v", tr.RemoteAddr(), client.LocalAddr())
	}
	// The transport took the connection over: the net.Conn is closed.
	if _, err := accepted.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the accepted net.Conn is still usable: %v", err)
	}
	client.Write([]byte("howdy"))
	if got := await(t, l, c.got, nil); string(got) != "howdy" {
		t.Fatalf("got %q", got)
	}
	tr.WriteString("back")
	buf := make([]byte, 4)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	readDone := make(chan error, 1)
	go func() { _, err := io.ReadFull(client, buf); readDone <- err }()
	for {
		select {
		case err := <-readDone:
			if err != nil || string(buf) != "back" {
				t.Fatalf("net client read %q %v", buf, err)
			}
			tr.Close()
			await(t, l, c.lost, nil)
			settle(l)
			checkLeaks(t, base)
			return
		default:
			l.RunOnce(5 * time.Millisecond)
		}
	}
}

// udpEcho sends every datagram back to its sender.
type udpEcho struct {
	asyncloop.BaseDatagramProtocol
	tr    *asyncloop.DatagramTransport
	addrs []net.Addr
}

func (u *udpEcho) ConnectionMade(t *asyncloop.DatagramTransport) { u.tr = t }
func (u *udpEcho) DatagramReceived(b []byte, addr net.Addr) {
	u.addrs = append(u.addrs, addr)
	u.tr.SendTo(b, addr)
}

// udpClient collects datagrams and errors.
type udpClient struct {
	asyncloop.BaseDatagramProtocol
	got   [][]byte
	from  []net.Addr
	errs  []error
	want  int
	done  *asyncloop.Future[int]
	lost  bool
	ready bool
}

func (u *udpClient) ConnectionMade(*asyncloop.DatagramTransport) { u.ready = true }
func (u *udpClient) DatagramReceived(b []byte, addr net.Addr) {
	u.got = append(u.got, append([]byte(nil), b...))
	u.from = append(u.from, addr)
	if len(u.got) >= u.want && !u.done.Done() {
		u.done.SetResult(len(u.got))
	}
}
func (u *udpClient) ErrorReceived(err error) {
	u.errs = append(u.errs, err)
	if !u.done.Done() {
		u.done.SetException(err)
	}
}
func (u *udpClient) ConnectionLost(error) { u.lost = true }

func TestUDPEcho(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	echo := &udpEcho{}
	sf, err := l.CreateDatagramEndpoint(bg, echo, asyncloop.WithLocalAddr("127.0.0.1", 0))
	srv := await(t, l, sf, err)
	saddr, ok := srv.LocalAddr().(*net.UDPAddr)
	if !ok || saddr.Port == 0 || !saddr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("server LocalAddr %#v", srv.LocalAddr())
	}
	if srv.RemoteAddr() != nil {
		t.Fatalf("unconnected endpoint has RemoteAddr %v", srv.RemoteAddr())
	}
	done, _ := asyncloop.NewFuture[int](l)
	cl := &udpClient{want: 3, done: done}
	cf, err := l.CreateDatagramEndpoint(bg, cl, asyncloop.WithRemoteAddr("127.0.0.1", saddr.Port))
	ct := await(t, l, cf, err)
	if !cl.ready || ct.RemoteAddr().String() != saddr.String() {
		t.Fatalf("client ready %v remote %v", cl.ready, ct.RemoteAddr())
	}
	for _, m := range []string{"one", "", "three"} { // an empty datagram too
		if err := ct.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	await(t, l, done, nil)
	if string(cl.got[0]) != "one" || len(cl.got[1]) != 0 || string(cl.got[2]) != "three" {
		t.Fatalf("echoed %q", cl.got)
	}
	if cl.from[0].String() != saddr.String() || echo.addrs[0].String() != ct.LocalAddr().String() {
		t.Fatalf("addresses: client saw %v, server saw %v (client is %v)", cl.from[0], echo.addrs[0], ct.LocalAddr())
	}
	// A datagram to another address than the connected one is refused.
	if err := ct.SendTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("SendTo another address on a connected endpoint: %v", err)
	}
	ct.Close()
	srv.Abort()
	settle(l)
	if !cl.lost || ct.IsClosing() != true {
		t.Fatal("ConnectionLost not delivered")
	}
	settle(l)
	checkLeaks(t, base)
}

// A connected UDP endpoint sending to a closed port gets ECONNREFUSED in
// ErrorReceived and stays open (asyncio).
func TestUDPErrorReceived(t *testing.T) {
	l := newLoop(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	done, _ := asyncloop.NewFuture[int](l)
	cl := &udpClient{want: 1, done: done}
	cf, err := l.CreateDatagramEndpoint(bg, cl, asyncloop.WithRemoteAddr("127.0.0.1", port))
	ct := await(t, l, cf, err)
	ct.Send([]byte("anyone?"))
	l.CallLater(50*time.Millisecond, func() { ct.Send([]byte("anyone?")) })
	err = untilDone(t, l, done, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("ErrorReceived %v, want ECONNREFUSED", err)
	}
	if ct.IsClosing() {
		t.Fatal("endpoint closed after ErrorReceived")
	}
	ct.Close()
	settle(l)
}

// A Unix datagram endpoint, and a UDP peer of package net.
func TestUnixDatagramAndNetPeer(t *testing.T) {
	l := newLoop(t)
	dir := t.TempDir()
	echo := &udpEcho{}
	sp := filepath.Join(dir, "srv.sock")
	sf, err := l.CreateDatagramEndpoint(bg, echo, asyncloop.WithFamily(syscall.AF_UNIX), asyncloop.WithLocalAddr(sp, 0))
	srv := await(t, l, sf, err)
	if a, ok := srv.LocalAddr().(*net.UnixAddr); !ok || a.Name != sp || a.Net != "unixgram" {
		t.Fatalf("LocalAddr %#v", srv.LocalAddr())
	}
	done, _ := asyncloop.NewFuture[int](l)
	cl := &udpClient{want: 1, done: done}
	cp := filepath.Join(dir, "cl.sock")
	cf, err := l.CreateDatagramEndpoint(bg, cl, asyncloop.WithFamily(syscall.AF_UNIX),
		asyncloop.WithLocalAddr(cp, 0), asyncloop.WithRemoteAddr(sp, 0))
	ct := await(t, l, cf, err)
	ct.Send([]byte("unixgram"))
	await(t, l, done, nil)
	if string(cl.got[0]) != "unixgram" || cl.from[0].String() != sp {
		t.Fatalf("got %q from %v", cl.got, cl.from)
	}
	ct.Close()
	srv.Close()
	settle(l)

	// UDP: a net.UDPConn talks to an asyncloop endpoint.
	uf, err := l.CreateDatagramEndpoint(bg, &udpEcho{}, asyncloop.WithLocalAddr("127.0.0.1", 0))
	us := await(t, l, uf, err)
	conn, err := net.DialUDP("udp", nil, us.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res := make(chan string, 1)
	go func() {
		conn.Write([]byte("from net"))
		buf := make([]byte, 64)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			res <- err.Error()
			return
		}
		res <- string(buf[:n])
	}()
	var got string
	for got == "" {
		select {
		case got = <-res:
		default:
			l.RunOnce(5 * time.Millisecond)
		}
	}
	if got != "from net" {
		t.Fatalf("net peer got %q", got)
	}
	us.Close()
	settle(l)
}

// Pipes: read and write ends of os.Pipe as transports.
func TestPipes(t *testing.T) {
	base := asyncloop.LiveCallbacks()
	l := newLoop(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, l, 4)
	rf, err := l.ConnectReadPipe(bg, r, c)
	rt := await(t, l, rf, err)
	if rt.RemoteAddr() != nil || rt.CanWriteEOF() {
		t.Fatal("a read pipe has a peer or can write EOF")
	}
	if _, err := rt.Write([]byte("x")); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Write on a read pipe: %v", err)
	}
	// The transport took r over.
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("r still open: %v", err)
	}
	go func() { w.Write([]byte("pipe")); w.Close() }()
	if got := await(t, l, c.got, nil); string(got) != "pipe" {
		t.Fatalf("read pipe got %q", got)
	}
	if lerr := await(t, l, c.lost, nil); lerr != nil || !c.eof {
		t.Fatalf("read pipe end: eof %v, lost %v", c.eof, lerr)
	}

	// A write pipe: the loop writes, a goroutine reads.
	r2, w2, _ := os.Pipe()
	wc := newCollector(t, l, 0)
	wf, err := l.ConnectWritePipe(bg, w2, wc)
	wt := await(t, l, wf, err)
	payload := bytes.Repeat([]byte("0123456789"), 100000) // 1 MB: more than the pipe holds
	read := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r2); read <- b }()
	if _, err := wt.Write(payload); err != nil {
		t.Fatal(err)
	}
	if n, _ := wt.WriteBufferSize(); n == 0 {
		t.Fatal("nothing buffered: the pipe took 1 MB at once?")
	}
	wt.WriteEOF() // flush, then close
	if lerr := await(t, l, wc.lost, nil); lerr != nil {
		t.Fatalf("write pipe lost: %v", lerr)
	}
	if b := <-read; !bytes.Equal(b, payload) {
		t.Fatalf("reader got %d bytes, want %d", len(b), len(payload))
	}
	r2.Close()

	// The reader goes away while data is buffered: EPIPE, never SIGPIPE.
	r3, w3, _ := os.Pipe()
	bc := newCollector(t, l, 0)
	bf, err := l.ConnectWritePipe(bg, w3, bc)
	bt := await(t, l, bf, err)
	bt.Write(payload)
	r3.Close()
	l.CallSoon(func() { bt.Write([]byte("more")) })
	if lerr := await(t, l, bc.lost, nil); !errors.Is(lerr, syscall.EPIPE) {
		t.Fatalf("write pipe without a reader: %v, want EPIPE", lerr)
	}
	settle(l)
	checkLeaks(t, base)
}

// udpRedirect replies to each sender, or, once redirect is set, to the
// sender's address object changed in place to another port.
type udpRedirect struct {
	asyncloop.BaseDatagramProtocol
	tr       *asyncloop.DatagramTransport
	addrs    []net.Addr
	redirect int
}

func (u *udpRedirect) ConnectionMade(t *asyncloop.DatagramTransport) { u.tr = t }
func (u *udpRedirect) DatagramReceived(b []byte, addr net.Addr) {
	u.addrs = append(u.addrs, addr)
	if u.redirect != 0 {
		addr.(*net.UDPAddr).Port = u.redirect // the user changes the address it was given
	}
	u.tr.SendTo(b, addr)
}

// Senders that come back get the same address object (the binding keeps
// recent senders), replies to them reach them whatever the order, and an
// address the user changed in place goes where it says now.
func TestUDPRecentSenders(t *testing.T) {
	l := newLoop(t)
	srv := &udpRedirect{}
	sf, err := l.CreateDatagramEndpoint(bg, srv, asyncloop.WithLocalAddr("127.0.0.1", 0))
	st := await(t, l, sf, err)
	port := st.LocalAddr().(*net.UDPAddr).Port
	var peers [3]*net.UDPConn
	for i := range peers {
		c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		peers[i] = c
	}
	recv := func(c *net.UDPConn) string {
		t.Helper()
		buf := make([]byte, 64)
		var n int
		done := make(chan error, 1)
		go func() {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			var err error
			n, err = c.Read(buf)
			done <- err
		}()
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				return string(buf[:n])
			default:
				l.RunOnce(10 * time.Millisecond)
			}
		}
	}
	for round := 0; round < 3; round++ {
		for i, c := range peers { // alternating senders
			msg := fmt.Sprintf("r%d p%d", round, i)
			c.Write([]byte(msg))
			if got := recv(c); got != msg {
				t.Fatalf("peer %d got %q, want %q", i, got, msg)
			}
		}
	}
	for i := range peers {
		a, b := srv.addrs[i], srv.addrs[i+len(peers)]
		if a != b || a.String() != peers[i].LocalAddr().String() {
			t.Fatalf("sender %d: %v then %v (want the same address object, %v)", i, a, b, peers[i].LocalAddr())
		}
	}
	// peer 0 sends; the server changes the address it was given to peer 1.
	srv.redirect = peers[1].LocalAddr().(*net.UDPAddr).Port
	peers[0].Write([]byte("to peer 1"))
	if got := recv(peers[1]); got != "to peer 1" {
		t.Fatalf("redirected reply: peer 1 got %q", got)
	}
	// peer 0 again: its address is peer 0's, not the changed object.
	srv.redirect = 0
	peers[0].Write([]byte("back"))
	if got := recv(peers[0]); got != "back" {
		t.Fatalf("peer 0 got %q", got)
	}
	if a := srv.addrs[len(srv.addrs)-1]; a.String() != peers[0].LocalAddr().String() {
		t.Fatalf("peer 0 reported as %v, want %v", a, peers[0].LocalAddr())
	}
	st.Abort()
	settle(l)
}
