package asyncloop

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The low-level layer mirrors include/asyncloop.h by hand; these tests
// check it against the header so a change of the contract fails here.

func readHeader(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../include/asyncloop.h")
	if err != nil {
		t.Fatal(err)
	}
	// Strip comments.
	s := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(string(b), "")
	return s
}

func TestHeaderErrorTable(t *testing.T) {
	h := readHeader(t)
	re := regexp.MustCompile(`X\((\w+),\s*(-?\d+),\s*"([^"]*)"\)`)
	seen := 0
	for _, m := range re.FindAllStringSubmatch(h, -1) {
		code, _ := strconv.Atoi(m[2])
		e, ok := errorTable[code]
		if !ok {
			t.Errorf("ALOOP_%s (%d) missing from errorTable", m[1], code)
			continue
		}
		if e[0] != m[1] || e[1] != m[3] {
			t.Errorf("code %d: header %s %q, binding %s %q", code, m[1], m[3], e[0], e[1])
		}
		seen++
	}
	if seen != len(errorTable) || seen == 0 {
		t.Errorf("header has %d codes, binding %d", seen, len(errorTable))
	}
}

func TestHeaderFunctions(t *testing.T) {
	h := readHeader(t)
	re := regexp.MustCompile(`(?s)\b(aloop_\w+)\s*\(([^;{]*?)\)\s*;`)
	params := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(h, -1) {
		args := strings.TrimSpace(m[2])
		n := 0
		if args != "" && args != "void" {
			n = strings.Count(args, ",") + 1
		}
		params[m[1]] = n
	}
	if len(params) < 50 {
		t.Fatalf("parsed only %d prototypes", len(params))
	}
	var l library
	for _, s := range l.symbols() {
		n, ok := params[s.name]
		if !ok {
			t.Errorf("%s is bound but not declared in the header", s.name)
			continue
		}
		if got := reflect.TypeOf(s.fptr).Elem().NumIn(); got != n {
			t.Errorf("%s: header has %d parameters, binding %d", s.name, n, got)
		}
	}
}

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
