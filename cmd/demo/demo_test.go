package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/internal/logtest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/memorystore"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{}) // as main does
	os.Exit(m.Run())
}

// The seed's story with a bearer token: log in, call /me, log out, replay
// the token and be refused; another session of the same user goes on.
func TestStoryBearer(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, boltArgs(t)...)
	token := login(t, nil, d.url)
	other := login(t, nil, d.url)

	r := do(t, nil, "GET", d.url+"/me", "", token, "")
	var claims map[string]any
	if r.code != 200 || json.Unmarshal([]byte(r.body), &claims) != nil || claims["sub"] != "demo" || claims["iss"] != issuer {
		t.Fatalf("/me: %d %s", r.code, r.body)
	}
	if r := do(t, nil, "POST", d.url+"/logout", "", token, ""); r.code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.code, r.body)
	}
	r = do(t, nil, "GET", d.url+"/me", "", token, "")
	if r.code != 401 || r.challenge() != challengeRevoked {
		t.Fatalf("replay: %d %q; want 401 %q", r.code, r.challenge(), challengeRevoked)
	}
	if r := do(t, nil, "POST", d.url+"/logout", "", token, ""); r.code != 401 {
		t.Errorf("logout again: %d; want 401", r.code)
	}
	if r := do(t, nil, "GET", d.url+"/me", "", other, ""); r.code != 200 {
		t.Errorf("second session after the first logged out: %d; want 200", r.code)
	}
	if !strings.Contains(d.stderr.String(), `msg="logged out: token revoked"`) {
		t.Error("the logout is not in the log")
	}
}

// The same story as a browser lives it: the cookie set by /login carries
// the token, /logout clears it, and the old cookie replayed is refused.
func TestStoryCookie(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, boltArgs(t)...)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	token := login(t, browser, d.url)

	u, _ := url.Parse(d.url)
	cookies := jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != "token" || cookies[0].Value != token {
		t.Fatalf("cookies after login: %v; want token=<the access token>", cookies)
	}
	if r := do(t, browser, "GET", d.url+"/me", "", "", ""); r.code != 200 {
		t.Fatalf("/me with the cookie: %d %s", r.code, r.body)
	}
	r := do(t, browser, "POST", d.url+"/logout", "", "", "")
	if r.code != http.StatusNoContent {
		t.Fatalf("logout with the cookie: %d %s", r.code, r.body)
	}
	if len(jar.Cookies(u)) != 0 {
		t.Errorf("cookie not cleared by logout: %v", jar.Cookies(u))
	}
	if r := do(t, browser, "GET", d.url+"/me", "", "", ""); r.code != 401 || r.challenge() != challengeMissing {
		t.Errorf("/me after logout: %d %q; want 401 %q", r.code, r.challenge(), challengeMissing)
	}
	if r := do(t, nil, "GET", d.url+"/me", "", "", token); r.code != 401 || r.challenge() != challengeRevoked {
		t.Errorf("old cookie replayed: %d %q; want 401 %q", r.code, r.challenge(), challengeRevoked)
	}
}

// A logout survives a restart on the same bolt file, and so does the
// generated key: the token of the other session still works.
func TestRevocationSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "blocklist.db")
	d := startDemo(t, nil, "-bolt-path", path)
	loggedOut, kept := login(t, nil, d.url), login(t, nil, d.url)
	if r := do(t, nil, "POST", d.url+"/logout", "", loggedOut, ""); r.code != http.StatusNoContent {
		t.Fatalf("logout: %d", r.code)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(d.stderr.String(), "store closed") {
		t.Errorf("no clean shutdown in the log:\n%s", d.stderr)
	}
	fi, err := os.Stat(path + ".secret")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v; want mode 0600", fi, err)
	}

	d = startDemo(t, nil, "-bolt-path", path)
	if r := do(t, nil, "GET", d.url+"/me", "", loggedOut, ""); r.code != 401 || r.challenge() != challengeRevoked {
		t.Errorf("logged-out token after restart: %d %q; want 401 revoked", r.code, r.challenge())
	}
	if r := do(t, nil, "GET", d.url+"/me", "", kept, ""); r.code != 200 {
		t.Errorf("other session after restart: %d; want 200", r.code)
	}
}

// Tokens that must never pass, over real HTTP; the server keeps serving.
func TestBadTokens(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, boltArgs(t)...)
	key := []byte(testSecret)
	valid := login(t, nil, d.url)
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"alg none", signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil)},
		{"wrong key", signed(t, jwt.SigningMethodHS256, []byte("another key, also 32 bytes long!"), nil)},
		{"HS512 with the right key", signed(t, jwt.SigningMethodHS512, key, nil)},
		{"expired", signed(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()})},
		{"no exp", signed(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": nil})},
		{"wrong issuer", signed(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "someone-else"})},
		{"wrong audience", signed(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"aud": "another-api"})},
		{"5 KB jti", signed(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"jti": strings.Repeat("x", 5<<10)})},
		{"garbage", "garbage"},
		{"three dots", "a.b.c"},
		{"high bytes", "\x80\xff\xfe.\xc3\x28.\xa0\xa1"},
	} {
		for _, where := range []string{"bearer", "cookie"} {
			bearer, cookie := tc.token, ""
			if where == "cookie" {
				if strings.ContainsAny(tc.token, "\x80\xff") {
					continue // not a valid cookie value for the client
				}
				bearer, cookie = "", tc.token
			}
			r := do(t, nil, "GET", d.url+"/me", "", bearer, cookie)
			if r.code != 401 || r.challenge() != challengeInvalid {
				t.Errorf("%s (%s): %d %q; want 401 %q", tc.name, where, r.code, r.challenge(), challengeInvalid)
			}
		}
	}

	// Bytes no client library sends, written on the wire by hand.
	for _, header := range []string{
		"Authorization: Bearer \x80\x81\xfe\xff.\xc0\xaf.\xed\xa0\x80",
		"Authorization: \xff\xfe",
		"Authorization: Bearer " + strings.Repeat("A", 40<<10),
		"Cookie: token=\xff\xfe; token=\x80",
		"Authorization: Bearer a.b.c\r\nAuthorization: Bearer " + valid,
	} {
		if code := rawRequest(t, d.url, "GET /me HTTP/1.1\r\nHost: demo\r\n"+header+"\r\nConnection: close\r\n\r\n"); code != 401 {
			t.Errorf("raw header %.40q: %d; want 401", header, code)
		}
	}
	// Control bytes are refused by net/http itself, before the middleware.
	if code := rawRequest(t, d.url, "GET /me HTTP/1.1\r\nHost: demo\r\nAuthorization: Bearer \x00\x01\r\nConnection: close\r\n\r\n"); code != 400 {
		t.Errorf("NUL in a header: %d; want net/http's 400", code)
	}

	if r := do(t, nil, "GET", d.url+"/healthz", "", "", ""); r.code != 200 {
		t.Errorf("/healthz after the bad tokens: %d", r.code)
	}
	if r := do(t, nil, "GET", d.url+"/me", "", valid, ""); r.code != 200 {
		t.Errorf("valid token after the bad ones: %d", r.code)
	}
}

// rawRequest writes req on a new connection and returns the status code.
func rawRequest(t *testing.T, base, req string) int {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestLogin(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, append(boltArgs(t), "-ttl", "90s", "-user", "ada", "-password", "s3cret")...)
	for _, tc := range []struct {
		name, method, body string
		code               int
	}{
		{"wrong password", "POST", `{"username":"ada","password":"nope"}`, 401},
		{"wrong user", "POST", `{"username":"demo","password":"s3cret"}`, 401},
		{"not JSON", "POST", `username=ada&password=s3cret`, 400},
		{"unknown field", "POST", `{"username":"ada","password":"s3cret","admin":true}`, 400},
		{"GET", "GET", "", 405},
		{"right", "POST", `{"username":"ada","password":"s3cret"}`, 200},
	} {
		r := do(t, nil, tc.method, d.url+"/login", tc.body, "", "")
		if r.code != tc.code {
			t.Errorf("%s: %d %s; want %d", tc.name, r.code, r.body, tc.code)
			continue
		}
		if tc.code == 401 && r.challenge() == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
		if tc.code != 200 {
			continue
		}
		var tr map[string]any
		if err := json.Unmarshal([]byte(r.body), &tr); err != nil {
			t.Fatal(err)
		}
		// expires_in counts to exp, a whole second: 90 minus the fraction of
		// the second of the login, rounded down.
		if in, _ := tr["expires_in"].(float64); tr["token_type"] != "Bearer" || in < 89 || in > 90 || tr["access_token"] == "" || tr["refresh_token"] == "" || tr["refresh_expires_in"] == nil || len(tr) != 5 {
			t.Errorf("token response %s", r.body)
		}
		sc := r.header.Get("Set-Cookie")
		for _, want := range []string{"token=", "HttpOnly", "SameSite=Lax", "Path=/"} {
			if !strings.Contains(sc, want) {
				t.Errorf("Set-Cookie %q lacks %s", sc, want)
			}
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Error("token response may be cached")
		}
	}
	// The password is printed to stdout for the person who started the
	// demo, never written to the log, which may be shipped elsewhere.
	if strings.Contains(d.stderr.String(), "s3cret") {
		t.Errorf("the log holds the password:\n%s", d.stderr)
	}
}

// POST /revoke (RFC 7009) needs a valid token of its own, answers 200 for
// any token, and revokes those that verify.
func TestRevokeEndpoint(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, boltArgs(t)...)
	caller, target := login(t, nil, d.url), login(t, nil, d.url)
	if r := do(t, nil, "POST", d.url+"/revoke", "token="+target, "", ""); r.code != 401 {
		t.Errorf("/revoke without a token of its own: %d; want 401", r.code)
	}
	for _, tok := range []string{"garbage", target, target} {
		if r := do(t, nil, "POST", d.url+"/revoke", "token="+url.QueryEscape(tok)+"&token_type_hint=access_token", caller, ""); r.code != 200 || r.body != "" {
			t.Errorf("/revoke %.10s: %d %q; want 200 and nothing else", tok, r.code, r.body)
		}
	}
	if r := do(t, nil, "GET", d.url+"/me", "", target, ""); r.code != 401 || r.challenge() != challengeRevoked {
		t.Errorf("revoked token: %d %q", r.code, r.challenge())
	}
	if r := do(t, nil, "GET", d.url+"/me", "", caller, ""); r.code != 200 {
		t.Errorf("caller: %d; want 200", r.code)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, boltArgs(t)...)
	if r := do(t, nil, "GET", d.url+"/healthz", "", "", ""); r.code != 200 || !strings.Contains(r.body, `"ok"`) {
		t.Errorf("/healthz: %d %s", r.code, r.body)
	}
}

// newTestServer serves newServer over a memorystore, closed when down is
// true: a store that answers every call with an error.
func newTestServer(t *testing.T, down, failOpen bool) (*httptest.Server, *logtest.SyncBuffer) {
	t.Helper()
	store := memorystore.New()
	if down {
		store.Close()
	} else {
		t.Cleanup(func() { store.Close() })
	}
	logs := &logtest.SyncBuffer{}
	h, err := newServer(serverConfig{
		Store: store, Secret: []byte(testSecret), TTL: time.Minute, User: "demo", Password: "demo",
		Log: slog.New(slog.NewTextHandler(logs, nil)), FailOpen: failOpen,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, logs
}

func TestStoreDown(t *testing.T) {
	t.Parallel()
	t.Run("fail-closed", func(t *testing.T) {
		t.Parallel()
		srv, logs := newTestServer(t, true, false)
		token := login(t, nil, srv.URL) // login needs no store
		for _, path := range []string{"/me", "/logout"} {
			method := map[string]string{"/me": "GET", "/logout": "POST"}[path]
			r := do(t, nil, method, srv.URL+path, "", token, "")
			if r.code != 503 || r.header.Get("Retry-After") == "" || strings.Contains(r.body, "closed") {
				t.Errorf("%s with the store down: %d %q; want 503 without detail", path, r.code, r.body)
			}
		}
		if r := do(t, nil, "GET", srv.URL+"/healthz", "", "", ""); r.code != 503 {
			t.Errorf("/healthz with the store down: %d; want 503", r.code)
		}
		if !strings.Contains(logs.String(), "blocklist: store is closed") {
			t.Errorf("the store's error is not in the log:\n%s", logs)
		}
		if r := do(t, nil, "GET", srv.URL+"/me", "", "garbage", ""); r.code != 401 {
			t.Errorf("garbage with the store down: %d; want 401", r.code)
		}
	})
	t.Run("fail-open", func(t *testing.T) {
		t.Parallel()
		srv, logs := newTestServer(t, true, true)
		token := login(t, nil, srv.URL)
		if r := do(t, nil, "GET", srv.URL+"/me", "", token, ""); r.code != 200 {
			t.Errorf("/me with the store down, fail-open: %d; want 200", r.code)
		}
		if !strings.Contains(logs.String(), "fail-open") {
			t.Errorf("fail-open error not logged:\n%s", logs)
		}
		if r := do(t, nil, "POST", srv.URL+"/logout", "", token, ""); r.code != 503 {
			t.Errorf("logout with the store down, fail-open: %d; want 503", r.code)
		}
	})
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		want  string
		usage bool
	}{
		{"unknown flag", []string{"-nope"}, nil, "flag provided but not defined: -nope", true},
		{"bad duration", []string{"-ttl", "soon"}, nil, `invalid value "soon" for flag -ttl`, true},
		{"unknown store", []string{"-store", "mongo"}, nil, `-store "mongo"`, true},
		{"short ttl", []string{"-ttl", "0s"}, nil, "-ttl 0s", true},
		{"short secret", []string{"-secret", "short"}, nil, "-secret is 5 bytes", true},
		{"flag of another store", []string{"-redis-url", "redis://x"}, nil, "-redis-url is only used with -store redis", true},
		{"bolt path with memory", []string{"-store", "memory", "-bolt-path", "x.db"}, nil, "-bolt-path is only used with -store bolt", true},
		{"argument", []string{"serve"}, nil, `unexpected argument "serve"`, true},
		{"empty user", []string{"-user", ""}, nil, "-user and -password", true},
		{"bad redis URL", []string{"-store", "redis", "-redis-url", "http://x"}, nil, "-redis-url", true},
		{"redis down", []string{"-store", "redis", "-redis-url", "redis://" + closed}, nil, "redis at " + closed + " does not answer", false},
		{"memcached down", []string{"-store", "memcached", "-memcached", closed}, nil, "memcached at " + closed + " does not answer", false},
		{"bolt folder missing", []string{"-bolt-path", filepath.Join(t.TempDir(), "no", "such", "dir", "b.db")}, nil, "no such file", false},
		{"short $JWT_SECRET", []string{"-store", "memory"}, map[string]string{"JWT_SECRET": "short"}, "$JWT_SECRET is 5 bytes", false},
		{"port taken", []string{"-store", "memory", "-addr", "256.0.0.1:1"}, nil, "listen tcp", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			err := run(t.Context(), tc.args, mapEnv(tc.env), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v; want an error containing %q", tc.args, err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
			var ue usageError
			if errors.As(err, &ue) != tc.usage {
				t.Errorf("usage error: %v; want %v", !tc.usage, tc.usage)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q; want nothing", stdout.String())
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	if err := run(t.Context(), []string{"-h"}, mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("-h: %v", err)
	}
	for _, name := range []string{"-addr", "-store", "-bolt-path", "-redis-url", "-memcached", "-cache", "-secret", "-ttl", "-user", "-password"} {
		if !strings.Contains(stderr.String(), "  "+name+" ") && !strings.Contains(stderr.String(), "  "+name+"\n") {
			t.Errorf("usage lacks %s:\n%s", name, stderr.String())
		}
	}
	if _, err := parseFlags([]string{"-help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: %v", err)
	}
}

// The key comes from -secret, else $JWT_SECRET, else a file beside the bolt
// file; a memory store gets a key for the run and writes no file.
func TestSecretSources(t *testing.T) {
	t.Parallel()
	verifiesWith := func(t *testing.T, token, key string) bool {
		_, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(key), nil }, jwt.WithValidMethods([]string{"HS256"}))
		return err == nil
	}
	const envKey = "a key from the environment, 32+ bytes"
	t.Run("flag beats env", func(t *testing.T) {
		t.Parallel()
		d := startDemo(t, map[string]string{"JWT_SECRET": envKey}, "-store", "memory", "-secret", testSecret)
		if !verifiesWith(t, login(t, nil, d.url), testSecret) {
			t.Error("token not signed with -secret")
		}
	})
	t.Run("env", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "b.db")
		d := startDemo(t, map[string]string{"JWT_SECRET": envKey}, "-bolt-path", path)
		if !verifiesWith(t, login(t, nil, d.url), envKey) {
			t.Error("token not signed with $JWT_SECRET")
		}
		if _, err := os.Stat(path + ".secret"); !os.IsNotExist(err) {
			t.Errorf("a secret file was written although $JWT_SECRET is set: %v", err)
		}
	})
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		d1 := startDemo(t, nil, "-store", "memory")
		d2 := startDemo(t, nil, "-store", "memory")
		if r := do(t, nil, "GET", d2.url+"/me", "", login(t, nil, d1.url), ""); r.code != 401 {
			t.Errorf("two memory-store runs share a key: %d", r.code)
		}
	})
	t.Run("corrupt file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "b.db")
		if err := os.WriteFile(path+".secret", []byte("not hex\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := run(t.Context(), []string{"-bolt-path", path, "-addr", "127.0.0.1:0"}, mapEnv(nil), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "delete it to make a new one") {
			t.Errorf("run with a corrupt secret file: %v", err)
		}
	})
}

// With no flags the demo keeps blocklist.db and its key in the working
// folder.
func TestDefaultBoltFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	d := startDemo(t, nil)
	token := login(t, nil, d.url)
	if r := do(t, nil, "POST", d.url+"/logout", "", token, ""); r.code != 204 {
		t.Fatalf("logout: %d", r.code)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"blocklist.db", "blocklist.db.secret"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The networked stores, with and without the cache in front.
func TestNetworkedStores(t *testing.T) {
	t.Parallel()
	redisSrv := testserver.Redis(t)
	memcachedSrv := testserver.Memcached(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"redis", []string{"-store", "redis", "-redis-url", "redis://" + redisSrv.Addr() + "/0"}},
		{"redis+cache", []string{"-store", "redis", "-redis-url", "redis://" + redisSrv.Addr() + "/0", "-cache"}},
		{"memcached", []string{"-store", "memcached", "-memcached", memcachedSrv.Addr()}},
		{"memcached+cache", []string{"-store", "memcached", "-memcached", memcachedSrv.Addr(), "-cache"}},
		{"memory+cache", []string{"-store", "memory", "-cache"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startDemo(t, nil, append(tc.args, "-secret", testSecret)...)
			token, other := login(t, nil, d.url), login(t, nil, d.url)
			steps := []struct {
				method, path, token string
				code                int
			}{
				{"GET", "/me", token, 200},
				{"POST", "/logout", token, 204},
				{"GET", "/me", token, 401},
				{"GET", "/me", other, 200},
				{"GET", "/healthz", "", 200},
			}
			for _, s := range steps {
				if r := do(t, nil, s.method, d.url+s.path, "", s.token, ""); r.code != s.code {
					t.Fatalf("%s %s: %d; want %d", s.method, s.path, r.code, s.code)
				}
			}
		})
	}
}
