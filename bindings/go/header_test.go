package asyncloop

import (
	"reflect"
	"testing"
)

// The function table and error constants (zabi.go) are generated from
// include/asyncloop.h by tools/gen_abi.py; the CTest check abi-generated
// fails when they are stale. The structs below are written by hand.

func TestStructSizes(t *testing.T) {
	// 64-bit layouts of the header's structs.
	checks := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"aloop_protocol_t", reflect.TypeOf(cProtocol{}).Size(), 9 * 8},
		{"aloop_exception_context_t", reflect.TypeOf(cExceptionContext{}).Size(), 7 * 8},
		{"aloop_server_options_t", reflect.TypeOf(cServerOptions{}).Size(), 8 + 4*4},
		{"aloop_connect_options_t", reflect.TypeOf(cConnectOptions{}).Size(), 3 * 8},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, c.got, c.want)
		}
	}
}
