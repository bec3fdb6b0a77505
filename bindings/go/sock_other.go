//go:build !linux

package asyncloop

import "golang.org/x/sys/unix"

// sockDomain is fd's address family (0 if unknown), from its local
// address where there is no SO_DOMAIN. This only keeps the package
// building (go vet) off Linux: the binding is tested on Linux only.
func sockDomain(fd int) int {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0
	}
	switch sa.(type) {
	case *unix.SockaddrUnix:
		return unix.AF_UNIX
	case *unix.SockaddrInet4:
		return unix.AF_INET
	case *unix.SockaddrInet6:
		return unix.AF_INET6
	}
	return 0
}
