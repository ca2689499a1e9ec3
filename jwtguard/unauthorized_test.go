package jwtguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/jwtguard"
)

func TestUnauthorizedHandler(t *testing.T) {
	store := newMemory(t)
	var got error
	g := newGuard(t, store, jwtguard.WithRealm("api"), jwtguard.WithUnauthorizedHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		// The challenge is set before the handler runs.
		if w.Header().Get("WWW-Authenticate") == "" {
			t.Error("WWW-Authenticate not set when the handler runs")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "unauthorized"})
	}))
	revoked := hs256(t, claims("jti-unauth-revoked"))
	if err := g.Revoke(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	loggedOut := hs256(t, claims("jti-unauth-logout"))
	if err := g.Revoke(context.Background(), loggedOut); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		h         http.Handler
		r         *http.Request
		want      error
		challenge string
	}{
		{"middleware, no token", g.Middleware(whoami), header("X", "y"), jwtguard.ErrNoToken, `Bearer realm="api"`},
		{"middleware, empty bearer", g.Middleware(whoami), header("Authorization", "Bearer"), jwtguard.ErrInvalidToken, `Bearer realm="api", error="invalid_token"`},
		{"middleware, bad signature", g.Middleware(whoami), bearerRequest("GET", tamper(hs256(t, claims("x")))), jwtguard.ErrInvalidToken, `Bearer realm="api", error="invalid_token"`},
		{"middleware, revoked", g.Middleware(whoami), bearerRequest("GET", revoked), jwtguard.ErrRevoked, `Bearer realm="api", error="invalid_token", error_description="token revoked"`},
		{"logout, no token", g.LogoutHandler(), header("X", "y"), jwtguard.ErrNoToken, `Bearer realm="api"`},
		{"logout, revoked", g.LogoutHandler(), cookieRequest("POST", loggedOut), jwtguard.ErrRevoked, `Bearer realm="api", error="invalid_token", error_description="token revoked"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			res := serve(tc.h, tc.r)
			if res.code != http.StatusUnauthorized || res.challenge != tc.challenge {
				t.Errorf("answer %d %q; want 401 %q", res.code, res.challenge, tc.challenge)
			}
			if res.header.Get("Content-Type") != "application/json" || strings.TrimSpace(res.body) != `{"error":"unauthorized"}` {
				t.Errorf("body %q (%s); want the handler's JSON", res.body, res.header.Get("Content-Type"))
			}
			if res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q; want no-store", res.header.Get("Cache-Control"))
			}
			if !errors.Is(got, tc.want) {
				t.Errorf("handler got %v; want an error wrapping %v", got, tc.want)
			}
		})
	}

	// A valid token never reaches the handler, nor does a Store failure.
	got = nil
	if res := serve(g.Middleware(whoami), bearerRequest("GET", hs256(t, claims("jti-ok")))); res.code != 200 || got != nil {
		t.Errorf("valid token: %d, handler called with %v", res.code, got)
	}
	down := newGuard(t, failingStore(t), jwtguard.WithUnauthorizedHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		t.Errorf("unauthorized handler called for a Store failure: %v", err)
	}))
	if res := serve(down.Middleware(whoami), bearerRequest("GET", hs256(t, claims("jti-down")))); res.code != http.StatusServiceUnavailable {
		t.Errorf("store down: %d; want 503", res.code)
	}

	if g, err := jwtguard.New(newMemory(t), keyFunc, jwtguard.WithAlgorithms("HS256"), jwtguard.WithUnauthorizedHandler(nil)); err == nil || g != nil {
		t.Errorf("New with WithUnauthorizedHandler(nil) = %v, %v; want an error", g, err)
	} else if !strings.Contains(err.Error(), "WithUnauthorizedHandler(nil)") {
		t.Errorf("error = %q; want it to name WithUnauthorizedHandler(nil)", err)
	}
}

func TestDefaultUnauthorizedHandler(t *testing.T) {
	g := newGuard(t, newMemory(t))
	res := serve(g.Middleware(whoami), header("X", "y"))
	if res.code != http.StatusUnauthorized || res.challenge != challengeMissing || !strings.HasPrefix(res.header.Get("Content-Type"), "text/plain") {
		t.Errorf("default 401: %d %q %q", res.code, res.challenge, res.header.Get("Content-Type"))
	}
}

func TestPairJSON(t *testing.T) {
	// A clock at .7 s past a second: the access token's exp (whole seconds)
	// is then 59.3 s away, which expires_in rounds down.
	now := time.Unix(1_800_000_000, 700_000_000)
	g := newGuard(t, newMemory(t), jwtguard.WithClock(func() time.Time { return now }),
		jwtguard.WithSessions(jwtguard.Sessions{
			SigningMethod: jwt.SigningMethodHS256, SigningKey: testKey,
			AccessTTL: time.Minute, RefreshTTL: time.Hour,
		}))
	p, err := g.NewSession("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"*Pair": p, "Pair": *p} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%s): %v", name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"access_token":       p.AccessToken,
			"token_type":         "Bearer",
			"expires_in":         float64(59),
			"refresh_token":      p.RefreshToken,
			"refresh_expires_in": float64(3599),
		}
		if len(m) != len(want) {
			t.Errorf("%s: %s; want the members %v", name, b, want)
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s: %s = %v; want %v", name, k, m[k], v)
			}
		}
	}

	// Back again, as a client reads it.
	b, _ := json.Marshal(p)
	before := time.Now()
	var back jwtguard.Pair
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	if back.AccessToken != p.AccessToken || back.RefreshToken != p.RefreshToken {
		t.Errorf("tokens did not survive the round trip: %+v", back)
	}
	if d := back.AccessExpiresAt.Sub(before); d < 59*time.Second || d > 60*time.Second {
		t.Errorf("AccessExpiresAt %v after the call; want 59s", d)
	}
	if d := back.RefreshExpiresAt.Sub(before); d < 3599*time.Second || d > 3600*time.Second {
		t.Errorf("RefreshExpiresAt %v after the call; want 3599s", d)
	}
	if again, _ := json.Marshal(back); string(again) != string(b) {
		t.Errorf("marshalled again: %s; want %s", again, b)
	}

	// A Pair made by hand counts from now; absent members stay absent.
	hand, _ := json.Marshal(jwtguard.Pair{AccessToken: "a", AccessExpiresAt: time.Now().Add(time.Hour + time.Second/2)})
	if string(hand) != `{"access_token":"a","token_type":"Bearer","expires_in":3600}` {
		t.Errorf("hand-made pair: %s", hand)
	}
	expired, _ := json.Marshal(jwtguard.Pair{AccessToken: "a", AccessExpiresAt: time.Now().Add(-time.Hour)})
	if string(expired) != `{"access_token":"a","token_type":"Bearer","expires_in":0}` {
		t.Errorf("expired pair: %s", expired)
	}

	var lower jwtguard.Pair
	if err := json.Unmarshal([]byte(`{"access_token":"a","token_type":"bearer"}`), &lower); err != nil || lower.AccessToken != "a" || !lower.AccessExpiresAt.IsZero() {
		t.Errorf("token_type bearer: %+v, %v; want accepted, no expiry", lower, err)
	}
	for _, bad := range []string{
		`{"token_type":"Bearer","expires_in":60}`,
		`{"access_token":"a","token_type":"mac"}`,
		`{"access_token":"a"}`,
		`{"access_token":"a","token_type":"Bearer","expires_in":-1}`,
		`{"access_token":"a","token_type":"Bearer","refresh_expires_in":-5}`,
		`{"access_token":"a","token_type":"Bearer","expires_in":"60"}`,
		`[]`,
	} {
		keep := jwtguard.Pair{AccessToken: "kept"}
		if err := json.Unmarshal([]byte(bad), &keep); err == nil || keep.AccessToken != "kept" {
			t.Errorf("json.Unmarshal(%s) = %v, %+v; want an error and the Pair unchanged", bad, err, keep)
		}
	}
}
