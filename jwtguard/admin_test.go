package jwtguard_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// adminCall sends one request to h and decodes its JSON answer.
func adminCall(t *testing.T, h http.Handler, method, target, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	var v map[string]any
	if rec.Code != http.StatusMethodNotAllowed && rec.Code != http.StatusNotFound {
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %s: %d, body %q is not JSON: %v", method, target, rec.Code, rec.Body.String(), err)
		}
	}
	return rec.Code, v
}

func sessionOptions() jwtguard.Option {
	return jwtguard.WithSessions(jwtguard.Sessions{SigningMethod: jwt.SigningMethodHS256, SigningKey: testKey})
}

func TestAdminRevokeAndCheck(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store, sessionOptions())
	h := http.StripPrefix("/admin", g.AdminHandler())
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

	code, v := adminCall(t, h, "POST", "/admin/revocations", fmt.Sprintf(`{"jti":"a/b c","exp":%q}`, exp.Format(time.RFC3339)))
	if code != 200 || v["jti"] != "a/b c" || v["revoked"] != true || v["until"] != exp.Format(time.RFC3339) {
		t.Fatalf("revoke: %d %v", code, v)
	}
	code, v = adminCall(t, h, "GET", "/admin/revocations/"+url.PathEscape("a/b c"), "")
	if code != 200 || v["revoked"] != true || v["until"] != exp.Format(time.RFC3339) {
		t.Fatalf("check a/b c: %d %v", code, v)
	}
	code, v = adminCall(t, h, "GET", "/admin/revocations/nope", "")
	if code != 200 || v["revoked"] != false || v["until"] != nil {
		t.Fatalf("check nope: %d %v", code, v)
	}

	// A raw token, by its id, without checking its signature: one signed
	// with a key the Guard does not know is revoked all the same.
	raw := sign(t, jwt.SigningMethodHS256, wrongKey, claims("leaked"))
	code, v = adminCall(t, h, "POST", "/admin/revocations", fmt.Sprintf(`{"token":%q}`, raw))
	if code != 200 || v["jti"] != "leaked" || v["revoked"] != true {
		t.Fatalf("revoke token: %d %v", code, v)
	}
	if until, _ := store.RevokedUntil(t.Context(), "leaked"); until.IsZero() {
		t.Fatal("the token's id is not revoked")
	}
	noJTI := hs256(t, claims(""))
	code, v = adminCall(t, h, "POST", "/admin/revocations", fmt.Sprintf(`{"token":%q}`, noJTI))
	if id, _ := v["jti"].(string); code != 200 || !strings.HasPrefix(id, "sig:") {
		t.Fatalf("revoke token without jti: %d %v", code, v)
	}
	if _, err := g.Verify(t.Context(), noJTI); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("Verify after admin revoke: %v; want ErrRevoked", err)
	}
	expired := claims("old")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	code, v = adminCall(t, h, "POST", "/admin/revocations", fmt.Sprintf(`{"token":%q}`, hs256(t, expired)))
	if code != 200 || v["expired"] != true || v["revoked"] != false {
		t.Fatalf("revoke expired token: %d %v", code, v)
	}

	// Sessions and subjects, as RevokeSession and LogoutAll.
	p, err := g.NewSession("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, v = adminCall(t, h, "POST", "/admin/sessions/"+url.PathEscape(p.SessionID)+"/revoke", ""); code != 200 || v["revoked"] != true {
		t.Fatalf("revoke session: %d %v", code, v)
	}
	if _, err := g.Verify(t.Context(), p.AccessToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("Verify after session revoke: %v", err)
	}
	q, err := g.NewSession("bob/ü", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, v = adminCall(t, h, "POST", "/admin/subjects/"+url.PathEscape("bob/ü")+"/logout-all", ""); code != 200 || v["logged_out"] != true || v["sub"] != "bob/ü" {
		t.Fatalf("logout-all: %d %v", code, v)
	}
	if _, err := g.Verify(t.Context(), q.AccessToken); !errors.Is(err, jwtguard.ErrRevoked) {
		t.Fatalf("Verify after logout-all: %v", err)
	}
}

// Bad input is 400 with {"error"}, never a panic or a silent success.
func TestAdminBadInput(t *testing.T) {
	store := newMemory(t)
	h := newGuard(t, store, sessionOptions()).AdminHandler()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	long := strings.Repeat("x", blocklist.MaxIDLen+1)
	for _, c := range []struct{ method, target, body string }{
		{"POST", "/revocations", `{}`},
		{"POST", "/revocations", `{"jti":"x"}`},
		{"POST", "/revocations", `{"exp":"` + future + `"}`},
		{"POST", "/revocations", `{"jti":"","exp":"` + future + `"}`},
		{"POST", "/revocations", `{"jti":"` + long + `","exp":"` + future + `"}`},
		{"POST", "/revocations", `{"jti":"x","exp":"tomorrow"}`},
		{"POST", "/revocations", `{"jti":"x","exp":"2001-01-01T00:00:00Z"}`},
		{"POST", "/revocations", `{"jti":"x","exp":"` + future + `","token":"a.b.c"}`},
		{"POST", "/revocations", `{"token":"a.b.c"}`},
		{"POST", "/revocations", `{"token":"` + hs256(t, claims("sub:alice")) + `"}`},
		{"POST", "/revocations", `{"jti":"x","exp":"` + future + `","extra":1}`},
		{"POST", "/revocations", `{"jti":"x","exp":"` + future + `"} {}`},
		{"POST", "/revocations", `[`},
		{"POST", "/revocations", `{"jti":"` + strings.Repeat("y", 70<<10) + `"}`},
		{"GET", "/revocations/" + long, ""},
		{"GET", "/revocations?limit=0", ""},
		{"GET", "/revocations?limit=1001", ""},
		{"GET", "/revocations?limit=x", ""},
		{"GET", "/revocations?cursor=!!", ""},
		{"GET", "/revocations?colour=red", ""},
	} {
		code, v := adminCall(t, h, c.method, c.target, c.body)
		if msg, _ := v["error"].(string); code != 400 || msg == "" {
			t.Errorf("%s %s %.60q: %d %v; want 400 with an error", c.method, c.target, c.body, code, v)
		}
	}
	// A form post (what another site could send without a preflight) is
	// refused.
	req := httptest.NewRequest("POST", "/revocations", strings.NewReader(`jti=x`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Errorf("form post: %d; want 400", rec.Code)
	}
	if n := store.Len(); n != 0 {
		t.Errorf("bad input stored %d entries", n)
	}

	// Without sessions, the session endpoints are bad requests.
	plain := newGuard(t, store).AdminHandler()
	for _, target := range []string{"/sessions/s/revoke", "/subjects/u/logout-all"} {
		if code, _ := adminCall(t, plain, "POST", target, ""); code != 400 {
			t.Errorf("%s without sessions: %d; want 400", target, code)
		}
	}
	if code, _ := adminCall(t, h, "DELETE", "/revocations", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d; want 405", code)
	}
}

// A Store that cannot answer is 503, never a "not revoked".
func TestAdminStoreFailure(t *testing.T) {
	store := newMemory(t)
	h := newGuard(t, store, sessionOptions()).AdminHandler()
	store.Close()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct{ method, target, body string }{
		{"POST", "/revocations", `{"jti":"x","exp":"` + future + `"}`},
		{"POST", "/revocations", `{"token":"` + hs256(t, claims("t")) + `"}`},
		{"GET", "/revocations/x", ""},
		{"POST", "/sessions/s/revoke", ""},
		{"POST", "/subjects/u/logout-all", ""},
	} {
		code, v := adminCall(t, h, c.method, c.target, c.body)
		if msg, _ := v["error"].(string); code != 503 || msg == "" {
			t.Errorf("%s %s: %d %v; want 503 with an error", c.method, c.target, code, v)
		}
	}
}

// Listing pages through every live revocation in id order, each once,
// over a real ScanStore.
func TestAdminListRedis(t *testing.T) {
	srv := testserver.Redis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	store := redisstore.New(client, redisstore.WithPrefix("admin-test:"))
	g := newGuard(t, store, sessionOptions())
	h := g.AdminHandler()
	exp := time.Now().Add(time.Hour)
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("id-%02d", i)
		if i%5 == 0 {
			id = fmt.Sprintf("other %d\x00\xff", i) // anything is an id
		}
		if err := store.Revoke(t.Context(), id, exp); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	sort.Strings(want)
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		target := "/revocations?limit=7"
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		code, v := adminCall(t, h, "GET", target, "")
		if code != 200 {
			t.Fatalf("list: %d %v", code, v)
		}
		for _, r := range v["revocations"].([]any) {
			r := r.(map[string]any)
			id := r["jti"].(string)
			if b, ok := r["jti_base64"].(string); ok {
				raw, _ := base64.StdEncoding.DecodeString(b)
				id = string(raw)
			}
			if r["kind"] != jwtguard.KindToken || r["until"] == nil {
				t.Errorf("listed %v", r)
			}
			got = append(got, id)
		}
		cursor, _ = v["next"].(string)
		if cursor == "" {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("pages listed\n%q\nwant\n%q", got, want)
	}
	code, v := adminCall(t, h, "GET", "/revocations?prefix=id-1", "")
	if list := v["revocations"].([]any); code != 200 || len(list) != 8 || v["next"] != "" {
		t.Fatalf("prefix id-1: %d, %d entries, next %v", code, len(list), v["next"])
	}
	if _, err := g.NewSession("carol", nil); err != nil {
		t.Fatal(err)
	}
	if code, _ := adminCall(t, h, "POST", "/subjects/carol/logout-all", ""); code != 200 {
		t.Fatalf("logout-all: %d", code)
	}
	code, v = adminCall(t, h, "GET", "/stats", "")
	kinds, _ := v["by_kind"].(map[string]any)
	if code != 200 || v["revocations"] != 26.0 || kinds["token"] != 25.0 || kinds["subject"] != 1.0 || v["sessions"] != true {
		t.Fatalf("stats: %d %v", code, v)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/revocations", "/stats"} {
		if code, _ := adminCall(t, h, "GET", target, ""); code != 503 {
			t.Errorf("%s with Redis down: %d; want 503", target, code)
		}
	}
}
