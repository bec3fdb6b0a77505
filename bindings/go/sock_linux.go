package asyncloop

import "golang.org/x/sys/unix"

// sockDomain is fd's address family (0 if unknown).
func sockDomain(fd int) int {
	d, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	return d
}

// getaddrinfo and getnameinfo flags (glibc's <netdb.h> values), for
// GetAddrInfo and GetNameInfo.
const (
	AIPassive     = 0x1
	AICanonName   = 0x2
	AINumericHost = 0x4
	AIV4Mapped    = 0x8
	AIAll         = 0x10
	AIAddrConfig  = 0x20
	AINumericServ = 0x400

	NINumericHost = 0x1
	NINumericServ = 0x2
	NINoFQDN      = 0x4
	NINameReqd    = 0x8
	NIDgram       = 0x10
)
