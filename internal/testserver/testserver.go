// Package testserver runs real redis-server and memcached processes for
// tests and benchmarks, so backends are tested against the servers they
// will meet in production, never against mocks.
//
// Each server listens on a free port on 127.0.0.1, in its own temporary
// directory (removed by Close), with its output captured so that a server
// that fails to start explains why. Start functions return only once the
// server answers (redis: PING gets +PONG; memcached: version gets VERSION)
// and reports the PID we started, so a test never talks to someone else's
// server that happens to hold the port. Servers are stopped by the PID this
// package started, never by name; on Linux they also die with the test
// binary (parent-death signal).
//
// Use the testing wrappers [Redis], [Memcached], [RedisCluster] and
// [RedisClusterWithReplicas] in tests:
// they register Close with t.Cleanup and skip the test when the binary is
// missing, except when the environment has CI=true, where a missing binary
// is a failure. Benchmarks and programs use the Start functions and Close
// the result themselves.
//
// A redis-server or memcached starts in a few milliseconds. A cluster takes
// about three seconds whatever its size, replicas included: a Redis Cluster
// master reports cluster_state:ok no sooner than two seconds after it
// started. Servers can be paused (SIGSTOP), resumed and killed (SIGKILL) to
// play hung and crashed hosts; a cluster's helpers find the master of a key
// and its replica. The package imports only the standard library.
package testserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotInstalled is wrapped by the error a Start function returns when the
// server binary (redis-server, redis-cli or memcached) is not in PATH. The
// error message names the Debian package to install.
var ErrNotInstalled = errors.New("testserver: server binary not installed")

const (
	// startTimeout bounds the wait for a server to answer when the caller's
	// context has no earlier deadline.
	startTimeout = 15 * time.Second
	// portAttempts is how many ports a start tries before giving up when
	// another process takes the chosen port first.
	portAttempts = 8
	// logTail is how much of a failed server's output goes into the error.
	logTail = 4 << 10
)

// errPortInUse marks a start that lost the race for its port; start retries
// with another port.
var errPortInUse = errors.New("port already in use")

// spec describes how to run one kind of server.
type spec struct {
	name  string // for messages and temp dir names: "redis", "memcached"
	bin   string // executable looked up in PATH
	pkg   string // Debian package that provides bin
	args  func(port int, dir string, extra []string) []string
	probe func(c net.Conn, pid int) error // nil once the server answers as pid
	port  func() (int, error)
}

// Server is one server process started by this package. Its port and
// directory stay the same across Kill and Restart. Methods are safe for
// concurrent use.
type Server struct {
	spec    spec
	path    string   // resolved binary
	args    []string // full argument list, port and dir included
	port    int
	dir     string // owned: removed by Close
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while not running
	done   chan struct{} // closed once cmd has been reaped
	paused bool          // stopped by Pause and not resumed since
	closed bool
}

var redisSpec = spec{
	name: "redis",
	bin:  "redis-server",
	pkg:  "redis-server",
	args: func(port int, dir string, extra []string) []string {
		a := []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--protected-mode", "no",
		}
		return append(a, extra...)
	},
	probe: probeRedis,
	port:  freePort,
}

var memcachedSpec = spec{
	name: "memcached",
	bin:  "memcached",
	pkg:  "memcached",
	args: func(port int, dir string, extra []string) []string {
		a := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}
		if os.Geteuid() == 0 {
			// memcached refuses to run as root unless told which user to be.
			a = append(a, "-u", "root")
		}
		return append(a, extra...)
	},
	probe: probeMemcached,
	port:  freePort,
}

// StartRedis starts a redis-server on a free loopback port, without
// persistence ("--save", "" and "--appendonly", "no"), in a fresh temporary
// directory, and returns once it answers PING. Extra arguments are appended
// and so override the defaults: "--appendonly", "yes", "--appendfsync",
// "always" gives a server whose writes survive Kill and Restart. The caller
// must Close the server.
func StartRedis(ctx context.Context, args ...string) (*Server, error) {
	return start(ctx, redisSpec, args)
}

// StartMemcached starts a memcached on a free loopback port (TCP only) and
// returns once it answers the version command. Extra arguments are appended,
// e.g. "-m", "16" for a 16 MB cache. The caller must Close the server.
func StartMemcached(ctx context.Context, args ...string) (*Server, error) {
	return start(ctx, memcachedSpec, args)
}

func start(ctx context.Context, sp spec, extra []string) (*Server, error) {
	path, err := lookPath(sp.bin, sp.pkg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("testserver: start %s: %w", sp.name, err)
	}
	var lastErr error
	for range portAttempts {
		port, err := sp.port()
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "testserver-"+sp.name+"-")
		if err != nil {
			return nil, fmt.Errorf("testserver: start %s: %w", sp.name, err)
		}
		s := &Server{
			spec:    sp,
			path:    path,
			args:    sp.args(port, dir, extra),
			port:    port,
			dir:     dir,
			logPath: dir + string(os.PathSeparator) + sp.name + ".log",
		}
		s.mu.Lock()
		err = s.launchLocked(ctx, true)
		s.mu.Unlock()
		if err == nil {
			return s, nil
		}
		os.RemoveAll(dir)
		if !errors.Is(err, errPortInUse) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func lookPath(bin, pkg string) (string, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("testserver: %s not found in PATH; install it with `apt-get install -y %s` (or run `make test` as root): %w",
			bin, pkg, ErrNotInstalled)
	}
	return path, nil
}

// Addr returns the server's address, "127.0.0.1:PORT". It stays the same
// across Kill and Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// PID returns the process id of the running server, or 0 when it is not
// running (after Kill or Close, or if it exited on its own). Check for 0
// before signalling it: kill(0, sig) signals the caller's whole process
// group.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	select {
	case <-s.done:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// Kill stops the server abruptly with SIGKILL, as a crash or power cut
// would, and waits until the process is gone. The port and directory are
// kept, so Restart brings back the same server with whatever it had made
// durable. Killing a server that is not running does nothing.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

// Pause stops the server with SIGSTOP, as a hung host or a long pause of
// the process would: it keeps its connections open but answers nothing,
// and its peers notice only through their timeouts. Resume continues it;
// Kill, Restart and Close work on a paused server too. Pausing a server
// that is not running fails.
func (s *Server) Pause() error {
	return s.signal(sigStop, "pause", true)
}

// Resume continues a server stopped by Pause with SIGCONT. Resuming a
// server that is not paused does nothing.
func (s *Server) Resume() error {
	s.mu.Lock()
	paused := s.paused
	s.mu.Unlock()
	if !paused {
		return nil
	}
	return s.signal(sigCont, "resume", false)
}

// Paused reports whether the server is stopped by Pause.
func (s *Server) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused && s.cmd != nil
}

func (s *Server) signal(sig os.Signal, op string, paused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sig == nil {
		return fmt.Errorf("testserver: %s %s %s: not supported on this system", op, s.spec.name, s.Addr())
	}
	if s.cmd == nil {
		return fmt.Errorf("testserver: %s %s %s: not running", op, s.spec.name, s.Addr())
	}
	select {
	case <-s.done:
		return fmt.Errorf("testserver: %s %s %s: exited", op, s.spec.name, s.Addr())
	default:
	}
	// Through os.Process, which signals by pidfd where available: never a
	// reused PID.
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("testserver: %s %s pid %d: %w", op, s.spec.name, s.cmd.Process.Pid, err)
	}
	s.paused = paused
	return nil
}

// Restart starts the server again with the same arguments, port and
// directory, and returns once it answers. A server still running is killed
// first. It fails if the server was closed, or if another process took the
// port meanwhile.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("testserver: restart %s %s: server is closed", s.spec.name, s.Addr())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("testserver: restart %s %s: %w", s.spec.name, s.Addr(), err)
	}
	if err := s.killLocked(); err != nil {
		return err
	}
	return s.launchLocked(ctx, false)
}

// Close stops the server if it is running and removes its directory.
// Closing again does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.killLocked()
	if rmErr := os.RemoveAll(s.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("testserver: close %s %s: %w", s.spec.name, s.Addr(), rmErr))
	}
	return err
}

func (s *Server) killLocked() error {
	if s.cmd == nil {
		return nil
	}
	cmd, done := s.cmd, s.done
	s.cmd, s.done, s.paused = nil, nil, false
	// os.Process signals through a pidfd where available, so a process that
	// already exited and was reaped is never confused with a reused PID.
	err := cmd.Process.Kill()
	<-done
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testserver: kill %s pid %d: %w", s.spec.name, cmd.Process.Pid, err)
	}
	return nil
}

// launchLocked starts the process and waits until it answers. On failure
// the process is gone and the error carries the tail of its output.
func (s *Server) launchLocked(ctx context.Context, truncateLog bool) error {
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if truncateLog {
		flags |= os.O_TRUNC
	}
	logFile, err := os.OpenFile(s.logPath, flags, 0o600)
	if err != nil {
		return fmt.Errorf("testserver: start %s: %w", s.spec.name, err)
	}
	cmd := exec.Command(s.path, s.args...)
	cmd.Dir = s.dir
	// A file, not a pipe: Wait then never blocks on a forked child that
	// still holds the server's stdout.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	logFile.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("testserver: start %s: %w", s.spec.name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	if err := s.waitReady(ctx, cmd, done); err != nil {
		s.killLocked()
		return err
	}
	return nil
}

func (s *Server) waitReady(ctx context.Context, cmd *exec.Cmd, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	pid := cmd.Process.Pid
	probeErr := errors.New("no answer yet")
	delay := 2 * time.Millisecond
	for {
		select {
		case <-done:
			out := s.logTail()
			if bytes.Contains(out, []byte("in use")) {
				return fmt.Errorf("testserver: %s on port %d: %w", s.spec.name, s.port, errPortInUse)
			}
			return fmt.Errorf("testserver: %s %s exited before answering (%v); output:\n%s",
				s.spec.name, s.Addr(), cmd.ProcessState, out)
		default:
		}
		if probeErr = probe(ctx, s.Addr(), pid, s.spec.probe); probeErr == nil {
			return nil
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("testserver: %s %s (pid %d) did not answer: %v: %w; output:\n%s",
				s.spec.name, s.Addr(), pid, probeErr, ctx.Err(), s.logTail())
		case <-done:
			timer.Stop()
		case <-timer.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// logTail returns the end of the server's captured output.
func (s *Server) logTail() []byte {
	f, err := os.Open(s.logPath)
	if err != nil {
		return []byte(fmt.Sprintf("(no output: %v)", err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTail {
		f.Seek(fi.Size()-logTail, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return b
}

// probe dials addr and runs check on the connection with a short deadline.
func probe(ctx context.Context, addr string, pid int, check func(net.Conn, int) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	return check(c, pid)
}

// probeRedis succeeds once the server answers PING with +PONG (not
// -LOADING while it replays its append-only file) and INFO reports pid.
func probeRedis(c net.Conn, pid int) error {
	if _, err := io.WriteString(c, "PING\r\nINFO server\r\n"); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	pong, err := readReply(r)
	if err != nil {
		return err
	}
	if pong != "PONG" {
		return fmt.Errorf("PING answered %q", pong)
	}
	info, err := readReply(r)
	if err != nil {
		return err
	}
	if got := infoField(info, "process_id"); got != strconv.Itoa(pid) {
		return fmt.Errorf("port answered by process %s, not ours (%d)", got, pid)
	}
	return nil
}

// probeMemcached succeeds once the server answers version with VERSION and
// stats reports pid.
func probeMemcached(c net.Conn, pid int) error {
	if _, err := io.WriteString(c, "version\r\nstats\r\n"); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	line, err := readLine(r)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return fmt.Errorf("version answered %q", line)
	}
	want := "STAT pid " + strconv.Itoa(pid)
	found := false
	for {
		line, err := readLine(r)
		if err != nil {
			return err
		}
		if line == "END" {
			break
		}
		found = found || line == want
	}
	if !found {
		return fmt.Errorf("port answered by a memcached that is not ours (pid %d)", pid)
	}
	return nil
}

// redisDo sends one inline command to addr and returns its reply; an error
// reply becomes an error.
func redisDo(ctx context.Context, addr, command string) (string, error) {
	var reply string
	err := probe(ctx, addr, 0, func(c net.Conn, _ int) error {
		if _, err := io.WriteString(c, command+"\r\n"); err != nil {
			return err
		}
		var err error
		reply, err = readReply(bufio.NewReader(c))
		return err
	})
	return reply, err
}

// readReply reads one RESP reply that is not an array. A nil bulk string
// reads as "".
func readReply(r *bufio.Reader) (string, error) {
	line, err := readLine(r)
	if err != nil {
		return "", err
	}
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis error: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// infoField returns the value of "name:value" in INFO-style text.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// freePort returns a loopback port that was free a moment ago. Another
// process may take it before the server binds it; start then retries.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testserver: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
