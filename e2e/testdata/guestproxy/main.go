// Command guestproxy connects its standard input and output to a TCP
// address: qemu runs it for each guest connection of a guest forward
// (qemu.GuestForward), so a guest on the restricted user network reaches
// one port on the host's 127.0.0.1.
package main

import (
	"io"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		os.Exit(2)
	}
	c, err := net.Dial("tcp", os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
}
