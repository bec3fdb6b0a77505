// Command http_go measures net/http served over the loop (Loop.Listen, the
// net.Listener adapter of bindings/go) against net/http over package net,
// in one process, one after the other: c keep-alive clients (package net)
// send GET requests for d each; it prints requests per second and the
// ratio. A rough number for the adapter's cost, not part of bench/run.py.
//
//	CGO_ENABLED=0 ASYNCLOOP_LIBRARY=build/libasyncloop.so go run ./bench/http_go -c 10 -d 2s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	asyncloop "github.com/asyncloop/asyncloop/bindings/go"
)

func measure(ln net.Listener, clients int, d time.Duration) float64 {
	body := []byte("hello, world\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	url := "http://" + ln.Addr().String() + "/"
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for time.Now().Before(deadline) {
				resp, err := c.Get(url)
				if err != nil {
					fmt.Fprintln(os.Stderr, "http_go:", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

func main() {
	clients := flag.Int("c", 10, "concurrent keep-alive clients")
	dur := flag.Duration("d", 2*time.Second, "duration per server")
	flag.Parse()

	ready := make(chan *asyncloop.Loop)
	go func() {
		runtime.LockOSThread()
		l, err := asyncloop.NewLoop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "http_go:", err)
			os.Exit(1)
		}
		ready <- l
		l.RunForever()
	}()
	loop := <-ready

	netLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "http_go:", err)
		os.Exit(1)
	}
	netRate := measure(netLn, *clients, *dur)
	loopLn, err := loop.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "http_go:", err)
		os.Exit(1)
	}
	loopRate := measure(loopLn, *clients, *dur)
	fmt.Printf("net/http over net:            %8.0f req/s\n", netRate)
	fmt.Printf("net/http over asyncloop:      %8.0f req/s  (%.2fx)\n", loopRate, loopRate/netRate)
}
