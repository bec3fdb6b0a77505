package asyncloop

import "testing"

// The function table, error constants and struct mirrors (zabi.go) are
// generated from include/asyncloop.h by tools/gen_abi.py; the CTest check
// abi-generated fails when they are stale. The generator's layout model
// (structLayouts) is checked against the C compiler by tests/c/abi_check.c;
// this checks the Go mirrors against the same model.
func TestStructLayouts(t *testing.T) {
	for _, s := range structLayouts {
		if s.size != s.want {
			t.Errorf("%s: %d bytes, want %d", s.name, s.size, s.want)
		}
		for _, m := range s.members {
			if m.off != m.want {
				t.Errorf("%s.%s at offset %d, want %d", s.name, m.name, m.off, m.want)
			}
		}
	}
	if len(structLayouts) < 10 {
		t.Fatalf("only %d structs", len(structLayouts))
	}
}
