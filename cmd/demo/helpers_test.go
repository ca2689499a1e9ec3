package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/internal/logtest"
)

// testSecret is the HS256 key the tests give the demo, so that they can
// sign tokens of their own.
const testSecret = "a test key that is 32 bytes long"

// demo is a demo server started in-process by run, on a free port.
type demo struct {
	url    string
	stderr *logtest.SyncBuffer
	stop   func() error // cancels run's context and returns what run returned
}

// startDemo runs the demo with args (after -addr 127.0.0.1:0) until the
// test ends, and returns once it listens.
func startDemo(t *testing.T, env map[string]string, args ...string) *demo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, w := io.Pipe()
	stderr := &logtest.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), mapEnv(env), w, stderr)
		w.Close()
		done <- err
	}()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		cancel()
		t.Fatalf("demo %v did not start: %v\n%s", args, <-done, stderr)
	}
	url, ok := strings.CutPrefix(sc.Text(), "demo: listening on ")
	if !ok {
		cancel()
		t.Fatalf("first line %q; want the listening address", sc.Text())
	}
	go io.Copy(io.Discard, stdout)
	d := &demo{url: url, stderr: stderr, stop: sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Errorf("demo did not stop within 10s")
			return nil
		}
	})}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("run returned %v", err)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", stderr)
		}
	})
	return d
}

func mapEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// boltArgs returns the flags for a bolt store in a fresh folder, with the
// test secret.
func boltArgs(t *testing.T) []string {
	return []string{"-bolt-path", filepath.Join(t.TempDir(), "blocklist.db"), "-secret", testSecret}
}

type reply struct {
	code   int
	header http.Header
	body   string
}

func (r reply) challenge() string { return r.header.Get("WWW-Authenticate") }

// do sends a request with an optional bearer token and cookie token.
func do(t *testing.T, client *http.Client, method, url, body, bearer, cookie string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "token", Value: cookie})
	}
	if strings.HasPrefix(body, "token=") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{code: res.StatusCode, header: res.Header, body: string(b)}
}

// tokenResponse is the body of a login or refresh (RFC 6749 section 5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// login logs in as demo/demo and returns the access token.
func login(t *testing.T, client *http.Client, base string) string {
	t.Helper()
	r := do(t, client, "POST", base+"/login", `{"username":"demo","password":"demo"}`, "", "")
	if r.code != 200 {
		t.Fatalf("login: %d %s", r.code, r.body)
	}
	var tr tokenResponse
	if err := json.Unmarshal([]byte(r.body), &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("login body %q: %v", r.body, err)
	}
	return tr.AccessToken
}

// signed returns a token for the demo signed with key, with claims set over
// valid defaults (a nil value deletes the claim).
func signed(t *testing.T, method jwt.SigningMethod, key any, set jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{
		"iss": issuer,
		"aud": issuer,
		"sub": "demo",
		"jti": "custom-" + t.Name(),
		"exp": time.Now().Add(time.Hour).Unix(),
	}
	for k, v := range set {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	challengeMissing = `Bearer realm="blocklist-demo"`
	challengeInvalid = `Bearer realm="blocklist-demo", error="invalid_token"`
	challengeRevoked = `Bearer realm="blocklist-demo", error="invalid_token", error_description="token revoked"`
)
