//go:build unix

package main

import (
	"bufio"
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// buildDemo builds the demo binary into a temporary folder.
func buildDemo(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "demo")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The real binary, once: it starts on a free port against Redis, prints
// where it listens, serves the story, and on SIGTERM shuts down cleanly
// with status 0. A bad flag makes it exit 2 with one line.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := buildDemo(t)
	redisSrv := testserver.Redis(t)

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-store", "redis", "-redis-url", "redis://"+redisSrv.Addr(), "-cache")
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		cmd.Process.Kill()
		t.Fatalf("no output; stderr:\n%s", stderr.String())
	}
	url, ok := strings.CutPrefix(sc.Text(), "demo: listening on ")
	if !ok {
		t.Fatalf("first line %q", sc.Text())
	}
	go func() {
		for sc.Scan() {
		}
		exited <- cmd.Wait()
	}()

	token := login(t, nil, url)
	for _, s := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/me", 200}, {"POST", "/logout", 204}, {"GET", "/me", 401}, {"GET", "/healthz", 200},
	} {
		if r := do(t, nil, s.method, url+s.path, "", token, ""); r.code != s.code {
			t.Fatalf("%s %s: %d; want %d", s.method, s.path, r.code, s.code)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}
	for _, want := range []string{"msg=listening", "msg=\"shutting down\"", "msg=\"store closed\""} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, stderr.String())
		}
	}

	out, err := exec.Command(bin, "-store", "mongo").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("bad flag: %v; want exit status 2", err)
	}
	if got := strings.TrimSpace(string(out)); strings.Count(got, "\n") != 0 || !strings.HasPrefix(got, `demo: -store "mongo"`) {
		t.Errorf("bad flag output %q; want one line", got)
	}
	out, err = exec.Command(bin, "-store", "redis", "-redis-url", "redis://127.0.0.1:1").CombinedOutput()
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("unreachable redis: %v; want exit status 1", err)
	}
	if got := strings.TrimSpace(string(out)); strings.Count(got, "\n") != 0 || !strings.Contains(got, "does not answer") {
		t.Errorf("unreachable redis output %q; want one line", got)
	}
}
