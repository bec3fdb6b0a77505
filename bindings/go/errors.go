package asyncloop

import (
	"strconv"
	"syscall"
)

//go:generate python3 ../../tools/gen_abi.py

// Error is a failure reported by the library: Code is a negative ALOOP_E*
// code, Name its name ("ALOOP_ECONNREFUSED"), Message the most detailed
// description available (the library's last-error text, else the code's
// description).
//
// errors.Is(err, syscall.ECONNREFUSED) holds for codes that equal -errno
// (Unwrap returns the syscall.Errno), and errors.Is(err, asyncloop.ErrClosed)
// (or any *Error) compares codes.
type Error struct {
	Code    int
	Name    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "asyncloop: " + e.Name
	}
	return "asyncloop: " + e.Message + " (" + e.Name + ")"
}

// Is reports whether target is an *Error with the same code, or the
// syscall.Errno equal to -Code.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		return t.Code == e.Code
	case syscall.Errno:
		errno, ok := e.Errno()
		return ok && errno == t
	}
	return false
}

// Unwrap returns the syscall.Errno for codes that equal -errno (so
// errors.Is(err, fs.ErrNotExist) and errors.As(err, &errno) work), else nil.
func (e *Error) Unwrap() error {
	if errno, ok := e.Errno(); ok {
		return errno
	}
	return nil
}

// Errno returns the syscall.Errno equal to -Code, if the code is an errno.
func (e *Error) Errno() (syscall.Errno, bool) {
	if e.Code < 0 && e.Code > EPANIC {
		return syscall.Errno(-e.Code), true
	}
	return 0, false
}

// codeName and codeMessage work without the library (static table), with
// the library's answer preferred when it is loaded.
func codeName(code int) string {
	if lib != nil {
		return lib.errName(int32(code))
	}
	if e, ok := errorTable[code]; ok {
		return "ALOOP_" + e[0]
	}
	if code == 0 {
		return "ALOOP_OK"
	}
	return "ALOOP_EUNKNOWN"
}

func codeMessage(code int) string {
	if lib != nil {
		return lib.strerror(int32(code))
	}
	if e, ok := errorTable[code]; ok {
		return e[1]
	}
	return "unknown error (" + strconv.Itoa(code) + ")"
}

// newError builds an *Error for code with an optional detailed message.
func newError(code int, detail string) *Error {
	if detail == "" {
		detail = codeMessage(code)
	}
	return &Error{Code: code, Name: codeName(code), Message: detail}
}

func sentinel(code int) *Error {
	e := errorTable[code]
	return &Error{Code: code, Name: "ALOOP_" + e[0], Message: e[1]}
}

// Sentinel errors for the library's own codes (compare with errors.Is; the
// errno codes compare with syscall.Errno values instead).
var (
	ErrPanic         = sentinel(EPANIC)
	ErrClosed        = sentinel(ECLOSED)
	ErrState         = sentinel(ESTATE)
	ErrNotLoopThread = sentinel(ENOTLOOPTHREAD)
	ErrResolve       = sentinel(ERESOLVE)
	ErrStopped       = sentinel(ESTOPPED)
	ErrNoSpace       = sentinel(ENOSPACE)
	ErrTLS           = sentinel(ETLS)
	ErrCert          = sentinel(ECERT)
	ErrNoLoop        = sentinel(ENOLOOP)
	ErrUnknown       = sentinel(EUNKNOWN)
	// ErrBadHandle is ALOOP_EBADF: a NULL, released or wrong-type handle.
	ErrBadHandle = sentinel(EBADF)
	// ErrCanceled is ALOOP_ECANCELED: the future was cancelled.
	ErrCanceled = sentinel(ECANCELED)
)

// PanicError carries a panic raised by Go code inside a callback of the
// loop. The panic is recovered on the loop thread (it must not unwind
// through the library's C frames), the loop is stopped, and the run call
// re-panics with a *PanicError once it has returned.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string {
	return "asyncloop: panic in a loop callback: " + anyString(p.Value) + "\n\n" + string(p.Stack)
}

func (p *PanicError) Unwrap() error {
	if err, ok := p.Value.(error); ok {
		return err
	}
	return nil
}
