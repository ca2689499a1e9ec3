package main

import (
	"net/http"
	"strings"
	"testing"
)

// The demo's 401s are JSON like the rest of its API, and keep the RFC 6750
// challenge.
func TestUnauthorizedJSON(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t, false, false)
	for _, tc := range []struct {
		name, method, path, bearer, body, challenge string
	}{
		{"no token", "GET", "/me", "", `{"error":"unauthorized"}`, challengeMissing},
		{"garbage token", "GET", "/me", "not.a.token", `{"error":"invalid_token"}`, challengeInvalid},
		{"logout without token", "POST", "/logout", "", `{"error":"unauthorized"}`, challengeMissing},
	} {
		r := do(t, nil, tc.method, srv.URL+tc.path, "", tc.bearer, "")
		if r.code != http.StatusUnauthorized || r.challenge() != tc.challenge ||
			r.header.Get("Content-Type") != "application/json" || strings.TrimSpace(r.body) != tc.body {
			t.Errorf("%s: %d %q %q %s; want 401 %q application/json %s", tc.name, r.code, r.challenge(), r.header.Get("Content-Type"), r.body, tc.challenge, tc.body)
		}
	}
}
