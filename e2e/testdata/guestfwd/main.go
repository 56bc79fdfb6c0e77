// Command guestfwd joins one guest connection to a 127.0.0.1 port: qemu's
// user network runs it for each connection a guestfwd=...-cmd: rule
// catches, with the connection on stdin and stdout. Tests use it to put
// a metadata service on 127.0.0.1 at the guest's 169.254.169.254.
package main

import (
	"io"
	"net"
	"os"
)

func main() {
	host, _, err := net.SplitHostPort(os.Args[len(os.Args)-1])
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		os.Exit(2) // stderr is the guest's connection too: say nothing
	}
	c, err := net.Dial("tcp", os.Args[len(os.Args)-1])
	if err != nil {
		os.Exit(1)
	}
	go func() {
		_, _ = io.Copy(c, os.Stdin)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(os.Stdout, c)
}
