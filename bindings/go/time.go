package asyncloop

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// Times: the loop's clock is CLOCK_MONOTONIC in seconds (asyncio's
// loop.time()). The binding speaks time.Time and time.Duration instead:
// Loop.Time returns a time.Time, CallAt and Handle.When take and return
// time.Time, CallLater, RunOnce and every timeout take a time.Duration.
//
// A loop time x is the time.Time epoch.Add(x - epochMono), where epoch and
// epochMono are read together once (time.Now and CLOCK_MONOTONIC, within a
// microsecond of each other). The times carry Go's monotonic reading, so
// comparing and subtracting them (with each other and with time.Now()) is
// monotonic; CallAt(loop.Time().Add(d)) and CallLater(d) schedule the same
// deadline. A time.Time without a monotonic reading (time.Date, a parsed
// time) is converted by its wall clock at the call.

var (
	epoch     = time.Now()
	epochMono = monotonicNow()
)

func monotonicNow() float64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// loopToTime converts loop time (seconds) to a time.Time.
func loopToTime(x float64) time.Time {
	return epoch.Add(secondsToDuration(x - epochMono))
}

// timeToLoop converts a time.Time to loop time (seconds).
func timeToLoop(t time.Time) float64 {
	return epochMono + t.Sub(epoch).Seconds()
}

func secondsToDuration(s float64) time.Duration {
	switch {
	case math.IsNaN(s):
		return 0
	case s >= float64(math.MaxInt64)/1e9:
		return math.MaxInt64
	case s <= float64(math.MinInt64)/1e9:
		return math.MinInt64
	}
	return time.Duration(math.Round(s * 1e9))
}

// durationSeconds converts d to seconds; math.MaxInt64 (the largest
// Duration) means never.
func durationSeconds(d time.Duration) float64 {
	if d == math.MaxInt64 {
		return math.Inf(1)
	}
	return d.Seconds()
}
