// Command go_net_echo is the plain Go TCP echo server of the Go benchmark
// suite (impl "go-net"; the peer of go_aloop_echo): one goroutine per
// connection reading into a 64 KiB buffer and writing back what it read
// (TCP_NODELAY is Go's default).
//
// It listens on 127.0.0.1 on a free port, prints "PORT <n>" when ready, and
// exits when its standard input reaches end of file. bench/run.py builds
// and drives it.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_net_echo:", err)
		os.Exit(1)
	}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
