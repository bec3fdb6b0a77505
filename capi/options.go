package main

/*
#include "trampolines.h"
*/
import "C"

import "unsafe"

// Size-prefixed option structs (aloop_*_options_t start with `size_t size`
// so that they can grow): a field is read only when the struct's size covers
// it whole; a smaller (older) struct, or none (NULL), leaves it at its
// default. Fields are read by name: field(o, &o.backlog, 100).

// orEmpty returns p, or for NULL an empty struct (size 0: every field takes
// its default).
func orEmpty[S any](p *S) *S {
	if p == nil {
		return new(S)
	}
	return p
}

// field returns *f, a field of the size-prefixed struct *s, or dflt when s's
// size does not cover it.
func field[S, T any](s *S, f *T, dflt T) T {
	size := uintptr(*(*C.size_t)(unsafe.Pointer(s)))
	if uintptr(unsafe.Pointer(f))-uintptr(unsafe.Pointer(s))+unsafe.Sizeof(*f) > size {
		return dflt
	}
	return *f
}

// handleField is field for a member that holds a handle (declared as a
// pointer): its value as an integer, 0 when absent, so that Go never holds
// a handle in a pointer-typed variable: handleField(o, unsafe.Pointer(&o.tls)).
func handleField[S any](s *S, f unsafe.Pointer) C.uintptr_t {
	return field(s, (*C.uintptr_t)(f), 0)
}
