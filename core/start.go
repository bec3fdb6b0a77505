package core

// Starting a transport that the loop made for a future (create_connection,
// connect_accepted_socket, create_unix_connection, connect_read_pipe /
// connect_write_pipe, create_datagram_endpoint): ConnectionMade runs on the
// next iteration (call_soon, as asyncio), then the future gets the
// transport.

// startable is a transport startThenResolve can start.
type startable interface {
	start() // runs ConnectionMade, then starts reading
	forceClose(err error)
	lostBeforeMade() bool
	Close()
}

// lostBeforeMade: the start failed (connection_lost is scheduled and
// ConnectionMade never ran), so the future must not resolve.
func (t *Transport) lostBeforeMade() bool         { return t.lostScheduled && !t.started }
func (t *DatagramTransport) lostBeforeMade() bool { return t.lostScheduled && !t.started }

// startThenResolve starts t on the next iteration and resolves fut with it;
// when fut was cancelled (or completed by its holder, Override) meanwhile, t
// is closed without any callback (the caller never saw it). When that
// happens from inside ConnectionMade, t is closed (asyncio closes the
// transport when create_connection's waiter is cancelled): its
// connection_lost follows, and its protocol stays attached until then.
func (l *Loop) startThenResolve(fut *Future, t startable) {
	l.CallSoon(func() {
		if fut.Done() {
			t.forceClose(nil)
			return
		}
		t.start()
		if t.lostBeforeMade() {
			return
		}
		if fut.Done() {
			t.Close()
			return
		}
		fut.SetResult(t)
	}, nil)
}
