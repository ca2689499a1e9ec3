package boltstore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/boltstore"
	berrors "go.etcd.io/bbolt/errors"
)

// crashEnv tells a re-executed test binary to act as the crash test's child
// instead of running tests: its value is the database path.
const crashEnv = "BOLTSTORE_CRASH_CHILD"

// The tests in this file re-execute the test binary as a second process.

// TestCrash runs a child process that revokes ids in a loop and prints each
// acknowledged one, kills it with SIGKILL at a random moment, reopens the
// file and checks that every acknowledged revocation is there. Several
// rounds share the file, so it also reopens cleanly after repeated crashes.
func TestCrash(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := make(map[string]bool)
	const rounds = 4
	for round := range rounds {
		ids := crashRound(t, path, round)
		for _, id := range ids {
			acked[id] = true
		}

		s, err := boltstore.Open(path)
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
		}
		lost := 0
		for id := range acked {
			ok, err := s.IsRevoked(context.Background(), id)
			if err != nil {
				t.Fatalf("round %d: IsRevoked(%q) after reopen: %v", round, id, err)
			}
			if !ok {
				lost++
				if lost <= 5 {
					t.Errorf("round %d: acknowledged revocation %q lost", round, id)
				}
			}
		}
		if lost > 0 {
			t.Errorf("round %d: %d of %d acknowledged revocations lost", round, lost, len(acked))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d acknowledged by the child, %d in total, %d lost", round, len(ids), len(acked), lost)
	}
}

// crashRound starts the child, kills it after a random delay, and returns
// the ids it acknowledged.
func crashRound(t *testing.T, path string, round int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, fmt.Sprintf("BOLTSTORE_CRASH_ROUND=%d", round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	firstAck := make(chan struct{})
	var ids []string
	var readErr error
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "ack "):
				if len(ids) == 0 {
					close(firstAck)
				}
				ids = append(ids, strings.TrimPrefix(line, "ack "))
			}
		}
		readErr = sc.Err()
	}()

	// Kill at a random moment once revocations are flowing, so that even a
	// slow machine gets past the child's start.
	select {
	case <-firstAck:
	case <-read:
		cmd.Wait()
		t.Fatalf("round %d: child exited before acknowledging a revocation: %s", round, stderr.String())
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("round %d: no revocation acknowledged after 10s: %s", round, stderr.String())
	}
	time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-read // everything the child wrote before it died
	cmd.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if msg := stderr.String(); strings.Contains(msg, "revoke failed") {
		t.Fatalf("round %d: child: %s", round, msg)
	}
	return ids
}

// lockEnv tells a re-executed test binary to try to open, with a short
// timeout, the file whose path is its value, and to report what happened.
const lockEnv = "BOLTSTORE_LOCK_CHILD"

// TestLockedFileOtherProcess opens a file in this process and checks that a
// second process trying to open it gets a clear error, quickly.
func TestLockedFileOtherProcess(t *testing.T) {
	t.Parallel()
	_, path := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockEnv+"="+path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var got string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "result: ") {
			got = strings.TrimPrefix(line, "result: ")
		}
	}
	if got != "locked" {
		t.Errorf("second process opening a locked file: %q, want a lock error naming the file", got)
	}
}

// TestLockChild is the child process of TestLockedFileOtherProcess; run
// directly, it skips.
func TestLockChild(t *testing.T) {
	path := os.Getenv(lockEnv)
	if path == "" {
		t.Skip("helper process for TestLockedFileOtherProcess")
	}
	start := time.Now()
	s, err := boltstore.Open(path, boltstore.WithTimeout(200*time.Millisecond))
	took := time.Since(start)
	switch {
	case err == nil:
		s.Close()
		fmt.Println("result: opened a file another process holds")
	case !errors.Is(err, berrors.ErrTimeout) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked"):
		fmt.Printf("result: unclear error %v\n", err)
	case took > 2*time.Second:
		fmt.Printf("result: gave up only after %s\n", took)
	default:
		fmt.Println("result: locked")
	}
}

// TestCrashChild is the child process of TestCrash; run directly, it skips.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrash")
	}
	s, err := boltstore.Open(path, boltstore.WithTimeout(5*time.Second))
	if err != nil {
		fmt.Fprintf(os.Stderr, "open failed: %v\n", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.Write([]byte(line + "\n")) // one write per line: a kill never splits one
	}
	round := os.Getenv("BOLTSTORE_CRASH_ROUND")
	exp := time.Now().Add(time.Hour)
	for g := range 16 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				if err := s.Revoke(context.Background(), id, exp); err != nil {
					fmt.Fprintf(os.Stderr, "revoke failed: %v\n", err)
					os.Exit(2)
				}
				say("ack " + id)
			}
		}()
	}
	// The parent kills us long before this.
	time.Sleep(30 * time.Second)
	os.Exit(3)
}
