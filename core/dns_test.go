package core

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func aiString(ai AddrInfo) string {
	h, p := SockaddrString(ai.Addr)
	return itoa(ai.Family) + "/" + itoa(ai.Type) + "/" + itoa(ai.Proto) + " " + h + ":" + itoa(p)
}

func TestGetaddrinfoNumericIsImmediate(t *testing.T) {
	h := newHarness(t)
	f, err := h.l.Getaddrinfo("127.0.0.1", "80", 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Done() {
		t.Fatal("a numeric getaddrinfo went through a thread hop")
	}
	v, err := f.Result()
	if err != nil {
		t.Fatal(err)
	}
	res := v.([]AddrInfo)
	want := []string{"2/1/6 127.0.0.1:80", "2/2/17 127.0.0.1:80", "2/3/0 127.0.0.1:80"}
	if len(res) != len(want) {
		t.Fatalf("got %d results", len(res))
	}
	for i, w := range want {
		if aiString(res[i]) != w {
			t.Errorf("result %d = %s, want %s", i, aiString(res[i]), w)
		}
	}
	// Passive, no host: the wildcard addresses (IPv4 first, as glibc).
	f, _ = h.l.Getaddrinfo("", "0", 0, unix.SOCK_STREAM, 0, AI_PASSIVE)
	v, _ = f.Result()
	res = v.([]AddrInfo)
	if len(res) != 2 || aiString(res[0]) != "2/1/6 0.0.0.0:0" || aiString(res[1]) != "10/1/6 :::0" {
		t.Errorf("passive: %v", res)
	}
	// No host, not passive: loopback (::1 first, as glibc).
	f, _ = h.l.Getaddrinfo("", "7", unix.AF_INET, unix.SOCK_DGRAM, 0, 0)
	v, _ = f.Result()
	if res = v.([]AddrInfo); len(res) != 1 || aiString(res[0]) != "2/2/17 127.0.0.1:7" {
		t.Errorf("loopback: %v", res)
	}
	// Family mismatch, bad port, AI_NUMERICHOST with a name.
	for _, c := range []struct {
		host, port     string
		fam, typ, flag int
	}{
		{"::1", "80", unix.AF_INET, 0, 0},
		{"127.0.0.1", "70000", 0, 0, 0},
		{"localhost", "80", 0, 0, AI_NUMERICHOST},
		{"127.0.0.1", "http", 0, 0, AI_NUMERICSERV},
		{"127.0.0.1", "80", unix.AF_UNIX, 0, 0},
	} {
		f, err := h.l.Getaddrinfo(c.host, c.port, c.fam, c.typ, 0, c.flag)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Done() {
			t.Errorf("%+v: not done at once", c)
			continue
		}
		if _, err := f.Result(); !errors.Is(err, ErrResolve) {
			t.Errorf("%+v: %v, want a resolve error", c, err)
		}
	}
	// AI_V4MAPPED.
	f, _ = h.l.Getaddrinfo("127.0.0.1", "1", unix.AF_INET6, unix.SOCK_STREAM, 0, AI_V4MAPPED)
	v, err = f.Result()
	if err != nil || aiString(v.([]AddrInfo)[0]) != "10/1/6 ::ffff:127.0.0.1:1" {
		t.Errorf("v4mapped: %v %v", v, err)
	}
}

func TestGetaddrinfoNames(t *testing.T) {
	h := newHarness(t)
	f, _ := h.l.Getaddrinfo("localhost", "http", 0, unix.SOCK_STREAM, 0, AI_CANONNAME)
	if f.Done() {
		t.Fatal("a name lookup finished at once (it must not block the loop)")
	}
	v, err := h.await(f, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res := v.([]AddrInfo)
	found := false
	for _, ai := range res {
		host, port := SockaddrString(ai.Addr)
		if port != 80 || ai.Type != unix.SOCK_STREAM || ai.Proto != unix.IPPROTO_TCP {
			t.Errorf("result %s", aiString(ai))
		}
		found = found || host == "127.0.0.1"
	}
	if !found || res[0].Canonname == "" {
		t.Errorf("localhost: %v canon %q", res, res[0].Canonname)
	}
	f, _ = h.l.Getaddrinfo("nonexistent.invalid", "", 0, 0, 0, 0)
	if _, err := h.await(f, 20*time.Second); !errors.Is(err, ErrResolve) {
		t.Errorf("nonexistent.invalid: %v", err)
	}
	// Cancelling abandons the lookup; the loop becomes closable.
	f, _ = h.l.Getaddrinfo("localhost", "", 0, 0, 0, 0)
	f.Cancel("")
	h.runUntil("loop closable", 10*time.Second, func() bool { return h.l.Close() == nil })
}

func TestGetnameinfo(t *testing.T) {
	h := newHarness(t)
	f, _ := h.l.Getnameinfo("127.0.0.1", 80, NI_NUMERICHOST|NI_NUMERICSERV)
	if !f.Done() {
		t.Fatal("numeric getnameinfo went through a thread hop")
	}
	if v, _ := f.Result(); v.(NameInfo) != (NameInfo{"127.0.0.1", "80"}) {
		t.Errorf("numeric: %v", v)
	}
	f, _ = h.l.Getnameinfo("127.0.0.1", 22, 0)
	v, err := h.await(f, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ni := v.(NameInfo); ni.Host != "localhost" || ni.Service != "ssh" {
		t.Errorf("127.0.0.1:22 = %+v", ni)
	}
	f, _ = h.l.Getnameinfo("not-numeric", 1, 0)
	if _, err := f.Result(); !errors.Is(err, ErrResolve) {
		t.Errorf("a name: %v", err)
	}
	// NI_NAMEREQD for an address without a name (TEST-NET-1).
	f, _ = h.l.Getnameinfo("192.0.2.200", 1, NI_NAMEREQD|NI_NUMERICSERV)
	if _, err := h.await(f, 20*time.Second); !errors.Is(err, ErrResolve) {
		t.Errorf("NI_NAMEREQD: %v", err)
	}
}

func TestInterleaveAddrs(t *testing.T) {
	mk := func(s ...string) []unix.Sockaddr {
		var out []unix.Sockaddr
		for _, a := range s {
			out = append(out, sockaddrFromAddr(netip.MustParseAddr(a), 1))
		}
		return out
	}
	str := func(in []unix.Sockaddr) string {
		s := ""
		for _, sa := range in {
			h, _ := SockaddrString(sa)
			s += h + " "
		}
		return s
	}
	in := mk("::1", "::2", "::3", "1.0.0.1", "1.0.0.2")
	if got := str(interleaveAddrs(in, 1)); got != "::1 1.0.0.1 ::2 1.0.0.2 ::3 " {
		t.Errorf("interleave 1: %s", got)
	}
	if got := str(interleaveAddrs(in, 2)); got != "::1 ::2 1.0.0.1 ::3 1.0.0.2 " {
		t.Errorf("interleave 2: %s", got)
	}
	if got := str(interleaveAddrs(in, 0)); got != str(in) {
		t.Errorf("interleave 0: %s", got)
	}
}
