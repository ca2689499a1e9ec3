//go:build linux

package testserver

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary, re-run by TestServersDieWithTestBinary,
// start a server, print its PID and wait to be killed.
const helperEnv = "TESTSERVER_DEATH_HELPER"

func TestDeathHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestServersDieWithTestBinary")
	}
	s, err := StartRedis(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("pid %d %s\n", s.PID(), s.dir)
	time.Sleep(time.Minute)
}

// TestServersDieWithTestBinary kills a test binary that started a server
// and checks the server does not outlive it.
func TestServersDieWithTestBinary(t *testing.T) {
	t.Parallel()
	if _, err := lookPath("redis-server", "redis-server"); err != nil {
		skipOrFatal(t, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeathHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	// "pid PID DIR"; DIR may contain spaces.
	fields := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
	var pid int
	var dir string
	if len(fields) == 3 {
		pid, _ = strconv.Atoi(fields[1])
		dir = fields[2]
	}
	if err != nil || pid <= 0 || !strings.Contains(dir, "testserver-redis-") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper printed %q (%v); stderr:\n%s", line, err, stderr.String())
	}
	cmd.Process.Kill()
	cmd.Wait()
	// The helper died before it could Close; its directory is ours to remove.
	t.Cleanup(func() { os.RemoveAll(dir) })

	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server pid %d outlived the killed test binary", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid is a live process (not gone, not a zombie
// waiting for its new parent to reap it).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
