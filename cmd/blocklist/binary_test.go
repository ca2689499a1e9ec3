//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/redisstore"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// binary builds the command once per test binary.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "blocklist-cmd-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "blocklist")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// blocklistCmd runs the built command with args and returns its exit
// status and output.
func blocklistCmd(t *testing.T, args ...string) result {
	t.Helper()
	bin := binary(t) // built before the clock starts
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "BLOCKLIST_ADMIN_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("blocklist %q: %v", args, err)
	}
	return r
}

func (r result) want(t *testing.T, code int, args ...string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("blocklist %q: exit status %d, want %d\nstdout: %s\nstderr: %s", args, r.code, code, r.stdout, r.stderr)
	}
	return r
}

func run1(t *testing.T, code int, args ...string) result {
	t.Helper()
	return blocklistCmd(t, args...).want(t, code, args...)
}

// jsonLines decodes each line of out.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", line, err)
		}
		objs = append(objs, v)
	}
	return objs
}

// sessionGuard is a Guard with default session settings that mints with
// a test key, as a server would.
func sessionGuard(t *testing.T, store blocklist.Store) *jwtguard.Guard {
	t.Helper()
	key := []byte("0123456789abcdef0123456789abcdef")
	g, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil },
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithSessions(jwtguard.Sessions{SigningMethod: jwt.SigningMethodHS256, SigningKey: key}))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestRedis(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	url := "redis://" + srv.Addr()
	st := func(args ...string) []string { return append([]string{"-store", url}, args...) }

	run1(t, 0, st("revoke", "-ttl", "1h", "leaked-1")...)
	out := run1(t, 0, st("-json", "revoke", "-exp", time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339), "leaked 2")...)
	if v := jsonLines(t, out.stdout); len(v) != 1 || v[0]["jti"] != "leaked 2" || v[0]["revoked"] != true {
		t.Fatalf("revoke -json: %v", v)
	}
	if out := run1(t, 0, st("check", "leaked-1")...); !strings.Contains(out.stdout, "revoked until") {
		t.Errorf("check: %q", out.stdout)
	}
	out = run1(t, 1, st("-json", "check", "never")...)
	if v := jsonLines(t, out.stdout); len(v) != 1 || v[0]["revoked"] != false {
		t.Errorf("check never: %v", v)
	}

	// A token without jti, revoked by its signature digest, as the Guard
	// checks it.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	store := redisstore.New(client)
	g := sessionGuard(t, store)
	key := []byte("0123456789abcdef0123456789abcdef")
	raw, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "sub": "carol"}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := jwtguard.New(store, func(*jwt.Token) (any, error) { return key, nil }, jwtguard.WithAlgorithms("HS256"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Verify(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	out = run1(t, 0, st("-json", "revoke", "-token", raw)...)
	if v := jsonLines(t, out.stdout); len(v) != 1 || !strings.HasPrefix(v[0]["jti"].(string), "sig:") {
		t.Fatalf("revoke -token: %v", v)
	}
	if _, err := plain.Verify(t.Context(), raw); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("after revoke -token: %v; want ErrRevoked", err)
	}
	run1(t, 2, st("revoke", "-token", "not.a.token")...)

	// Sessions: what the command writes, a Guard with default settings
	// enforces.
	alice, err := g.NewSession("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := g.NewSession("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	run1(t, 0, st("revoke-session", alice.SessionID)...)
	if _, err := g.Verify(t.Context(), alice.AccessToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("access token after revoke-session: %v; want ErrRevoked", err)
	}
	if _, err := g.Refresh(t.Context(), alice.RefreshToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("refresh after revoke-session: %v; want ErrRevoked", err)
	}
	if _, err := g.Verify(t.Context(), other.AccessToken); err != nil {
		t.Fatalf("another session after revoke-session: %v", err)
	}
	run1(t, 0, st("logout-all", "alice")...)
	if _, err := g.Verify(t.Context(), other.AccessToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("after logout-all: %v; want ErrRevoked", err)
	}
	later, err := g.NewSession("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Verify(t.Context(), later.AccessToken); err != nil {
		t.Fatalf("a login after logout-all: %v", err)
	}

	// list, count, stats.
	out = run1(t, 0, st("-json", "list")...)
	kinds := map[string]int{}
	for _, v := range jsonLines(t, out.stdout) {
		kinds[v["kind"].(string)]++
	}
	if kinds["token"] != 2 || kinds["signature"] != 1 || kinds["session"] != 1 || kinds["subject"] != 1 {
		t.Errorf("list kinds %v; want 2 tokens, 1 signature, 1 session, 1 subject\n%s", kinds, out.stdout)
	}
	if out := run1(t, 0, st("list", "-count")...); strings.TrimSpace(out.stdout) != "5" {
		t.Errorf("list -count: %q; want 5", out.stdout)
	}
	if out := run1(t, 0, st("list", "-prefix", "leaked")...); strings.Count(out.stdout, "\n") != 2 || !strings.Contains(out.stdout, `"leaked 2"`) {
		t.Errorf("list -prefix leaked: %q; want two lines, the spaced id quoted", out.stdout)
	}
	if out := run1(t, 0, st("list", "-limit", "1")...); strings.Count(out.stdout, "\n") != 1 {
		t.Errorf("list -limit 1: %q", out.stdout)
	}
	out = run1(t, 0, st("-json", "stats")...)
	if v := jsonLines(t, out.stdout); len(v) != 1 || v[0]["revocations"] != 5.0 {
		t.Errorf("stats: %v", v)
	}
	// The test server keeps no append-only file: doctor says so, and
	// finds nothing else.
	out = run1(t, 1, st("doctor")...)
	if !strings.Contains(out.stdout, "ok\treachable") || !strings.Contains(out.stdout, "PROBLEM\tdurability") || strings.Count(out.stdout, "PROBLEM") != 1 {
		t.Errorf("doctor: %q", out.stdout)
	}
	durable := testserver.Redis(t, "--appendonly", "yes", "--appendfsync", "always")
	out = run1(t, 0, "-store", "redis://"+durable.Addr(), "-json", "doctor")
	for _, v := range jsonLines(t, out.stdout) {
		if v["ok"] != true {
			t.Errorf("doctor on a durable server: %v", v)
		}
	}
}

// watch prints revocations made by another process, with their lag, and
// ends with status 0 on SIGINT.
func TestWatch(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	url := "redis://" + srv.Addr()
	cmd := exec.Command(binary(t), "-store", url, "-json", "watch")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lines := make(chan map[string]any)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var v map[string]any
			if json.Unmarshal(sc.Bytes(), &v) == nil {
				lines <- v
			}
		}
	}()
	next := func() map[string]any {
		select {
		case v, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended; stderr: %s", stderr.String())
			}
			return v
		case <-time.After(15 * time.Second):
			t.Fatal("watch printed nothing within 15s")
		}
		return nil
	}
	if v := next(); v["event"] != "synced" {
		t.Fatalf("first event %v; want synced", v)
	}
	run1(t, 0, "-store", url, "revoke", "-ttl", "1h", "watched")
	v := next()
	if v["event"] != "revoked" || v["jti"] != "watched" {
		t.Fatalf("event %v; want the revocation of watched", v)
	}
	if lag, ok := v["lag_seconds"].(float64); !ok || lag < -1 || lag > 10 {
		t.Errorf("lag_seconds %v; want a few ms", v["lag_seconds"])
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch after SIGINT: %v; stderr: %s", err, stderr.String())
	}
}

func TestBolt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "blocklist.db")
	// The command never creates a file: a typo would make a blocklist no
	// server reads.
	if r := run1(t, 3, "-store", "bolt:"+path, "check", "x"); strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("missing file: %q; want one line", r.stderr)
	}
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	run1(t, 0, "-store", path, "revoke", "-ttl", "1h", "b1")
	run1(t, 0, "-store", "bolt:"+path, "check", "b1")
	run1(t, 1, "-store", "bolt:"+path, "check", "b2")
	if r := run1(t, 0, "-store", path, "doctor"); !strings.Contains(r.stdout, "ok\tconsistency") {
		t.Errorf("doctor: %q", r.stdout)
	}

	// A running server holds the file: the command says what to do.
	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := run1(t, 3, "-store", path, "check", "b1"); !strings.Contains(r.stderr, "-admin") {
		t.Errorf("locked file: %q; want a hint at -admin", r.stderr)
	}
}

func TestMemcached(t *testing.T) {
	t.Parallel()
	srv := testserver.Memcached(t)
	url := "memcached://" + srv.Addr()
	run1(t, 0, "-store", url, "revoke", "-ttl", "1h", "m1")
	run1(t, 0, "-store", url, "check", "m1")
	if r := run1(t, 2, "-store", url, "list"); !strings.Contains(r.stderr, "cannot list") {
		t.Errorf("list on memcached: %q", r.stderr)
	}
	run1(t, 0, "-store", url, "doctor")
}

// A store that cannot answer is exit status 3, never "not revoked" (1).
func TestUnavailable(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	url := "redis://" + srv.Addr()
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "x"}, {"revoke", "-ttl", "1h", "x"}, {"list"}, {"revoke-session", "s"}, {"logout-all", "u"}, {"stats"},
	} {
		r := run1(t, 3, append([]string{"-store", url, "-timeout", "2s"}, args...)...)
		if strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
			t.Errorf("%q: stdout %q, stderr %q; want one line on stderr", args, r.stdout, r.stderr)
		}
	}
	run1(t, 1, "-store", url, "-timeout", "2s", "doctor")
	run1(t, 3, "-store", "memcached://127.0.0.1:1", "-timeout", "2s", "check", "x")
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"check", "x"},
		{"-store", "mongo://x", "check", "x"},
		{"-store", "redis://127.0.0.1:1/notadb", "check", "x"},
		{"-store", "redis://127.0.0.1:1?bogus=1", "check", "x"},
		{"-store", "memcached://nohostport", "check", "x"},
		{"-store", "redis://127.0.0.1:1", "-key-prefix", "", "check", "x"},
		{"-store", "redis://127.0.0.1:1?addr=127.0.0.1:2", "-key-prefix", "{t}:", "check", "x"},
		{"-store", "x.db", "frobnicate"},
		{"-store", "x.db", "check"},
		{"-store", "x.db", "check", ""},
		{"-store", "x.db", "revoke", "x"},
		{"-store", "x.db", "revoke", "-ttl", "1h", "-exp", "2030-01-01T00:00:00Z", "x"},
		{"-store", "x.db", "revoke", "-exp", "yesterday", "x"},
		{"-store", "x.db", "revoke", "-exp", "2001-01-01T00:00:00Z", "x"},
		{"-store", "x.db", "revoke", "-ttl", "-1h", "x"},
		{"-store", "x.db", "revoke", "-token", "a.b.c", "x"},
		{"-store", "x.db", "list", "-limit", "-1"},
		{"-store", "x.db", "list", "-count", "-limit", "3"},
		{"-store", "x.db", "-admin", "http://127.0.0.1:1", "check", "x"},
		{"-store", "x.db", "-timeout", "0s", "logout-all", "u"},
		{"-admin", "http://192.0.2.1/admin", "-admin-token", "t", "check", "x"},
	} {
		r := blocklistCmd(t, args...)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line", args, r.code, r.stderr)
		}
	}
	if r := run1(t, 0, "-h"); !strings.Contains(r.stderr, "revoke-session") {
		t.Errorf("-h: %q", r.stderr)
	}
}

// -admin does through a server's AdminHandler what -store does directly.
func TestAdmin(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	store := redisstore.New(client)
	g := sessionGuard(t, store)
	const adminToken = "s3cret-admin-token"
	admin := http.StripPrefix("/admin", g.AdminHandler())
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+adminToken {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		admin.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	ad := func(args ...string) []string {
		return append([]string{"-admin", hs.URL + "/admin/", "-admin-token", adminToken}, args...)
	}

	run1(t, 0, ad("revoke", "-ttl", "1h", "a/b c")...)
	if r := run1(t, 0, ad("check", "a/b c")...); !strings.Contains(r.stdout, "revoked until") {
		t.Errorf("check: %q", r.stdout)
	}
	run1(t, 1, ad("check", "a/b")...)
	p, err := g.NewSession("dave", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := run1(t, 0, ad("-json", "revoke", "-token", p.AccessToken)...)
	if v := jsonLines(t, out.stdout); len(v) != 1 || v[0]["sid"] != p.SessionID || v[0]["revoked"] != true {
		t.Errorf("revoke -token: %v", v)
	}
	run1(t, 0, ad("revoke-session", p.SessionID)...)
	if _, err := g.Refresh(t.Context(), p.RefreshToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("refresh after revoke-session: %v", err)
	}
	q, err := g.NewSession("erin", nil)
	if err != nil {
		t.Fatal(err)
	}
	run1(t, 0, ad("logout-all", "erin")...)
	if _, err := g.Verify(t.Context(), q.AccessToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("after logout-all: %v", err)
	}
	if r := run1(t, 0, ad("list", "-count")...); strings.TrimSpace(r.stdout) != "4" {
		t.Errorf("list -count: %q; want 4", r.stdout)
	}
	out = run1(t, 0, ad("-json", "stats")...)
	if v := jsonLines(t, out.stdout); len(v) != 1 || v[0]["revocations"] != 4.0 {
		t.Errorf("stats: %v", v)
	}
	run1(t, 0, ad("doctor")...)
	run1(t, 2, ad("watch")...)
	run1(t, 2, "-admin", hs.URL+"/admin", "-admin-token", "wrong", "check", "x")
	run1(t, 2, "-admin", hs.URL+"/admin", "check", "x") // no token

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	run1(t, 3, ad("check", "a/b c")...)
	run1(t, 1, ad("doctor")...)
	hs.Close()
	run1(t, 3, ad("check", "a/b c")...)
}
