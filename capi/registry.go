package main

/*
#include "trampolines.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/asyncloop/asyncloop/core"
)

// ---------------------------------------------------------------------------
// Handle table: slots with generation counters. A handle is
// kind<<56 | generation<<32 | index, never 0 and never a canonical address.
//
// Lookups (every export) take no lock: the slots live in fixed pages that
// never move, and a slot's meta word (generation and kind) is read before
// and after its object, so a lookup sees either the object of that
// generation or nothing. Creating and releasing a handle take a short lock
// (the free list).

type kind uint8

const (
	kLoop kind = 1 + iota
	kHandle
	kFuture
	kTransport
	kServer
	kDatagram   // aloop_datagram_t (capi/ipc.go)
	kSubprocess // aloop_subprocess_t (capi/process.go)
	kTLSConfig  // aloop_tls_config_t (capi/tls.go)
)

// table binds a kind to the Go type of its objects.
type table[T any] struct{ k kind }

var (
	loops        = table[loopObj]{kLoop}
	handles      = table[core.Handle]{kHandle}
	futures      = table[futureObj]{kFuture}
	transports   = table[core.Transport]{kTransport}
	servers      = table[serverObj]{kServer}
	datagrams    = table[datagramObj]{kDatagram}
	subprocesses = table[core.Subprocess]{kSubprocess}
	tlsConfigs   = table[core.TLSConfig]{kTLSConfig}
)

func (t table[T]) put(obj *T) uintptr        { return reg.put(t.k, unsafe.Pointer(obj)) }
func (t table[T]) get(h uintptr) *T          { return (*T)(reg.get(h, t.k)) }
func (t table[T]) set(h uintptr, obj *T)     { reg.set(h, t.k, unsafe.Pointer(obj)) }
func (t table[T]) del(h uintptr) (gone bool) { return reg.del(h, t.k) }

const (
	pageBits = 10
	pageSize = 1 << pageBits
	maxPages = 1 << 16 // 64 Mi live handles
	genMask  = 0xffffff
)

type slot struct {
	meta atomic.Uint32  // generation<<8 | kind; kind 0: free
	obj  unsafe.Pointer // read and written atomically
}

type page [pageSize]slot

type registry struct {
	pages [maxPages]atomic.Pointer[page]
	mu    sync.Mutex // put, set, del
	n     uint32     // slots ever used
	free  []uint32
}

var reg registry

func (r *registry) slot(idx uint32) *slot {
	if idx>>pageBits >= maxPages {
		return nil
	}
	p := r.pages[idx>>pageBits].Load()
	if p == nil {
		return nil
	}
	return &p[idx&(pageSize-1)]
}

// meta is the meta word of a live handle h of kind k.
func meta(h uintptr, k kind) uint32 { return (uint32(h>>32)&genMask)<<8 | uint32(k) }

func (r *registry) put(k kind, obj unsafe.Pointer) uintptr {
	r.mu.Lock()
	defer r.mu.Unlock()
	var idx uint32
	if n := len(r.free); n > 0 {
		idx = r.free[n-1]
		r.free = r.free[:n-1]
	} else {
		idx = r.n
		if idx>>pageBits >= maxPages {
			panic("asyncloop: too many live handles")
		}
		if idx&(pageSize-1) == 0 {
			r.pages[idx>>pageBits].Store(new(page))
		}
		r.n++
	}
	s := r.slot(idx)
	gen := (s.meta.Load()>>8 + 1) & genMask
	if gen == 0 {
		gen = 1
	}
	atomic.StorePointer(&s.obj, obj)
	s.meta.Store(gen<<8 | uint32(k))
	return uintptr(k)<<56 | uintptr(gen)<<32 | uintptr(idx)
}

// get returns the object of h if h is a live handle of kind k, else nil.
func (r *registry) get(h uintptr, k kind) unsafe.Pointer {
	if kind(h>>56) != k || k == 0 {
		return nil
	}
	s := r.slot(uint32(h))
	if s == nil {
		return nil
	}
	want := meta(h, k)
	if s.meta.Load() != want {
		return nil
	}
	obj := atomic.LoadPointer(&s.obj)
	if s.meta.Load() != want {
		return nil // released (and maybe reused) meanwhile
	}
	return obj
}

// set replaces the object of the live handle h.
func (r *registry) set(h uintptr, k kind, obj unsafe.Pointer) {
	if kind(h>>56) != k || k == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.slot(uint32(h)); s != nil && s.meta.Load() == meta(h, k) {
		atomic.StorePointer(&s.obj, obj)
	}
}

// del releases h; false if it was not a live handle of kind k.
func (r *registry) del(h uintptr, k kind) bool {
	if kind(h>>56) != k || k == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slot(uint32(h))
	if s == nil || s.meta.Load() != meta(h, k) {
		return false
	}
	s.meta.Store(meta(h, 0)) // free; the generation stays for the next put
	atomic.StorePointer(&s.obj, nil)
	r.free = append(r.free, uint32(h))
	return true
}

// count is the number of live handles (aloop_live_handles).
func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.n) - len(r.free)
}

// lookup returns the object of h if h is a live handle of t; otherwise nil,
// and ALOOP_EBADF with the message "<invalid> <h>".
func lookup[T any](t table[T], h C.uintptr_t, invalid string) (*T, C.int) {
	obj := t.get(uintptr(h))
	if obj == nil {
		return nil, fail(C.ALOOP_EBADF, "%s %#x", invalid, uintptr(h))
	}
	return obj, 0
}

// lookupT is lookup for an object that is used on its loop's thread only
// (loopOf gives the loop): core's thread check decides.
func lookupT[T any](t table[T], h C.uintptr_t, invalid string, loopOf func(*T) *core.Loop) (*T, C.int) {
	obj, rc := lookup(t, h, invalid)
	if obj == nil {
		return nil, rc
	}
	if err := loopOf(obj).CheckThread(); err != nil {
		return nil, failErr(err)
	}
	return obj, 0
}
