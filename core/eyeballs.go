package core

import (
	"golang.org/x/sys/unix"
)

// Connecting to a list of resolved addresses, as asyncio's create_connection
// does: one after another, or with Happy Eyeballs (RFC 8305: the addresses
// interleaved by family, a new attempt started every HappyEyeballsDelay
// seconds while earlier ones are still in progress, or at once when one
// fails; the first connection wins and the others are closed).

// interleaveAddrs reorders addrs as asyncio's _interleave_addrinfos: the
// first `first` addresses of the first family, then alternating families
// (first = 1: alternate from the start).
func interleaveAddrs(addrs []unix.Sockaddr, first int) []unix.Sockaddr {
	if first <= 0 || len(addrs) < 2 {
		return addrs
	}
	var order []int
	groups := map[int][]unix.Sockaddr{}
	for _, sa := range addrs {
		f := familyOf(sa)
		if _, ok := groups[f]; !ok {
			order = append(order, f)
		}
		groups[f] = append(groups[f], sa)
	}
	out := make([]unix.Sockaddr, 0, len(addrs))
	head := groups[order[0]]
	n := first - 1 // then one of each family in turn
	if n > len(head) {
		n = len(head)
	}
	out = append(out, head[:n]...)
	groups[order[0]] = head[n:]
	for {
		added := false
		for _, f := range order {
			if g := groups[f]; len(g) > 0 {
				out = append(out, g[0])
				groups[f] = g[1:]
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// eyeballs connects to the first address that accepts.
type eyeballs struct {
	loop     *Loop
	fut      *Future
	addrs    []unix.Sockaddr // not tried yet
	local    unix.Sockaddr
	proto    Protocol
	delay    float64 // <= 0: one attempt at a time
	attempts []*attempt
	timer    *Handle
	errs     []error
	over     bool
}

// attempt is one connect in progress (the owner of its fd's entry).
type attempt struct {
	c  *eyeballs
	fd int
	e  *fdEntry
	sa unix.Sockaddr
}

func (l *Loop) connectAddrs(fut *Future, addrs []unix.Sockaddr, local unix.Sockaddr, proto Protocol, delay float64) {
	c := l.newEyeballs(fut, proto)
	c.addrs, c.local, c.delay = addrs, local, delay
	c.launch()
}

func (l *Loop) newEyeballs(fut *Future, proto Protocol) *eyeballs {
	c := &eyeballs{loop: l, fut: fut, proto: proto}
	fut.AddDoneCallback(func(*Future) { c.stop(-1) }, nil, nil)
	return c
}

// dial makes a socket for sa, binds it to the local address if one is
// set, and starts connecting: connected reports a connection that completed
// at once; otherwise it is in progress (wait for it).
func (c *eyeballs) dial(sa unix.Sockaddr) (fd int, connected bool, err error) {
	fd, err = newStreamSocket(familyOf(sa))
	if err != nil {
		return -1, false, err
	}
	if c.local != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(fd, c.local); err != nil {
			unix.Close(fd)
			return -1, false, &OpError{Op: "bind", Addr: addrString(c.local), Err: err}
		}
	}
	switch err = unix.Connect(fd, sa); err {
	case nil:
		return fd, true, nil
	case unix.EINPROGRESS, unix.EINTR: // an interrupted connect goes on
		return fd, false, nil
	}
	unix.Close(fd)
	return -1, false, &OpError{Op: "connect", Addr: addrString(sa), Err: err}
}

// wait watches fd, whose connection to sa is in progress, as an attempt.
func (c *eyeballs) wait(fd int, sa unix.Sockaddr) error {
	l := c.loop
	a := &attempt{c: c, fd: fd, sa: sa}
	a.e = l.claimEntry(fd)
	a.e.owner = a
	a.e.writer = a.onWritable
	if err := l.update(a.e); err != nil {
		a.e.writer = nil
		a.e.owner = nil
		l.forget(a.e)
		return err
	}
	l.objects++
	c.attempts = append(c.attempts, a)
	return nil
}

// launch starts attempts until one is in progress (or connected), and arms
// the timer that starts the next one.
func (c *eyeballs) launch() {
	l := c.loop
	if c.timer != nil {
		c.timer.Cancel()
		c.timer = nil
	}
	for len(c.addrs) > 0 && !c.over {
		if c.fut.Done() { // cancelled
			return
		}
		sa := c.addrs[0]
		c.addrs = c.addrs[1:]
		if c.local != nil && familyOf(c.local) != familyOf(sa) {
			continue
		}
		fd, connected, err := c.dial(sa)
		if err != nil {
			c.errs = append(c.errs, err)
			continue
		}
		if connected {
			c.win(fd)
			return
		}
		if err := c.wait(fd, sa); err != nil {
			unix.Close(fd)
			c.errs = append(c.errs, &OpError{Op: "connect", Err: err})
			continue
		}
		if c.delay > 0 && len(c.addrs) > 0 {
			c.timer, _ = l.CallLater(c.delay, func() {
				c.timer = nil
				c.launch()
			}, nil)
		}
		return
	}
	if len(c.attempts) == 0 && !c.over && !c.fut.Done() {
		c.over = true
		c.fut.SetException(c.combinedError())
	}
}

func (a *attempt) drop() {
	l := a.c.loop
	a.e.writer = nil
	a.e.owner = nil
	l.forget(a.e)
	l.objects--
	for i, x := range a.c.attempts {
		if x == a {
			a.c.attempts = append(a.c.attempts[:i], a.c.attempts[i+1:]...)
			break
		}
	}
}

func (a *attempt) onWritable() {
	c := a.c
	a.drop()
	if c.over || c.fut.Done() {
		unix.Close(a.fd)
		return
	}
	soerr, err := unix.GetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = unix.Errno(soerr)
	}
	if err != nil {
		unix.Close(a.fd)
		c.errs = append(c.errs, &OpError{Op: "connect", Addr: addrString(a.sa), Err: err})
		// A failure starts the next attempt at once (RFC 8305 §5).
		c.launch()
		return
	}
	c.win(a.fd)
}

// stop ends every attempt but keep (-1: all) and the timer.
func (c *eyeballs) stop(keep int) {
	if c.timer != nil {
		c.timer.Cancel()
		c.timer = nil
	}
	for len(c.attempts) > 0 {
		a := c.attempts[0]
		a.drop()
		if a.fd != keep {
			unix.Close(a.fd)
		}
	}
	c.addrs = nil
}

func (c *eyeballs) win(fd int) {
	c.over = true
	c.stop(fd)
	c.loop.connected(c.fut, fd, c.proto)
}

func (c *eyeballs) combinedError() error {
	if len(c.errs) == 0 {
		return &OpError{Op: "connect", Err: unix.EHOSTUNREACH, Addr: "no address to connect to"}
	}
	return combinedConnectError(c.errs)
}

// connected wraps fd (connected) in a transport for fut; ConnectionMade
// runs (call_soon) before the future's result is set.
func (l *Loop) connected(fut *Future, fd int, proto Protocol) {
	if sockDomain(fd) != unix.AF_UNIX {
		setNoDelay(fd)
	}
	t := l.newTransport(fd)
	t.SetProtocol(proto)
	l.startThenResolve(fut, t)
}
