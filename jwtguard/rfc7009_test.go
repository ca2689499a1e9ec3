package jwtguard_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist/jwtguard"
)

// RFC 7009 section 2.1: a token is revoked only for a caller entitled to
// it. By default that is a caller whose own token has the same sub; any
// other caller gets the RFC's error and nothing is stored.
func TestRevocationOwnership(t *testing.T) {
	t.Parallel()
	store := newMemory(t)
	g := newGuard(t, store)
	tok := func(sub, jti string, extra ...any) string {
		c := claims(jti)
		c["sub"] = sub
		for i := 0; i+1 < len(extra); i += 2 {
			c[extra[i].(string)] = extra[i+1]
		}
		if sub == "" {
			delete(c, "sub")
		}
		return hs256(t, c)
	}
	alice, bob := tok("alice", "alice-caller"), tok("bob", "bob-caller")
	revokedCaller := tok("alice", "revoked-caller")
	if err := g.Revoke(context.Background(), revokedCaller); err != nil {
		t.Fatal(err)
	}
	before := store.Len()

	for _, tc := range []struct {
		name, caller, target string
		code                 int
		body, challenge      string
	}{
		{"another subject's token", bob, tok("alice", "a1"), 400, `{"error":"unauthorized_client"}` + "\n", ""},
		{"no caller", "", tok("alice", "a2"), 401, `{"error":"invalid_client"}` + "\n", challengeMissing},
		{"caller with a bad signature", sign(t, jwt.SigningMethodHS256, wrongKey, claims("x")), tok("alice", "a3"), 401, `{"error":"invalid_client"}` + "\n", challengeInvalid},
		{"revoked caller", revokedCaller, tok("alice", "a4"), 401, `{"error":"invalid_client"}` + "\n", challengeRevoked},
		{"a token without sub", alice, tok("", "a5"), 400, `{"error":"unauthorized_client"}` + "\n", ""},
		{"a caller without sub", tok("", "nosub-caller"), tok("", "a6"), 400, `{"error":"unauthorized_client"}` + "\n", ""},
	} {
		r := formRequest("token=" + tc.target)
		if tc.caller != "" {
			withBearer(r, tc.caller)
		}
		res := serve(g.RevocationHandler(), r)
		if res.code != tc.code || res.body != tc.body || res.challenge != tc.challenge {
			t.Errorf("%s: %d %q %q; want %d %q %q", tc.name, res.code, res.body, res.challenge, tc.code, tc.body, tc.challenge)
		}
		if _, err := g.Verify(context.Background(), tc.target); err != nil {
			t.Errorf("%s: the target was revoked: %v", tc.name, err)
		}
	}
	if n := store.Len(); n != before {
		t.Fatalf("%d entries stored by refused revocations", n-before)
	}

	// The owner may, with or without the middleware.
	own := tok("alice", "own")
	if res := serve(g.RevocationHandler(), withBearer(formRequest("token="+own), alice)); res.code != 200 || res.body != "" {
		t.Errorf("the owner's revocation: %d %q; want 200", res.code, res.body)
	}
	own2 := tok("alice", "own2")
	if res := serve(g.Middleware(g.RevocationHandler()), withBearer(formRequest("token="+own2), alice)); res.code != 200 {
		t.Errorf("the owner's revocation behind the middleware: %d", res.code)
	}
	for _, revoked := range []string{own, own2} {
		if _, err := g.Verify(context.Background(), revoked); err == nil {
			t.Error("the owner's token was not revoked")
		}
	}
}

// An administrator policy: WithRevocationPolicy adds a role to the
// default.
func TestRevocationPolicy(t *testing.T) {
	t.Parallel()
	g := newGuard(t, newMemory(t), jwtguard.WithRevocationPolicy(func(r *http.Request, caller, target *jwtguard.Token) bool {
		return jwtguard.SameSubject(r, caller, target) || caller != nil && caller.Claims["role"] == "admin"
	}))
	admin := claims("admin")
	admin["sub"], admin["role"] = "root", "admin"
	victim := claims("victim")
	victim["sub"] = "mallory"
	target := hs256(t, victim)
	if res := serve(g.RevocationHandler(), withBearer(formRequest("token="+target), hs256(t, admin))); res.code != 200 {
		t.Fatalf("admin revocation: %d %q", res.code, res.body)
	}
	if _, err := g.Verify(context.Background(), target); err == nil {
		t.Error("the admin's revocation was not stored")
	}
	if _, err := jwtguard.New(newMemory(t), keyFunc, jwtguard.WithAlgorithms("HS256"), jwtguard.WithRevocationPolicy(nil)); err == nil {
		t.Error("WithRevocationPolicy(nil): no error")
	}
}

// Under sessions the usual target is a refresh token, and revoking it ends
// its session: only for the same subject.
func TestRevocationOwnershipSessions(t *testing.T) {
	t.Parallel()
	g := sessionGuard(t, newMemory(t))
	alice, bob := newSession(t, g, "alice"), newSession(t, g, "bob")
	res := serve(g.RevocationHandler(), withBearer(formRequest("token="+alice.RefreshToken+"&token_type_hint=refresh_token"), bob.AccessToken))
	if res.code != 400 {
		t.Errorf("bob revoking alice's refresh token: %d; want 400", res.code)
	}
	wantAccess(t, g, alice.AccessToken, true, "alice's session after bob's refused revocation")
	if res := serve(g.RevocationHandler(), withBearer(formRequest("token="+alice.AccessToken), alice.RefreshToken)); res.code != 401 {
		t.Errorf("a refresh token as the caller's credential: %d; want 401", res.code)
	}
	if _, err := g.Refresh(context.Background(), alice.RefreshToken); err != nil {
		t.Errorf("alice's refresh token after the refused revocations: %v", err)
	}
}
