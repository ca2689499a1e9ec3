// Package chaosproxy is a TCP proxy for tests that cuts, refuses and
// freezes connections on command, so a client can be cut off from a real
// server that other clients keep using: a network partition of one
// process, made on loopback.
//
// A Proxy listens on a free port of 127.0.0.1 and forwards each
// connection to its target. Its mode says what happens to connections:
// Pass forwards them; Refuse closes every open one and refuses new ones
// (the port is closed, so a dial fails at once); AcceptClose closes every
// open one and closes each new one right after accepting it; Freeze keeps
// every connection open but forwards nothing until the next Pass, as a
// frozen server or a network that drops packets would. The package imports
// only the standard library.
package chaosproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Mode is what a Proxy does with connections.
type Mode int

// The modes of a Proxy.
const (
	// Pass forwards every byte both ways.
	Pass Mode = iota
	// Refuse closes every connection and refuses new ones.
	Refuse
	// AcceptClose closes every connection, and each new one once accepted.
	AcceptClose
	// Freeze holds every byte, both ways, until the mode changes.
	Freeze
)

// String returns the mode's name: "pass", "refuse", "accept-close" or
// "freeze".
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Refuse:
		return "refuse"
	case AcceptClose:
		return "accept-close"
	case Freeze:
		return "freeze"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Proxy forwards connections from its address to a target. Its methods
// are safe for concurrent use.
type Proxy struct {
	target string
	addr   string

	mu       sync.Mutex
	cond     *sync.Cond // signalled when mode changes
	mode     Mode
	ln       net.Listener // nil while refusing, or closed
	conns    map[net.Conn]struct{}
	closed   bool
	accepted int // connections accepted, for tests
	wg       sync.WaitGroup
}

// New starts a proxy to target ("host:port") on a free port of 127.0.0.1,
// in mode Pass. Close it when done.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaosproxy: %w", err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr returns the address clients dial: "127.0.0.1:PORT". It stays the
// same across modes.
func (p *Proxy) Addr() string { return p.addr }

// Accepted returns how many connections the proxy has accepted.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Set switches to mode m. Refuse and AcceptClose close every open
// connection before Set returns; leaving Refuse listens again on the same
// port (which another process may have taken meanwhile: that is an error).
func (p *Proxy) Set(m Mode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("chaosproxy: closed")
	}
	if m == Refuse && p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	if m == Refuse || m == AcceptClose {
		for c := range p.conns {
			c.Close()
		}
	}
	if m != Refuse && p.ln == nil {
		var ln net.Listener
		var err error
		for range 50 { // the closed port may linger a moment
			if ln, err = net.Listen("tcp", p.addr); err == nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("chaosproxy: listen again on %s: %w", p.addr, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	p.mode = m
	p.cond.Broadcast()
	return nil
}

// Close closes the listener and every connection, and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.ln != nil {
			p.ln.Close()
			p.ln = nil
		}
		for c := range p.conns {
			c.Close()
		}
		p.cond.Broadcast()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Set(Refuse) or Close
		}
		p.mu.Lock()
		p.accepted++
		if p.closed || p.mode == AcceptClose || p.mode == Refuse {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c)
	}
}

// serve forwards c to a new connection to the target until either side
// closes or the mode cuts it.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	p.mu.Lock()
	if err != nil || p.closed || p.mode == AcceptClose || p.mode == Refuse {
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.copy(up, c); done <- struct{}{} }()
	go func() { p.copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// copy forwards from src to dst, holding each chunk while the proxy is
// frozen.
func (p *Proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitThawed() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or the connection was cut
		}
	}
}

// waitThawed waits while the mode is Freeze; it reports false when the
// connection must end instead (cut, or the proxy closed).
func (p *Proxy) waitThawed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.mode == Freeze && !p.closed {
		p.cond.Wait()
	}
	return !p.closed && p.mode != Refuse && p.mode != AcceptClose
}
