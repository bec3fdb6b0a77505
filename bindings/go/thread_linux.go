package asyncloop

import "golang.org/x/sys/unix"

// threadID is the calling OS thread's id, as the library tells threads
// apart (the caller holds its thread).
func threadID() int { return unix.Gettid() }
