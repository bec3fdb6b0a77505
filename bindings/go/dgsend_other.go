//go:build !linux

package asyncloop

// sendtoRaw: elsewhere every datagram goes through the library.
func sendtoRaw(fd int, data, raw []byte) bool { return false }
