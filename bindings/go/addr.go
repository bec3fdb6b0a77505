package asyncloop

import (
	"net"
	"net/netip"
	"strconv"
	"unsafe"
)

// Addresses: the library speaks numeric hosts and ports (and paths for
// Unix sockets); the binding hands Go code net.Addr values of the
// transport's network: *net.TCPAddr, *net.UDPAddr, *net.UnixAddr (an
// abstract name keeps its leading '@', as in package net).

// hostAddr is a net.Addr for a host that is not an IP address (a name
// given to an operation, before it was resolved).
type hostAddr struct {
	network, host string
	port          int
}

func (a *hostAddr) Network() string { return a.network }
func (a *hostAddr) String() string  { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// makeAddr builds the net.Addr of host:port on network ("tcp", "udp",
// "unix", "unixgram", "unixpacket").
func makeAddr(network, host string, port int) net.Addr {
	switch network {
	case "unix", "unixgram", "unixpacket":
		return &net.UnixAddr{Name: host, Net: network}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if host == "" && port == 0 {
			return nil
		}
		return &hostAddr{network: network, host: host, port: port}
	}
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if network == "udp" {
		return &net.UDPAddr{IP: ip.AsSlice(), Port: port, Zone: ip.Zone()}
	}
	return &net.TCPAddr{IP: ip.AsSlice(), Port: port, Zone: ip.Zone()}
}

// addrOf reads an address with one of the library's sockname-style
// functions (numeric host into a buffer, port into an int).
func addrOf(network string, f func(buf unsafe.Pointer, n uintptr, port *int32) int32) (net.Addr, error) {
	host, port, err := sockname(f)
	if err != nil {
		return nil, err
	}
	return makeAddr(network, host, port), nil
}

func sockname(f func(buf unsafe.Pointer, n uintptr, port *int32) int32) (string, int, error) {
	if lib == nil {
		return "", 0, ErrBadHandle
	}
	var buf [256]byte
	var port int32
	_, err := do(func() int32 { return f(unsafe.Pointer(&buf[0]), uintptr(len(buf)), &port) })
	if err != nil {
		return "", 0, err
	}
	return goString(&buf[0]), int(port), nil
}

// splitAddr takes the host and port of a net.Addr for the library.
func splitAddr(a net.Addr) (host string, port int, err error) {
	switch v := a.(type) {
	case *net.TCPAddr:
		return ipString(v.IP, v.Zone), v.Port, nil
	case *net.UDPAddr:
		return ipString(v.IP, v.Zone), v.Port, nil
	case *net.UnixAddr:
		return v.Name, 0, nil
	case *hostAddr:
		return v.host, v.port, nil
	case nil:
		return "", 0, errInvalid("nil address")
	}
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return "", 0, errInvalid("address " + a.String() + ": " + err.Error())
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, errInvalid("address " + a.String() + ": bad port")
	}
	return h, n, nil
}

func ipString(ip net.IP, zone string) string {
	if ip == nil {
		return ""
	}
	s := ip.String()
	if zone != "" {
		s += "%" + zone
	}
	return s
}
