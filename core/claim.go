package core

// Objects a future resolves to (a transport, an endpoint, a server, a
// subprocess) may be reachable through nothing but that future: a C host
// whose protocol has no connection_made gets a transport's handle only
// from the future's result, a server only ever comes that way. When the
// holder drops such a future without reading it (Future.Abandon), the
// object could never be closed and would keep its loop from closing for
// good, so it is closed then. An object counts as claimed once its holder
// got it in another way (Claim: the C layer calls it whenever it hands the
// object's handle to the host).

// Claim records that the holder has t.
func (t *Transport) Claim() { t.claimed = true }

// Claim records that the holder has t.
func (t *DatagramTransport) Claim() { t.claimed = true }

// Claim records that the holder has s.
func (s *Server) Claim() { s.claimed = true }

// Claim records that the holder has p.
func (p *Subprocess) Claim() { p.claimed = true }

// Abandon tells f that its holder will never read its result: an object f
// resolves to (now, or when it completes) that nobody claimed is closed
// (transports and endpoints gracefully, with their connection_lost; a
// server stops listening; a subprocess is closed as by Close, killing a
// child still running), then closed(obj) runs (may be nil).
func (f *Future) Abandon(closed func(obj any)) {
	if f.state == futurePending {
		f.AddDoneCallback(func(f *Future) { closeUnclaimed(f, closed) }, nil, nil)
		return
	}
	closeUnclaimed(f, closed)
}

func closeUnclaimed(f *Future, closed func(any)) {
	if f.state != futureDone || f.err != nil {
		return
	}
	switch o := f.result.(type) {
	case *Transport:
		if o.claimed {
			return
		}
		o.Close()
	case *DatagramTransport:
		if o.claimed {
			return
		}
		o.Close()
	case *Server:
		if o.claimed {
			return
		}
		o.Close()
	case *Subprocess:
		if o.claimed {
			return
		}
		o.Close()
	default:
		return
	}
	if closed != nil {
		closed(f.result)
	}
}
