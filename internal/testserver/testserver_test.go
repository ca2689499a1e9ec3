package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func do(t *testing.T, addr, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	reply, err := redisDo(ctx, addr, command)
	if err != nil {
		t.Fatalf("%s on %s: %v", command, addr, err)
	}
	return reply
}

func memcachedDo(t *testing.T, addr, command string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, command+"\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%q on %s: %v", command, addr, err)
	}
	return strings.TrimSpace(line)
}

func assertDown(t *testing.T, addr string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections", addr)
	}
}

func TestRedisKillRestart(t *testing.T) {
	t.Parallel()
	s := Redis(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want a loopback address", s.Addr())
	}
	if got := do(t, s.Addr(), "PING"); got != "PONG" {
		t.Fatalf("PING = %q", got)
	}
	pid := s.PID()
	if pid <= 0 {
		t.Fatalf("PID() = %d", pid)
	}
	do(t, s.Addr(), "SET k v")

	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Fatalf("PID() after Kill = %d, want 0", s.PID())
	}
	assertDown(t, s.Addr())
	if err := s.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}

	addr := s.Addr()
	if err := s.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Fatalf("Addr() after Restart = %q, want %q", s.Addr(), addr)
	}
	if s.PID() == pid || s.PID() <= 0 {
		t.Fatalf("PID() after Restart = %d (before %d)", s.PID(), pid)
	}
	// No persistence by default: the key is gone.
	if got := do(t, s.Addr(), "GET k"); got != "" {
		t.Fatalf("GET k after restart = %q, want nil", got)
	}
}

func TestRedisDurableRestart(t *testing.T) {
	t.Parallel()
	s := Redis(t, "--appendonly", "yes", "--appendfsync", "always")
	do(t, s.Addr(), "SET k v")
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := do(t, s.Addr(), "GET k"); got != "v" {
		t.Fatalf("GET k after kill and restart = %q, want %q", got, "v")
	}
}

func TestRestartRunning(t *testing.T) {
	t.Parallel()
	s := Redis(t)
	pid := s.PID()
	if err := s.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.PID() == pid {
		t.Fatalf("Restart of a running server kept pid %d", pid)
	}
	do(t, s.Addr(), "PING")
}

func TestClose(t *testing.T) {
	t.Parallel()
	s, err := StartRedis(t.Context())
	if err != nil {
		skipOrFatal(t, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertDown(t, s.Addr())
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Restart(t.Context()); err == nil {
		t.Fatal("Restart after Close succeeded")
	}
}

func TestMemcachedKillRestart(t *testing.T) {
	t.Parallel()
	s := Memcached(t)
	if got := memcachedDo(t, s.Addr(), "version"); !strings.HasPrefix(got, "VERSION ") {
		t.Fatalf("version = %q", got)
	}
	if got := memcachedDo(t, s.Addr(), "set k 0 0 1\r\nv"); got != "STORED" {
		t.Fatalf("set = %q", got)
	}
	pid := s.PID()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	assertDown(t, s.Addr())
	if err := s.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.PID() == pid {
		t.Fatalf("PID unchanged after Restart")
	}
	if got := memcachedDo(t, s.Addr(), "get k"); got != "END" {
		t.Fatalf("get k after restart = %q, want a miss", got)
	}
}

// TestManyAtOnce starts servers concurrently, as parallel tests do, so
// that port choices collide now and then.
func TestManyAtOnce(t *testing.T) {
	t.Parallel()
	const n = 8
	var wg sync.WaitGroup
	servers := make([]*Server, 2*n)
	errs := make([]error, 2*n)
	for i := range n {
		wg.Go(func() { servers[i], errs[i] = StartRedis(t.Context()) })
		wg.Go(func() { servers[n+i], errs[n+i] = StartMemcached(t.Context()) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, s := range servers {
		if errs[i] != nil {
			skipOrFatal(t, errs[i])
		}
		t.Cleanup(func() { s.Close() })
		if seen[s.Addr()] {
			t.Fatalf("two servers on %s", s.Addr())
		}
		seen[s.Addr()] = true
	}
}

func TestStartCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, start := range map[string]func(context.Context, ...string) (*Server, error){
		"redis": StartRedis, "memcached": StartMemcached,
	} {
		s, err := start(ctx)
		if errors.Is(err, ErrNotInstalled) {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s with a canceled context: err = %v, want context.Canceled", name, err)
		}
	}
}

func TestStartFailureShowsOutput(t *testing.T) {
	t.Parallel()
	s, err := StartRedis(t.Context(), "--no-such-option", "1")
	if errors.Is(err, ErrNotInstalled) {
		skipOrFatal(t, err)
	}
	if err == nil {
		s.Close()
		t.Fatal("redis-server with a bad option started")
	}
	if !strings.Contains(err.Error(), "no-such-option") {
		t.Fatalf("error does not carry the server's output: %v", err)
	}
}

func TestNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for name, start := range map[string]func() error{
		"redis":     func() error { _, err := StartRedis(t.Context()); return err },
		"memcached": func() error { _, err := StartMemcached(t.Context()); return err },
		"cluster":   func() error { _, err := StartRedisCluster(t.Context(), 3); return err },
	} {
		err := start()
		if !errors.Is(err, ErrNotInstalled) {
			t.Errorf("%s without binaries: err = %v, want ErrNotInstalled", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "apt-get install") {
			t.Errorf("%s: error does not say how to install: %v", name, err)
		}
	}
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := RedisCluster(t, 3)
	t.Logf("cluster of 3 up in %v", time.Since(start))
	if len(c.Nodes) != 3 || len(c.Addrs()) != 3 {
		t.Fatalf("got %d nodes, %d addrs", len(c.Nodes), len(c.Addrs()))
	}
	for _, addr := range c.Addrs() {
		info := do(t, addr, "CLUSTER INFO")
		if err := checkFields(info, map[string]string{
			"cluster_state":          "ok",
			"cluster_slots_assigned": "16384",
			"cluster_known_nodes":    "3",
		}); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
	}
	// Every key lands on exactly one node; the others redirect.
	var owners int
	for _, addr := range c.Addrs() {
		_, err := redisDo(t.Context(), addr, "SET somekey v")
		switch {
		case err == nil:
			owners++
		case !strings.Contains(err.Error(), "MOVED"):
			t.Fatalf("SET on %s: %v", addr, err)
		}
	}
	if owners != 1 {
		t.Fatalf("%d nodes accepted the key, want 1", owners)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range c.Addrs() {
		assertDown(t, addr)
	}
}

// TestRedisClusterWithReplicas checks the 3+3 cluster: roles, replication,
// persistence, the helpers that find a key's master and its replica, and a
// failover after the master is killed.
func TestRedisClusterWithReplicas(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := RedisClusterWithReplicas(t, 3, 1)
	t.Logf("cluster of 3+3 up in %v", time.Since(start))
	if len(c.Nodes) != 6 || c.Masters != 3 {
		t.Fatalf("got %d nodes, %d masters", len(c.Nodes), c.Masters)
	}
	for i, addr := range c.Addrs() {
		role := infoField(do(t, addr, "INFO replication"), "role")
		if want := map[bool]string{true: "master", false: "slave"}[i < 3]; role != want {
			t.Errorf("node %d (%s) is a %s, want a %s", i, addr, role, want)
		}
		if got := infoField(do(t, addr, "INFO persistence"), "aof_enabled"); got != "1" {
			t.Errorf("node %s: aof_enabled=%s", addr, got)
		}
		if got := infoField(do(t, addr, "CLUSTER INFO"), "cluster_known_nodes"); got != "6" {
			t.Errorf("node %s knows %s nodes", addr, got)
		}
	}

	ctx := t.Context()
	for _, key := range []string{"a", "b", "{user1}x", "somekey"} {
		if got, want := KeySlot(key), slotOf(t, c.Nodes[0].Addr(), key); got != want {
			t.Errorf("KeySlot(%q) = %d, CLUSTER KEYSLOT says %d", key, got, want)
		}
	}
	master, err := c.MasterFor(ctx, "somekey")
	if err != nil {
		t.Fatal(err)
	}
	replica, err := c.ReplicaOf(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	if got := doOnOneConn(t, master.Addr(), "SET somekey v", "WAIT 1 2000"); got[1] != "1" {
		t.Fatal("the write was not replicated")
	}
	if _, err := redisDo(ctx, replica.Addr(), "GET somekey"); err == nil || !strings.Contains(err.Error(), "MOVED") {
		t.Fatalf("GET on the replica: %v, want a MOVED to its master", err)
	}

	// A paused replica acknowledges nothing.
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	if !replica.Paused() {
		t.Fatal("Paused() = false after Pause")
	}
	// WAIT counts the replicas that acknowledged the last write of its
	// own connection, so it follows the SET on the same one.
	if got := doOnOneConn(t, master.Addr(), "SET somekey w", "WAIT 1 100"); got[1] != "0" {
		t.Fatalf("WAIT with the replica paused = %s, want 0", got[1])
	}
	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}
	if replica.Paused() {
		t.Fatal("Paused() = true after Resume")
	}
	if got := doOnOneConn(t, master.Addr(), "SET somekey w", "WAIT 1 2000"); got[1] != "1" {
		t.Fatalf("WAIT after Resume = %s, want 1", got[1])
	}

	// Kill the master: its replica takes over, with the data.
	killed := time.Now()
	if err := master.Kill(); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.MasterFor(ctx, "somekey")
		if err == nil && m == replica {
			break
		}
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("no failover 20 s after the kill: master %v, %v", m, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("replica promoted %v after the kill", time.Since(killed))
	if got := do(t, replica.Addr(), "GET somekey"); got != "w" {
		t.Fatalf("GET on the promoted replica = %q, want %q", got, "w")
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.WaitOK(waitCtx); err != nil {
		t.Fatal(err)
	}
}

// doOnOneConn sends commands on one connection and returns their replies.
func doOnOneConn(t *testing.T, addr string, commands ...string) []string {
	t.Helper()
	var replies []string
	err := probe(t.Context(), addr, 0, func(c net.Conn, _ int) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		for _, cmd := range commands {
			if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
				return err
			}
			reply, err := readReply(r)
			if err != nil {
				return fmt.Errorf("%s: %w", cmd, err)
			}
			replies = append(replies, reply)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("on %s: %v", addr, err)
	}
	return replies
}

func slotOf(t *testing.T, addr, key string) int {
	t.Helper()
	n, err := strconv.Atoi(do(t, addr, "CLUSTER KEYSLOT "+key))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPauseNotRunning(t *testing.T) {
	t.Parallel()
	s := Redis(t)
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(); err == nil {
		t.Fatal("Pause of a killed server succeeded")
	}
	if err := s.Resume(); err != nil {
		t.Fatalf("Resume of a server not paused: %v", err)
	}
}

// TestKillPaused: a paused server can be killed and restarted.
func TestKillPaused(t *testing.T) {
	t.Parallel()
	s := Redis(t)
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.Paused() {
		t.Fatal("Paused() after Kill")
	}
	if err := s.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	do(t, s.Addr(), "PING")
}

func TestRedisClusterTooSmall(t *testing.T) {
	t.Parallel()
	if _, err := StartRedisCluster(t.Context(), 2); err == nil {
		t.Fatal("a 2-master cluster started")
	}
}

func TestRedisDo(t *testing.T) {
	t.Parallel()
	s := Redis(t)
	if _, err := redisDo(t.Context(), s.Addr(), "NOSUCHCOMMAND"); err == nil {
		t.Fatal("an error reply was not an error")
	}
	if got := do(t, s.Addr(), fmt.Sprintf("ECHO %s", "hi")); got != "hi" {
		t.Fatalf("ECHO = %q", got)
	}
}

// TestPortTaken gives the server a port someone else holds: start must
// notice it is not the one answering and retry on another port.
func TestPortTaken(t *testing.T) {
	t.Parallel()
	for _, sp := range []spec{redisSpec, memcachedSpec} {
		other := Redis(t) // answers on its port, but is not ours
		busy := other.port
		calls := 0
		sp.port = func() (int, error) {
			calls++
			if calls == 1 {
				return busy, nil
			}
			return freePort()
		}
		s, err := start(t.Context(), sp, nil)
		if err != nil {
			skipOrFatal(t, err)
		}
		t.Cleanup(func() { s.Close() })
		if s.port == busy || calls < 2 {
			t.Fatalf("%s: started on the busy port %d after %d port choices", sp.name, busy, calls)
		}
	}
}
