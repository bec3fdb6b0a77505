package core

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Errors of the loop that have no errno. OS errors are returned as
// unix.Errno (possibly wrapped in *OpError).
var (
	ErrClosed        = errors.New("object is closed")
	ErrRunning       = errors.New("this event loop is already running")
	ErrInvalidState  = errors.New("invalid state")
	ErrCancelled     = errors.New("operation canceled")
	ErrNotLoopThread = errors.New("non-thread-safe operation invoked on an event loop other than the current one")
	ErrStopped       = errors.New("event loop stopped before future completed")
	ErrResolve       = errors.New("name resolution failed")
	ErrBusy          = errors.New("resource busy")
	ErrInvalid       = errors.New("invalid argument")
)

// OpError is an OS error with the operation and address that caused it.
type OpError struct {
	Op   string
	Addr string
	Err  error
}

func (e *OpError) Error() string {
	if e.Addr != "" {
		return fmt.Sprintf("%s %s: %v", e.Op, e.Addr, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// Errno returns the errno inside err, or 0.
func Errno(err error) unix.Errno {
	var en unix.Errno
	if errors.As(err, &en) {
		return en
	}
	return 0
}

// CodedError is an error carrying a numeric code chosen by a host (set
// through a foreign ABI), kept as is.
type CodedError struct {
	Code int
	Msg  string
}

func (e *CodedError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return fmt.Sprintf("error %d", e.Code)
}

// Is lets CodedError match the sentinel or errno of the same code.
func (e *CodedError) Is(target error) bool {
	if en, ok := target.(unix.Errno); ok {
		return e.Code == -int(en)
	}
	return false
}
