package asyncloop

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"strconv"
	"syscall"
)

//go:generate python3 ../../tools/gen_abi.py

// Error is a failure reported by the library: Code is a negative ALOOP_E*
// code, Name its name ("ALOOP_ECONNREFUSED"), Message the most detailed
// description available (the library's last-error text, else the code's
// description).
//
// Operations on the network wrap it in a *net.OpError (Op, Net, Source,
// Addr), name lookups in a *net.DNSError, subprocess starts in an
// *fs.PathError, as the standard library does; errors.Is and errors.As see
// through them:
//
//   - errors.Is(err, syscall.ECONNREFUSED) holds for codes that equal -errno
//     (Unwrap returns the syscall.Errno), so fs.ErrNotExist, fs.ErrPermission
//     ... work too;
//   - errors.Is(err, os.ErrDeadlineExceeded) holds for ALOOP_ETIMEDOUT, and
//     Timeout() reports it (net.Error);
//   - errors.Is(err, context.Canceled) holds for ALOOP_ECANCELED;
//   - errors.Is(err, asyncloop.ErrClosed) (or any *Error) compares codes.
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

// Is reports whether target is an *Error with the same code, the
// syscall.Errno equal to -Code, os.ErrDeadlineExceeded for ALOOP_ETIMEDOUT,
// context.Canceled for ALOOP_ECANCELED, or net.ErrClosed for ALOOP_ECLOSED.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		return t.Code == e.Code
	case syscall.Errno:
		errno, ok := e.Errno()
		return ok && errno == t
	}
	switch target {
	case os.ErrDeadlineExceeded:
		return e.Code == ETIMEDOUT
	case context.Canceled:
		return e.Code == ECANCELED
	case net.ErrClosed:
		return e.Code == ECLOSED
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

// Timeout reports whether the error is a time-out (ALOOP_ETIMEDOUT), as
// net.Error.
func (e *Error) Timeout() bool { return e.Code == ETIMEDOUT }

// Temporary reports whether retrying may succeed (ALOOP_EAGAIN), as the
// deprecated net.Error method.
func (e *Error) Temporary() bool { return e.Code == EAGAIN || e.Code == ETIMEDOUT }

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

func errInvalid(msg string) error { return newError(EINVAL, msg) }

// timeoutError is what an operation whose context's deadline passed
// returns (inside a *net.OpError for network operations): it is
// context.DeadlineExceeded and os.ErrDeadlineExceeded, and a net.Error
// whose Timeout is true, as the standard library's i/o time-outs.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == os.ErrDeadlineExceeded
}

// ctxError maps a context's error to what an operation returns.
func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return timeoutError{}
	}
	return err
}

// opWrapper wraps the error of a network operation as the net package
// does.
func opWrapper(op, network string, source, addr net.Addr) func(error) error {
	return func(err error) error {
		if err == nil {
			return nil
		}
		return &net.OpError{Op: op, Net: network, Source: source, Addr: addr, Err: err}
	}
}

// dnsWrapper wraps a failed lookup of name as a *net.DNSError (whose
// Unwrap returns the library's error).
func dnsWrapper(name string) func(error) error {
	return func(err error) error {
		if err == nil {
			return nil
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != ERESOLVE {
			return &net.OpError{Op: "lookup", Net: "ip", Err: err}
		}
		msg := e.Message
		return &net.DNSError{
			Err:        msg,
			Name:       name,
			IsNotFound: msg == "Name or service not known" || msg == "No address associated with hostname",
			IsTimeout:  e.Code == ETIMEDOUT,
			UnwrapErr:  e,
		}
	}
}

// pathWrapper wraps the error of an operation on a file as *fs.PathError.
func pathWrapper(op, path string) func(error) error {
	return func(err error) error {
		if err == nil {
			return nil
		}
		return &fs.PathError{Op: op, Path: path, Err: err}
	}
}

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

// codeOf maps an error to an ALOOP_E* code (0 for nil).
func codeOf(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return -int(errno)
	}
	if errors.Is(err, context.Canceled) {
		return ECANCELED
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ETIMEDOUT
	}
	return EUNKNOWN
}
