package asyncloop

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendtoRaw sends one datagram to the address raw (a struct sockaddr);
// true when the socket took all of it.
func sendtoRaw(fd int, data, raw []byte) bool {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	n, _, errno := syscall.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(data)),
		unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw)))
	return errno == 0 && int(n) == len(data)
}
