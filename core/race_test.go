//go:build race

package core

// raceEnabled: the race detector's runtime allocates on its own, so the
// allocation tests (alloc_test.go) only run without it.
const raceEnabled = true
