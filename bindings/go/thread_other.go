//go:build !linux

package asyncloop

// threadID is 0 where the binding does not know the thread's id: a loop
// dispatching its event records is then not found by GetRunningLoop.
func threadID() int { return 0 }
