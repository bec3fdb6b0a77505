package core

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

var idleGarbage [][]byte

// residentHeap: heap memory the runtime holds and has not returned to the OS.
func residentHeap() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapSys - ms.HeapReleased
}

// A loop that did work and then has nothing to do for a second gives the
// garbage of that work back to the OS, once; an idle loop with nothing done
// since does not wake up for it again.
func TestIdleLoopGivesMemoryBack(t *testing.T) {
	h := newHarness(t)
	// What earlier tests of the package left free is returned first, so
	// that the burst below must grow the resident heap.
	debug.FreeOSMemory()
	base := residentHeap()
	const chunks, size = 128, 256 << 10 // 32 MiB
	h.l.CallSoon(func() {
		for i := 0; i < chunks; i++ {
			idleGarbage = append(idleGarbage, make([]byte, size))
			idleGarbage[i][0] = 1
		}
		idleGarbage = nil
	}, nil)
	if err := h.l.RunOnceTimeout(0); err != nil {
		t.Fatal(err)
	}
	grown := residentHeap()
	if grown < base+chunks*size/2 {
		t.Fatalf("the heap did not grow: %d → %d", base, grown)
	}
	// Nothing to do for 2.5 s: one probing wait of a second gives the
	// memory back, then one wait until the timer.
	fired := false
	h.l.CallLater(2.5, func() { fired = true; h.l.Stop() }, nil)
	it0 := h.l.iteration
	h.runDefault(10 * time.Second)
	if !fired {
		t.Fatal("the timer did not fire")
	}
	after := residentHeap()
	t.Logf("resident heap: %d KiB before, %d KiB with garbage, %d KiB after an idle second",
		base>>10, grown>>10, after>>10)
	if after > base+chunks*size/4 {
		t.Errorf("resident heap %d KiB after the idle second, %d KiB with the garbage: not given back", after>>10, grown>>10)
	}
	if n := h.l.iteration - it0; n > 3 {
		t.Errorf("%d iterations in an idle 2.5 s (want the probe, the wait for the timer, the stop): the idle loop kept waking up", n)
	}
}
