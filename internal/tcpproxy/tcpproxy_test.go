package tcpproxy_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gomonster/monster/internal/tcpproxy"
)

// The proxy forwards while up; Cut drops open connections and refuses new
// ones; Restore forwards again.
func TestCutAndRestore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // an echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p := tcpproxy.Start(t, ln.Addr().String())
	echo := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "ping\n" {
			t.Fatalf("echo: %q", line)
		}
		return err
	}

	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := echo(open); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}

	p.Cut()
	if !p.Down() {
		t.Fatal("Down() is false after Cut")
	}
	if err := echo(open); err == nil {
		t.Fatal("a connection open at the cut still works")
	}
	fresh, err := net.Dial("tcp", p.Addr())
	if err == nil {
		err = echo(fresh)
		fresh.Close()
	}
	if err == nil {
		t.Fatal("a new connection works while the proxy is cut")
	}

	p.Restore()
	again, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := echo(again); err != nil {
		t.Fatalf("after Restore: %v", err)
	}
}
