// Command seam_go measures the Go host's seam with libasyncloop (purego,
// CGO_ENABLED=0) and prints one JSON line:
//
//		{"host":"go","call_ns":..,"callback_ns":..,"wakeup_us":..}
//
//	  - call_ns: ns per call into the library (Loop.Time -> aloop_loop_time),
//	    best of 5 runs;
//	  - callback_ns: ns per callback out (N CallSoon callbacks run in one
//	    RunForever), best of 5;
//	  - wakeup_us: median latency from CallSoonThreadsafe on another goroutine
//	    until the callback runs on the sleeping loop.
//
// Details (the reflection-bound call path, percentiles) go to stderr with -v.
//
//	CGO_ENABLED=0 go run ./bench/seam_go        (ASYNCLOOP_LIBRARY=...)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

func best(runs int, f func() float64) float64 {
	b := f()
	for range runs - 1 {
		b = min(b, f())
	}
	return b
}

func main() {
	verbose := flag.Bool("v", false, "details on stderr")
	calls := flag.Int("calls", 1_000_000, "calls per run")
	callbacks := flag.Int("callbacks", 200_000, "callbacks per run")
	wakeups := flag.Int("wakeups", 2000, "wake-up samples")
	flag.Parse()

	runtime.LockOSThread()
	loop, err := asyncloop.NewLoop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "seam_go:", err)
		os.Exit(1)
	}
	defer loop.Close()

	// Calls into the library.
	var sink float64
	callNs := best(5, func() float64 {
		t0 := time.Now()
		for range *calls {
			sink += float64(loop.Time().UnixNano())
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(*calls)
	})
	isRunningNs := best(5, func() float64 {
		t0 := time.Now()
		for range *calls / 4 {
			loop.IsRunning() // bound with purego.RegisterLibFunc (reflection)
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(*calls/4)
	})

	// Callbacks out of the library.
	n := 0
	f := func() { n++ }
	callbackNs := best(5, func() float64 {
		for range *callbacks - 1 {
			loop.CallSoon(f)
		}
		loop.CallSoon(func() { loop.Stop() })
		t0 := time.Now()
		loop.RunForever()
		return float64(time.Since(t0).Nanoseconds()) / float64(*callbacks)
	})
	scheduleNs := best(3, func() float64 {
		t0 := time.Now()
		for range *callbacks {
			loop.CallSoon(f)
		}
		el := time.Since(t0)
		loop.CallSoon(func() { loop.Stop() })
		loop.RunForever()
		return float64(el.Nanoseconds()) / float64(*callbacks)
	})

	// Wake-up latency: another goroutine posts while the loop sleeps.
	lat := make([]time.Duration, 0, *wakeups)
	got := make(chan struct{})
	go func() {
		for range *wakeups {
			time.Sleep(200 * time.Microsecond) // let the loop go to sleep
			t0 := time.Now()
			if _, err := loop.CallSoonThreadsafe(func() {
				lat = append(lat, time.Since(t0))
				got <- struct{}{}
			}); err != nil {
				panic(err)
			}
			<-got
		}
		loop.Stop()
	}()
	keepAlive, _ := loop.CallLater(time.Hour, func() {})
	loop.RunForever()
	keepAlive.Cancel()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }

	out, _ := json.Marshal(struct {
		Host       string  `json:"host"`
		CallNs     float64 `json:"call_ns"`
		CallbackNs float64 `json:"callback_ns"`
		WakeupUs   float64 `json:"wakeup_us"`
	}{"go", round1(callNs), round1(callbackNs), round1(pct(0.5))})
	fmt.Println(string(out))
	if *verbose {
		mode, _ := asyncloop.SIGURGMode()
		fmt.Fprintf(os.Stderr, "call (SyscallN path, Loop.Time): %.1f ns\n", callNs)
		fmt.Fprintf(os.Stderr, "call (RegisterLibFunc path, Loop.IsRunning): %.1f ns\n", isRunningNs)
		fmt.Fprintf(os.Stderr, "CallSoon scheduling: %.1f ns per call\n", scheduleNs)
		fmt.Fprintf(os.Stderr, "callback: %.1f ns\n", callbackNs)
		fmt.Fprintf(os.Stderr, "wakeup: p50 %.1f us, p90 %.1f us, p99 %.1f us (n=%d)\n", pct(0.5), pct(0.9), pct(0.99), len(lat))
		fmt.Fprintf(os.Stderr, "SIGURG mode: %s, GOMAXPROCS %d\n", mode, runtime.GOMAXPROCS(0))
	}
	_ = sink
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
