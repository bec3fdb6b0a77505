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
	// A raw system call (no hand-off to the scheduler): MSG_DONTWAIT, it
	// does not block.
	n, _, errno := syscall.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(data)),
		unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&raw[0])), uintptr(len(raw)))
	return errno == 0 && int(n) == len(data)
}
