package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Name resolution without blocking the loop (asyncio's loop.getaddrinfo and
// loop.getnameinfo). Numeric hosts and ports are resolved on the loop thread
// at once; names go to a goroutine (the lookup blocks) whose result comes
// back through the thread-safe queue. Family, type, protocol and flags are
// the platform's values (AF_*, SOCK_*, IPPROTO_*, AI_*, NI_*).

// getaddrinfo and getnameinfo flags (the values of Linux's <netdb.h>).
const (
	AI_PASSIVE     = 0x0001
	AI_CANONNAME   = 0x0002
	AI_NUMERICHOST = 0x0004
	AI_V4MAPPED    = 0x0008
	AI_ALL         = 0x0010
	AI_ADDRCONFIG  = 0x0020
	AI_NUMERICSERV = 0x0400

	NI_NUMERICHOST = 0x01
	NI_NUMERICSERV = 0x02
	NI_NOFQDN      = 0x04
	NI_NAMEREQD    = 0x08
	NI_DGRAM       = 0x10
)

// AddrInfo is one result of Getaddrinfo (asyncio's 5-tuple).
type AddrInfo struct {
	Family    int
	Type      int
	Proto     int
	Canonname string // set on the first entry with AI_CANONNAME
	Addr      unix.Sockaddr
}

// NameInfo is the result of Getnameinfo.
type NameInfo struct {
	Host    string
	Service string
}

// ResolveError is a failed lookup (getaddrinfo's EAI_* errors); it matches
// ErrResolve with errors.Is.
type ResolveError struct {
	Op     string // "getaddrinfo" or "getnameinfo"
	Host   string
	Reason string
}

func (e *ResolveError) Error() string {
	if e.Host != "" {
		return fmt.Sprintf("%s %s: %s", e.Op, e.Host, e.Reason)
	}
	return e.Op + ": " + e.Reason
}

// Is makes errors.Is(err, ErrResolve) true.
func (e *ResolveError) Is(target error) bool { return target == ErrResolve }

const (
	reasonNoName   = "Name or service not known"
	reasonFamily   = "ai_family not supported"
	reasonAddrFam  = "Address family for hostname not supported"
	reasonService  = "Servname not supported for ai_socktype"
	reasonSockType = "ai_socktype not supported"
	reasonNameReqd = "Name or service not known (NI_NAMEREQD)"
)

// Getaddrinfo resolves host and service (asyncio's getaddrinfo): "" host
// means none (the loopback addresses, or the wildcard ones with
// AI_PASSIVE); "" service means port 0. The result is []AddrInfo; a failed
// lookup is a *ResolveError.
func (l *Loop) Getaddrinfo(host, service string, family, socktype, proto, flags int) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	fut := l.NewFuture()
	l.lookup(host, service, family, socktype, proto, flags, func(res []AddrInfo, err error) {
		if fut.Done() {
			return
		}
		if err != nil {
			fut.SetException(err)
			return
		}
		fut.SetResult(res)
	}, fut)
	return fut, nil
}

// lookup runs getaddrinfo and calls done on the loop thread: at once for
// numeric hosts and services, later (from the ready queue) for names. A
// pending lookup keeps the loop alive. When cancel is given, its being
// done abandons the lookup.
func (l *Loop) lookup(host, service string, family, socktype, proto, flags int, done func([]AddrInfo, error), cancel ...*Future) {
	if res, err, ok := gaiNumeric(host, service, family, socktype, proto, flags); ok {
		done(res, err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	if len(cancel) > 0 && cancel[0] != nil {
		cancel[0].AddDoneCallback(func(*Future) { stop() }, nil, nil)
	}
	l.objects++
	go func() {
		res, err := gaiLookup(ctx, host, service, family, socktype, proto, flags)
		if _, perr := l.CallSoonThreadsafe(func() {
			l.objects--
			stop()
			done(res, err)
		}, nil); perr != nil {
			stop() // the loop is gone (cannot happen: objects > 0 keeps it open)
		}
	}()
}

// gaiTypes expands the socket types getaddrinfo reports for one address.
func gaiTypes(socktype, proto int, rawOK bool) ([][2]int, error) {
	switch socktype {
	case 0:
		switch proto {
		case 0:
			t := [][2]int{{unix.SOCK_STREAM, unix.IPPROTO_TCP}, {unix.SOCK_DGRAM, unix.IPPROTO_UDP}}
			if rawOK {
				t = append(t, [2]int{unix.SOCK_RAW, 0})
			}
			return t, nil
		case unix.IPPROTO_TCP:
			return [][2]int{{unix.SOCK_STREAM, proto}}, nil
		case unix.IPPROTO_UDP:
			return [][2]int{{unix.SOCK_DGRAM, proto}}, nil
		}
		return [][2]int{{unix.SOCK_RAW, proto}}, nil
	case unix.SOCK_STREAM:
		if proto == 0 {
			proto = unix.IPPROTO_TCP
		}
		return [][2]int{{socktype, proto}}, nil
	case unix.SOCK_DGRAM:
		if proto == 0 {
			proto = unix.IPPROTO_UDP
		}
		return [][2]int{{socktype, proto}}, nil
	case unix.SOCK_RAW, unix.SOCK_SEQPACKET:
		return [][2]int{{socktype, proto}}, nil
	}
	return nil, &ResolveError{Op: "getaddrinfo", Reason: reasonSockType}
}

func gaiCheck(family, flags int) error {
	switch family {
	case unix.AF_UNSPEC, unix.AF_INET, unix.AF_INET6:
	default:
		return &ResolveError{Op: "getaddrinfo", Reason: reasonFamily}
	}
	const known = AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED |
		AI_ALL | AI_ADDRCONFIG | AI_NUMERICSERV
	if flags&^known != 0 {
		return &ResolveError{Op: "getaddrinfo", Reason: "Bad value for ai_flags"}
	}
	return nil
}

// gaiPort parses a numeric service; ok is false for a name.
func gaiPort(service string) (port int, ok bool, err error) {
	if service == "" {
		return 0, true, nil
	}
	n, perr := strconv.Atoi(service)
	if perr != nil {
		return 0, false, nil
	}
	if n < 0 || n > 65535 {
		return 0, true, &ResolveError{Op: "getaddrinfo", Host: service, Reason: reasonService}
	}
	return n, true, nil
}

// gaiNumeric resolves without blocking when host is empty or numeric and
// service is empty or numeric; ok is false otherwise.
func gaiNumeric(host, service string, family, socktype, proto, flags int) ([]AddrInfo, error, bool) {
	if err := gaiCheck(family, flags); err != nil {
		return nil, err, true
	}
	port, ok, err := gaiPort(service)
	if err != nil {
		return nil, err, true
	}
	if !ok {
		if flags&AI_NUMERICSERV != 0 {
			return nil, &ResolveError{Op: "getaddrinfo", Host: service, Reason: reasonNoName}, true
		}
		return nil, nil, false
	}
	var ips []netip.Addr
	switch {
	case host == "":
		if flags&AI_PASSIVE != 0 {
			ips = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
		} else {
			ips = []netip.Addr{netip.IPv6Loopback(), netip.AddrFrom4([4]byte{127, 0, 0, 1})}
		}
		ips = filterFamily(ips, family, false)
	default:
		ip, perr := netip.ParseAddr(host)
		if perr != nil {
			if flags&AI_NUMERICHOST != 0 {
				return nil, &ResolveError{Op: "getaddrinfo", Host: host, Reason: reasonNoName}, true
			}
			return nil, nil, false
		}
		if ip.Is4In6() && family != unix.AF_INET6 {
			ip = ip.Unmap()
		}
		ips = filterFamily([]netip.Addr{ip}, family, flags&AI_V4MAPPED != 0)
		if len(ips) == 0 {
			return nil, &ResolveError{Op: "getaddrinfo", Host: host, Reason: reasonAddrFam}, true
		}
	}
	res, err := gaiBuild(ips, host, port, socktype, proto, flags, true)
	return res, err, true
}

// filterFamily keeps the addresses of family (all for AF_UNSPEC); with
// v4mapped, IPv4 addresses become v4-mapped IPv6 ones when family is
// AF_INET6 and no IPv6 address is there.
func filterFamily(ips []netip.Addr, family int, v4mapped bool) []netip.Addr {
	if family == unix.AF_UNSPEC {
		return ips
	}
	var out []netip.Addr
	for _, ip := range ips {
		if (family == unix.AF_INET) == ip.Is4() {
			out = append(out, ip)
		}
	}
	if len(out) == 0 && family == unix.AF_INET6 && v4mapped {
		for _, ip := range ips {
			if ip.Is4() {
				out = append(out, netip.AddrFrom16(ip.As16()))
			}
		}
	}
	return out
}

func gaiBuild(ips []netip.Addr, canon string, port, socktype, proto, flags int, rawOK bool) ([]AddrInfo, error) {
	types, err := gaiTypes(socktype, proto, rawOK)
	if err != nil {
		return nil, err
	}
	var res []AddrInfo
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if seen[ip] {
			continue
		}
		seen[ip] = true
		sa := sockaddrFromAddr(ip, port)
		if ip.Is4In6() {
			// Keep a v4-mapped address (AI_V4MAPPED) as IPv6.
			sa = &unix.SockaddrInet6{Addr: ip.As16(), Port: port}
		}
		for _, tp := range types {
			res = append(res, AddrInfo{Family: familyOf(sa), Type: tp[0], Proto: tp[1], Addr: sa})
		}
	}
	if len(res) > 0 && flags&AI_CANONNAME != 0 {
		res[0].Canonname = canon
	}
	return res, nil
}

// gaiLookup is the blocking part of getaddrinfo (run on a goroutine).
func gaiLookup(ctx context.Context, host, service string, family, socktype, proto, flags int) ([]AddrInfo, error) {
	port, ok, err := gaiPort(service)
	if err != nil {
		return nil, err
	}
	rawOK := ok
	if !ok {
		// A service name: the types it is defined for (never SOCK_RAW).
		st := socktype
		if st == 0 {
			switch proto {
			case unix.IPPROTO_TCP:
				st = unix.SOCK_STREAM
			case unix.IPPROTO_UDP:
				st = unix.SOCK_DGRAM
			}
		}
		bad := &ResolveError{Op: "getaddrinfo", Host: service, Reason: reasonService}
		switch st {
		case unix.SOCK_STREAM:
			if port, err = lookupService("tcp", service); err != nil {
				return nil, bad
			}
		case unix.SOCK_DGRAM:
			if port, err = lookupService("udp", service); err != nil {
				return nil, bad
			}
		case 0:
			tp, terr := lookupService("tcp", service)
			up, uerr := lookupService("udp", service)
			switch {
			case terr == nil && uerr == nil:
				port = tp
			case terr == nil:
				port, socktype = tp, unix.SOCK_STREAM
			case uerr == nil:
				port, socktype = up, unix.SOCK_DGRAM
			default:
				return nil, bad
			}
		default:
			return nil, bad
		}
	}
	var ips []netip.Addr
	canon := host
	if _, perr := netip.ParseAddr(host); perr == nil || host == "" {
		// A numeric (or no) host with a service name.
		res, err, _ := gaiNumeric(host, strconv.Itoa(port), family, socktype, proto, flags|AI_NUMERICSERV)
		if err == nil && !rawOK {
			res = dropRaw(res)
		}
		return res, err
	}
	network := "ip"
	switch family {
	case unix.AF_INET:
		network = "ip4"
	case unix.AF_INET6:
		network = "ip6"
		if flags&AI_V4MAPPED != 0 {
			network = "ip"
		}
	}
	found, lerr := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if lerr != nil {
		reason := reasonNoName
		var de *net.DNSError
		if errors.As(lerr, &de) && !de.IsNotFound {
			reason = "Temporary failure in name resolution: " + de.Err
		}
		if ctx.Err() != nil {
			return nil, ErrCancelled
		}
		return nil, &ResolveError{Op: "getaddrinfo", Host: host, Reason: reason}
	}
	for _, ip := range found {
		if ip.Is4In6() {
			ip = ip.Unmap()
		}
		ips = append(ips, ip)
	}
	if family == unix.AF_INET6 && flags&AI_V4MAPPED != 0 {
		var v6 []netip.Addr
		for _, ip := range ips {
			if ip.Is6() {
				v6 = append(v6, ip)
			}
		}
		if len(v6) == 0 || flags&AI_ALL != 0 {
			for _, ip := range ips {
				if ip.Is4() {
					v6 = append(v6, netip.AddrFrom16(ip.As16()))
				}
			}
		}
		ips = v6
	} else {
		ips = filterFamily(ips, family, false)
	}
	if flags&AI_ADDRCONFIG != 0 {
		ips = addrConfigFilter(ips)
	}
	if len(ips) == 0 {
		return nil, &ResolveError{Op: "getaddrinfo", Host: host, Reason: reasonNoName}
	}
	if flags&AI_CANONNAME != 0 {
		if cn, err := net.DefaultResolver.LookupCNAME(ctx, host); err == nil && cn != "" {
			canon = strings.TrimSuffix(cn, ".")
		}
	}
	res, err := gaiBuild(ips, canon, port, socktype, proto, flags, rawOK)
	return res, err
}

func dropRaw(res []AddrInfo) []AddrInfo {
	out := res[:0]
	for _, r := range res {
		if r.Type != unix.SOCK_RAW {
			out = append(out, r)
		}
	}
	return out
}

// addrConfigFilter implements AI_ADDRCONFIG as glibc does: IPv4 results only
// if a non-loopback IPv4 address is configured, IPv6 ones only if a
// non-loopback, non-link-local IPv6 address is.
func addrConfigFilter(ips []netip.Addr) []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ips
	}
	var has4, has6 bool
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if ip.Is4() && !ip.IsLoopback() {
			has4 = true
		}
		if ip.Is6() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			has6 = true
		}
	}
	var out []netip.Addr
	for _, ip := range ips {
		if (ip.Is4() && has4) || (ip.Is6() && has6) {
			out = append(out, ip)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Services (/etc/services), for service names and NI_NUMERICSERV-less
// getnameinfo. Loaded once, on a goroutine.

var services struct {
	once   sync.Once
	loaded atomic.Bool
	byName map[string]int // "tcp/http" -> 80
	byPort map[string]string
}

func loadServices() {
	services.once.Do(func() {
		byName := map[string]int{}
		byPort := map[string]string{}
		if f, err := os.Open("/etc/services"); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := sc.Text()
				if i := strings.IndexByte(line, '#'); i >= 0 {
					line = line[:i]
				}
				fs := strings.Fields(line)
				if len(fs) < 2 {
					continue
				}
				pp := strings.SplitN(fs[1], "/", 2)
				if len(pp) != 2 {
					continue
				}
				port, err := strconv.Atoi(pp[0])
				if err != nil || port < 0 || port > 65535 {
					continue
				}
				proto := pp[1]
				key := proto + "/" + strconv.Itoa(port)
				if _, ok := byPort[key]; !ok {
					byPort[key] = fs[0]
				}
				for _, name := range append([]string{fs[0]}, fs[2:]...) {
					if _, ok := byName[proto+"/"+name]; !ok {
						byName[proto+"/"+name] = port
					}
				}
			}
			f.Close()
		}
		services.byName, services.byPort = byName, byPort
		services.loaded.Store(true)
	})
}

func lookupService(network, name string) (int, error) {
	loadServices()
	if p, ok := services.byName[network+"/"+name]; ok {
		return p, nil
	}
	return 0, errors.New("unknown service")
}

func serviceName(port int, dgram bool) string {
	loadServices()
	proto := "tcp"
	if dgram {
		proto = "udp"
	}
	if n, ok := services.byPort[proto+"/"+strconv.Itoa(port)]; ok {
		return n
	}
	return strconv.Itoa(port)
}

// ---------------------------------------------------------------------------
// getnameinfo.

// Getnameinfo returns the host and service names of a numeric address
// (asyncio's getnameinfo(sockaddr, flags)); the result is a NameInfo. A host
// that is not a numeric address fails with a *ResolveError.
func (l *Loop) Getnameinfo(host string, port, flags int) (*Future, error) {
	if l.closed {
		return nil, ErrClosed
	}
	if port < 0 || port > 65535 {
		return nil, ErrInvalid
	}
	fut := l.NewFuture()
	ip, err := netip.ParseAddr(host)
	if err != nil {
		fut.SetException(&ResolveError{Op: "getnameinfo", Host: host, Reason: reasonNoName + " (the host must be a numeric address)"})
		return fut, nil
	}
	const known = NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD | NI_DGRAM
	if flags&^known != 0 {
		fut.SetException(&ResolveError{Op: "getnameinfo", Reason: "Bad value for flags"})
		return fut, nil
	}
	if flags&NI_NUMERICHOST != 0 && (flags&NI_NUMERICSERV != 0 || services.loaded.Load()) {
		fut.SetResult(nameInfo(context.Background(), ip, port, flags))
		return fut, nil
	}
	ctx, stop := context.WithCancel(context.Background())
	fut.AddDoneCallback(func(*Future) { stop() }, nil, nil)
	l.objects++
	go func() {
		res := nameInfo(ctx, ip, port, flags)
		l.CallSoonThreadsafe(func() {
			l.objects--
			stop()
			if fut.Done() {
				return
			}
			if e, ok := res.(error); ok {
				fut.SetException(e)
			} else {
				fut.SetResult(res)
			}
		}, nil)
	}()
	return fut, nil
}

// nameInfo returns a NameInfo or an error.
func nameInfo(ctx context.Context, ip netip.Addr, port, flags int) any {
	var ni NameInfo
	if flags&NI_NUMERICSERV != 0 {
		ni.Service = strconv.Itoa(port)
	} else {
		ni.Service = serviceName(port, flags&NI_DGRAM != 0)
	}
	numeric := ip.String()
	if flags&NI_NUMERICHOST != 0 {
		ni.Host = numeric
		return ni
	}
	names, err := net.DefaultResolver.LookupAddr(ctx, ip.WithZone("").String())
	if err != nil || len(names) == 0 {
		if flags&NI_NAMEREQD != 0 {
			return &ResolveError{Op: "getnameinfo", Host: numeric, Reason: reasonNameReqd}
		}
		ni.Host = numeric
		return ni
	}
	name := strings.TrimSuffix(names[0], ".")
	if flags&NI_NOFQDN != 0 {
		if i := strings.IndexByte(name, '.'); i > 0 {
			name = name[:i]
		}
	}
	ni.Host = name
	return ni
}
