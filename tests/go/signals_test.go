package gotest

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

// The library's runtime takes the synchronous signals (SIGSEGV, SIGBUS,
// SIGFPE) and SIGPIPE and forwards them to the host's handlers when they
// happen outside its own code. The host's runtime errors must stay
// recoverable panics, and SIGPIPE must stay an EPIPE error.

type node struct{ next *node }

//go:noinline
func deref(n *node) *node { return n.next }

func recoverNil(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

func TestHostNilDereferenceAfterLoad(t *testing.T) {
	l := newLoop(t)
	// Outside any callback.
	r := recoverNil(func() { deref(nil) })
	if re, ok := r.(runtime.Error); !ok {
		t.Fatalf("nil dereference outside a callback: recovered %v", r)
	} else {
		t.Logf("outside: %v", re)
	}
	// Inside a callback (the thread is also inside the library's run).
	var inside any
	l.CallSoon(func() {
		inside = recoverNil(func() { deref(nil) })
		l.Stop()
	})
	runWithTimeout(t, l, 5*time.Second)
	if _, ok := inside.(runtime.Error); !ok {
		t.Fatalf("nil dereference inside a callback: recovered %v", inside)
	}
	// An unrecovered one inside a callback becomes a *PanicError.
	l.CallSoon(func() { deref(nil) })
	p := recoverNil(func() { l.RunForever() })
	pe, ok := p.(*asyncloop.PanicError)
	if !ok {
		t.Fatalf("got %v, want *PanicError", p)
	}
	var re runtime.Error
	if !errors.As(pe, &re) {
		t.Fatalf("PanicError does not wrap the runtime.Error: %v", pe.Value)
	}
}

func TestHostSIGPIPEAfterLoad(t *testing.T) {
	l := newLoop(t)
	check := func(where string) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		_, err = w.Write([]byte("x"))
		w.Close()
		if !errors.Is(err, syscall.EPIPE) {
			t.Errorf("%s: write to a closed pipe: %v, want EPIPE", where, err)
		}
	}
	check("outside")
	l.CallSoon(func() { check("inside a callback"); l.Stop() })
	runWithTimeout(t, l, 5*time.Second)
}
