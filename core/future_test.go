package core

import (
	"errors"
	"strings"
	"testing"
)

func TestFutureResult(t *testing.T) {
	h := newHarness(t)
	f := h.l.NewFuture()
	if f.Loop() != h.l || f.Done() || f.Cancelled() {
		t.Fatalf("new future: Loop ok=%v Done=%v Cancelled=%v", f.Loop() == h.l, f.Done(), f.Cancelled())
	}
	if _, err := f.Result(); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("Result of a pending future: %v, want ErrInvalidState", err)
	}
	if err := f.Exception(); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("Exception of a pending future: %v, want ErrInvalidState", err)
	}
	if err := f.SetResult("v"); err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(); v != "v" || err != nil || !f.Done() || f.Exception() != nil {
		t.Fatalf("done future: %v %v Done=%v Exception=%v", v, err, f.Done(), f.Exception())
	}
	if err := f.SetResult("w"); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("second SetResult: %v, want ErrInvalidState", err)
	}
	if err := f.SetException(errors.New("x")); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("SetException on a done future: %v, want ErrInvalidState", err)
	}
	if f.Cancel("late") || f.Cancelled() {
		t.Fatalf("Cancel of a done future succeeded")
	}
	if v, _ := f.Result(); v != "v" {
		t.Fatalf("result changed to %v", v)
	}
}

func TestFutureException(t *testing.T) {
	h := newHarness(t)
	f := h.l.NewFuture()
	if err := f.SetException(nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetException(nil): %v, want ErrInvalid", err)
	}
	if f.Done() {
		t.Fatalf("SetException(nil) completed the future")
	}
	boom := &OpError{Op: "connect", Err: errors.New("boom")}
	if err := f.SetException(boom); err != nil {
		t.Fatal(err)
	}
	v, err := f.Result()
	if v != nil || err != boom || f.Exception() != boom || f.Cancelled() {
		t.Fatalf("failed future: %v %v %v", v, err, f.Exception())
	}
}

func TestFutureCancel(t *testing.T) {
	h := newHarness(t)
	f := h.l.NewFuture()
	if !f.Cancel("") {
		t.Fatalf("Cancel of a pending future returned false")
	}
	if !f.Cancelled() || !f.Done() {
		t.Fatalf("Cancelled=%v Done=%v", f.Cancelled(), f.Done())
	}
	if _, err := f.Result(); err != ErrCancelled {
		t.Fatalf("Result of a cancelled future: %v, want ErrCancelled", err)
	}
	if err := f.Exception(); err != ErrCancelled {
		t.Fatalf("Exception of a cancelled future: %v", err)
	}
	if f.Cancel("again") {
		t.Fatalf("second Cancel returned true")
	}
	if err := f.SetResult(1); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("SetResult on a cancelled future: %v", err)
	}

	g := h.l.NewFuture()
	g.Cancel("why-not")
	_, err := g.Result()
	if !errors.Is(err, ErrCancelled) || !IsCancelled(err) || !strings.Contains(err.Error(), "why-not") {
		t.Fatalf("cancel message lost: %v", err)
	}
	if IsCancelled(errors.New("x")) {
		t.Fatalf("IsCancelled of a plain error")
	}
}

// Done callbacks are scheduled with call_soon, never called inline, in
// registration order; release hooks run once, after the callback.
func TestFutureDoneCallbacksScheduled(t *testing.T) {
	h := newHarness(t)
	l := h.l
	f := l.NewFuture()
	var log []string
	for _, name := range []string{"a", "b", "c"} {
		f.AddDoneCallback(func(got *Future) {
			h.onLoop("done callback")
			if got != f {
				t.Errorf("callback got another future")
			}
			if v, _ := got.Result(); v != 7 {
				t.Errorf("callback sees result %v", v)
			}
			log = append(log, name)
		}, func() { log = append(log, "rel-"+name) }, nil)
	}
	l.CallSoon(func() { log = append(log, "earlier") }, nil)
	f.SetResult(7)
	if len(log) != 0 {
		t.Fatalf("SetResult ran callbacks inline: %v", log)
	}
	l.Run(RunNoWait)
	want := "earlier,a,rel-a,b,rel-b,c,rel-c"
	if got := strings.Join(log, ","); got != want {
		t.Fatalf("order %s, want %s", got, want)
	}

	// On a done future, AddDoneCallback schedules; it does not call inline.
	log = nil
	f.AddDoneCallback(func(*Future) { log = append(log, "late") }, nil, nil)
	if len(log) != 0 {
		t.Fatalf("AddDoneCallback on a done future ran inline")
	}
	l.Run(RunNoWait)
	if strings.Join(log, ",") != "late" {
		t.Fatalf("late callback: %v", log)
	}

	// Cancel and SetException schedule callbacks too.
	for _, complete := range []func(*Future){
		func(f *Future) { f.Cancel("x") },
		func(f *Future) { f.SetException(errors.New("e")) },
	} {
		g := l.NewFuture()
		n := 0
		g.AddDoneCallback(func(*Future) { n++ }, nil, nil)
		complete(g)
		if n != 0 {
			t.Fatalf("completion ran a callback inline")
		}
		l.Run(RunNoWait)
		if n != 1 {
			t.Fatalf("callback ran %d times", n)
		}
	}
}

func TestRemoveDoneCallback(t *testing.T) {
	h := newHarness(t)
	l := h.l
	f := l.NewFuture()
	var ran []string
	rel := map[string]int{}
	add := func(name string, key any) {
		f.AddDoneCallback(func(*Future) { ran = append(ran, name) }, func() { rel[name]++ }, key)
	}
	k1, k2 := new(int), new(int)
	add("a", k1)
	add("b", k2)
	add("c", k1)
	add("d", nil)
	if n := f.RemoveDoneCallback(k1); n != 2 {
		t.Fatalf("RemoveDoneCallback removed %d, want 2", n)
	}
	if rel["a"] != 1 || rel["c"] != 1 {
		t.Fatalf("release hooks of removed callbacks: %v", rel)
	}
	if n := f.RemoveDoneCallback(k1); n != 0 {
		t.Fatalf("second RemoveDoneCallback removed %d", n)
	}
	if n := f.RemoveDoneCallback(nil); n != 0 {
		t.Fatalf("RemoveDoneCallback(nil) removed %d (nil keys must never match)", n)
	}
	if n := f.RemoveDoneCallback(new(int)); n != 0 {
		t.Fatalf("RemoveDoneCallback of an unknown key removed %d", n)
	}
	f.SetResult(nil)
	// Once scheduled, a callback can no longer be removed (asyncio).
	if n := f.RemoveDoneCallback(k2); n != 0 {
		t.Fatalf("RemoveDoneCallback after completion removed %d", n)
	}
	l.Run(RunNoWait)
	if strings.Join(ran, ",") != "b,d" {
		t.Fatalf("callbacks that ran: %v, want [b d]", ran)
	}
	for name, want := range map[string]int{"a": 1, "b": 1, "c": 1, "d": 1} {
		if rel[name] != want {
			t.Fatalf("release of %s ran %d times", name, rel[name])
		}
	}
}
