package main

/*
extern int al_urg_give_back(void);
extern int al_urg_take(void);
extern int al_urg_given_back(void);
*/
import "C"

import (
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/asyncloop/asyncloop/core"
)

// SIGURG goes back to the host while the library is loaded (see
// capi/sigurg.c); package initialisation (which runs before any export
// returns) checks it again. While a loop handles SIGURG
// (aloop_add_signal_handler) the runtime's handler is installed again.

var urg sync.Mutex

func init() {
	off := asyncPreemptOff(buildLDFlags(), os.Getenv("GODEBUG"))
	switch given := C.al_urg_given_back() != 0; {
	case off && !given:
		C.al_urg_give_back()
	case !off && given:
		C.al_urg_take() // the runtime preempts: it needs SIGURG
	}
}

func buildLDFlags() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-ldflags" {
				return s.Value
			}
		}
	}
	return ""
}

// asyncPreemptOff tells whether the runtime runs without asynchronous
// preemption: the build links GODEBUG asyncpreemptoff=1 in as the default
// (CMakeLists.txt ALOOP_GO_LDFLAGS; a build whose recorded -ldflags lack it
// has preemption on), and the last asyncpreemptoff of $GODEBUG overrides it.
func asyncPreemptOff(ldflags, godebug string) bool {
	off := ldflags == "" || strings.Contains(ldflags, "asyncpreemptoff=1")
	for _, kv := range strings.Split(godebug, ",") {
		switch strings.TrimSpace(kv) {
		case "asyncpreemptoff=1":
			off = true
		case "asyncpreemptoff=0":
			off = false
		}
	}
	return off
}

// urgTake is called before a SIGURG handler is added.
func urgTake() {
	urg.Lock()
	defer urg.Unlock()
	if C.al_urg_given_back() != 0 {
		C.al_urg_take()
	}
}

// urgRelease is called after a SIGURG handler was removed (or adding one
// failed): with no handler left in the process, SIGURG goes back.
func urgRelease() {
	urg.Lock()
	defer urg.Unlock()
	if C.al_urg_given_back() == 0 && !core.SignalHandled(int(syscall.SIGURG)) &&
		asyncPreemptOff(buildLDFlags(), os.Getenv("GODEBUG")) {
		C.al_urg_give_back()
	}
}
