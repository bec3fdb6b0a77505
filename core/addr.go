package core

import (
	"context"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// SockaddrString formats a socket address as numeric host and port.
func SockaddrString(sa unix.Sockaddr) (string, int) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr).String(), a.Port
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(a.Addr)
		s := ip.String()
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				s += "%" + ifi.Name
			}
		}
		return s, a.Port
	case *unix.SockaddrUnix:
		return a.Name, 0
	}
	return "", 0
}

func sockaddrFromAddr(ip netip.Addr, port int) unix.Sockaddr {
	if ip.Is4() || ip.Is4In6() {
		return &unix.SockaddrInet4{Addr: ip.Unmap().As4(), Port: port}
	}
	sa := &unix.SockaddrInet6{Addr: ip.As16(), Port: port}
	if z := ip.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else if n, err := strconv.Atoi(z); err == nil {
			sa.ZoneId = uint32(n)
		}
	}
	return sa
}

func familyOf(sa unix.Sockaddr) int {
	switch sa.(type) {
	case *unix.SockaddrInet6:
		return unix.AF_INET6
	case *unix.SockaddrUnix:
		return unix.AF_UNIX
	}
	return unix.AF_INET
}

func addrString(sa unix.Sockaddr) string {
	h, p := SockaddrString(sa)
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		return "[" + h + "]:" + strconv.Itoa(p)
	}
	return h + ":" + strconv.Itoa(p)
}

// numericAddrs resolves host without blocking when it is empty (passive: all
// interfaces) or a numeric address; ok is false for a name to look up.
func numericAddrs(host string, port int, passive bool) (addrs []unix.Sockaddr, ok bool) {
	if host == "" {
		if passive {
			return []unix.Sockaddr{
				&unix.SockaddrInet4{Port: port},
				&unix.SockaddrInet6{Port: port},
			}, true
		}
		host = "localhost"
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []unix.Sockaddr{sockaddrFromAddr(ip, port)}, true
	}
	return nil, false
}

// resolve resolves host:port and calls done on the loop thread. Numeric
// hosts are resolved at once, names on a goroutine (getaddrinfo blocks).
func (l *Loop) resolve(host string, port int, passive bool, done func([]unix.Sockaddr, error)) {
	if addrs, ok := numericAddrs(host, port, passive); ok {
		done(addrs, nil)
		return
	}
	l.objects++
	go func() {
		ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
		var addrs []unix.Sockaddr
		if err == nil {
			for _, ip := range ips {
				addrs = append(addrs, sockaddrFromAddr(ip, port))
			}
		}
		_, perr := l.CallSoonThreadsafe(func() {
			l.objects--
			if err != nil {
				done(nil, &OpError{Op: "getaddrinfo", Addr: host, Err: ErrResolve})
				return
			}
			done(addrs, nil)
		}, nil)
		if perr != nil {
			// The loop closed meanwhile; nothing can be delivered.
			return
		}
	}()
}
