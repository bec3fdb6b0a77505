// Command spinlib is a tiny c-shared Go library for sigurg_test.go: it
// runs a call-free loop on one of its own goroutines and a GC in its own
// runtime, to see whether the library keeps asynchronous preemption.
package main

import "C"

import (
	"runtime"
	"time"
)

var stop bool

//go:noinline
func spin() {
	x := 0
	for !stop {
		x++
	}
	_ = x
}

//export spinlib_version
func spinlib_version() C.int { return 1 }

// spinlib_spin_gc starts a call-free spinner in the library's runtime and
// runs a GC there. It only returns if the library's runtime can preempt the
// spinner asynchronously.
//
//export spinlib_spin_gc
func spinlib_spin_gc() C.int {
	runtime.GOMAXPROCS(2)
	go spin()
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	return 1
}

func main() {}
