package core

// A huge fd number (2^31-1) entering anywhere must be refused with EBADF
// before the loop's fd table grows to its size (issue 9, item 2: it grew to
// 16 GiB of address space, with multi-second stalls and an out-of-memory
// abort under ulimit -v).

import (
	"errors"
	"math"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestHugeFdIsRefusedBeforeTheTableGrows(t *testing.T) {
	h := newHarness(t)
	l := h.l
	const huge = math.MaxInt32
	before := len(l.fds)
	nop := func() {}
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s(2^31-1) succeeded", what)
		} else if !errors.Is(err, unix.EBADF) {
			t.Errorf("%s(2^31-1): %v, want EBADF", what, err)
		}
		if n := len(l.fds); n > before+1024 && n > 1<<16 {
			t.Fatalf("%s(2^31-1) grew the fd table to %d entries", what, n)
		}
	}
	futErr := func(f *Future, err error) error {
		if err != nil {
			return err
		}
		if _, err := h.await(f, 5*time.Second); err != nil {
			return err
		}
		return nil
	}
	check("AddReader", l.AddReader(huge, nop, nil))
	check("AddWriter", l.AddWriter(huge, nop, nil))
	if l.RemoveReader(huge) || l.RemoveWriter(huge) {
		t.Errorf("RemoveReader/RemoveWriter of an unknown fd reported a watcher")
	}
	check("SockRecv", futErr(l.SockRecv(huge, 10)))
	check("SockRecvInto", futErr(l.SockRecvInto(huge, make([]byte, 10))))
	check("SockRecvfrom", futErr(l.SockRecvfrom(huge, 10)))
	check("SockSendall", futErr(l.SockSendall(huge, []byte("x"))))
	check("SockSendtoHost", futErr(l.SockSendtoHost(huge, []byte("x"), "127.0.0.1", 9)))
	check("SockConnect", futErr(l.SockConnect(huge, "127.0.0.1", 9)))
	check("SockAccept", futErr(l.SockAccept(huge)))
	check("SockSendfile", futErr(l.SockSendfile(huge, 0, 0, 0, true)))
	check("ConnectReadPipe", futErr(l.ConnectReadPipe(huge, BaseProtocol{})))
	check("ConnectWritePipe", futErr(l.ConnectWritePipe(huge, BaseProtocol{})))
	check("ConnectAcceptedSocket", futErr(l.ConnectAcceptedSocket(huge, BaseProtocol{})))
	check("CreateConnection(sock=)", futErr(l.CreateConnection("", 0, BaseProtocol{}, &ConnectOptions{HasSock: true, Sock: huge})))
	check("CreateServer(sock=)", futErr(l.CreateServer("", 0, func(*Transport) error { return nil }, &ServerOptions{HasSock: true, Sock: huge})))
	check("CreateDatagramEndpoint(sock=)", futErr(l.CreateDatagramEndpoint(BaseDatagramProtocol{}, &DatagramOptions{HasSock: true, Sock: huge})))
	check("SubprocessExec(stdin=fd)", futErr(l.SubprocessExec([]string{"/bin/true"}, BaseSubprocessProtocol{}, &SubprocessOptions{Stdin: Stdio{Mode: StdioFd, Fd: huge}})))
}
