package chaosproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo starts a line echo server for the test.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line on c and reads it back within d.
func roundTrip(c net.Conn, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

func TestModes(t *testing.T) {
	p, err := New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", p.Addr(), time.Second) }

	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, 2*time.Second); err != nil {
		t.Fatalf("pass: %v", err)
	}

	// Freeze: the connection stays open, nothing comes back; Pass
	// delivers what was held.
	p.Set(Freeze)
	if err := roundTrip(c, 100*time.Millisecond); err == nil {
		t.Fatal("freeze: a reply came through")
	}
	p.Set(Pass)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatalf("after freeze: the held line did not arrive: %v", err)
	}

	// Refuse: the open connection ends, a new dial fails.
	if err := p.Set(Refuse); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, 2*time.Second); err == nil {
		t.Fatal("refuse: the open connection still works")
	}
	if c2, err := dial(); err == nil {
		c2.Close()
		t.Fatal("refuse: a dial succeeded")
	}

	// AcceptClose: a dial succeeds, the connection ends at once.
	if err := p.Set(AcceptClose); err != nil {
		t.Fatal(err)
	}
	c3, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c3, 2*time.Second); err == nil {
		t.Fatal("accept-close: the new connection works")
	}
	c3.Close()

	if err := p.Set(Pass); err != nil {
		t.Fatal(err)
	}
	c4, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if err := roundTrip(c4, 2*time.Second); err != nil {
		t.Fatalf("pass again: %v", err)
	}
}
