package jwtguard_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/jwtblocklist/blocklist/jwtguard"
)

func TestAuthenticate(t *testing.T) {
	store := newMemory(t)
	g := newGuard(t, store)
	valid, revoked := hs256(t, claims("jti-auth")), hs256(t, claims("jti-auth-revoked"))
	if err := g.Revoke(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}

	r := bearerRequest("GET", valid)
	authed, err := g.Authenticate(r)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if tok, ok := jwtguard.TokenFromContext(authed.Context()); !ok || tok.ID != "jti-auth" {
		t.Errorf("token in the context: %+v, %v", tok, ok)
	}
	if _, ok := jwtguard.TokenFromContext(r.Context()); ok || authed == r {
		t.Error("Authenticate modified the request passed in")
	}

	for _, tc := range []struct {
		name string
		r    *http.Request
		want error
	}{
		{"no token", header("X", "y"), jwtguard.ErrNoToken},
		{"invalid", bearerRequest("GET", "abc"), jwtguard.ErrInvalidToken},
		{"revoked", bearerRequest("GET", revoked), jwtguard.ErrRevoked},
		{"cross-origin cookie", crossOriginRequest("POST", valid, false, map[string]string{"Origin": "https://evil.example"}), jwtguard.ErrCrossOrigin},
	} {
		if authed, err := g.Authenticate(tc.r); authed != nil || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, %v; want nil and %v", tc.name, authed, err, tc.want)
		}
	}

	// Store down: an error, unless the Guard fails open.
	down := failingStore(t)
	if authed, err := newGuard(t, down).Authenticate(bearerRequest("GET", valid)); authed != nil || err == nil ||
		errors.Is(err, jwtguard.ErrInvalidToken) || errors.Is(err, jwtguard.ErrRevoked) {
		t.Errorf("store down, fail closed: %v, %v; want nil and the Store's error", authed, err)
	}
	var reported error
	open := newGuard(t, down, jwtguard.WithFailOpen(func(r *http.Request, err error) { reported = err }))
	authed, err = open.Authenticate(bearerRequest("GET", valid))
	if err != nil || authed == nil || reported == nil {
		t.Fatalf("store down, fail open: %v, %v, reported %v; want the request and the error reported", authed, err, reported)
	}
	if _, ok := jwtguard.TokenFromContext(authed.Context()); !ok {
		t.Error("fail open: no token in the context")
	}
	if authed, err := open.Authenticate(bearerRequest("GET", "abc")); authed != nil || !errors.Is(err, jwtguard.ErrInvalidToken) {
		t.Errorf("fail open, invalid token: %v, %v; want ErrInvalidToken", authed, err)
	}
}
