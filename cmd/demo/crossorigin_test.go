package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Another site's page can make the browser POST with the demo's cookie
// (SameSite=Lax does not stop every such request: same-site subdomains,
// top-level navigations within Lax's two-minute window in some browsers).
// Every cookie-carrying POST is refused when it comes from another origin;
// the same request with a bearer header, which no other site can make the
// browser send, is served.
func TestCrossSiteCookiePosts(t *testing.T) {
	t.Parallel()
	post := func(t *testing.T, base, path, body, bearer, cookie string, headers map[string]string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
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
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	evil := map[string]string{"Origin": "https://evil.example"}
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site"}
	sameOrigin := func(base string) map[string]string {
		return map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": base}
	}

	// Each case on a server of its own, /logout-all last: a login right
	// after it may be refused (tokens minted within the leeway after
	// LogoutAll are).
	for _, tc := range []struct {
		name    string
		headers func(base string) map[string]string
		refused bool
	}{
		{"Origin of another site", func(string) map[string]string { return evil }, true},
		{"Sec-Fetch-Site cross-site", func(string) map[string]string { return crossSite }, true},
		{"same origin", sameOrigin, false},
		{"no headers", func(string) map[string]string { return nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newTestServer(t, false, false)
			headers := tc.headers(srv.URL)
			for _, step := range []struct {
				path   string
				form   bool
				served int
			}{
				{"/logout", false, http.StatusNoContent},
				{"/revoke", true, http.StatusOK},
				{"/logout-all", false, http.StatusNoContent},
			} {
				token := login(t, nil, srv.URL)
				body := ""
				if step.form {
					body = "token=" + token
				}
				want := step.served
				if tc.refused {
					want = http.StatusForbidden
				}
				if got := post(t, srv.URL, step.path, body, "", token, headers); got != want {
					t.Errorf("cookie POST %s: %d; want %d", step.path, got, want)
				}
				// Still logged in after a refusal.
				if tc.refused {
					if r := do(t, nil, "GET", srv.URL+"/me", "", token, ""); r.code != 200 {
						t.Errorf("after the refused %s, /me: %d; want 200", step.path, r.code)
					}
				}
			}
		})
	}

	t.Run("bearer with an Origin of another site", func(t *testing.T) {
		srv, _ := newTestServer(t, false, false)
		for _, path := range []string{"/logout", "/logout-all"} {
			token := login(t, nil, srv.URL)
			if got := post(t, srv.URL, path, "", token, "", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); got != http.StatusNoContent {
				t.Errorf("bearer POST %s: %d; want 204", path, got)
			}
		}
	})

	t.Run("login and refresh", func(t *testing.T) {
		srv, _ := newTestServer(t, false, false)
		// Login CSRF would log the victim in as the attacker.
		if got := post(t, srv.URL, "/login", `{"username":"demo","password":"demo"}`, "", "", evil); got != http.StatusForbidden {
			t.Errorf("cross-site /login: %d; want 403", got)
		}
		r := do(t, nil, "POST", srv.URL+"/login", `{"username":"demo","password":"demo"}`, "", "")
		var tr tokenResponse
		if err := json.Unmarshal([]byte(r.body), &tr); err != nil {
			t.Fatal(err)
		}
		if got := post(t, srv.URL, "/refresh", `{"refresh_token":"`+tr.RefreshToken+`"}`, "", "", crossSite); got != http.StatusForbidden {
			t.Errorf("cross-site /refresh: %d; want 403", got)
		}
		if got := post(t, srv.URL, "/refresh", `{"refresh_token":"`+tr.RefreshToken+`"}`, "", "", sameOrigin(srv.URL)); got != http.StatusOK {
			t.Errorf("same-origin /refresh: %d; want 200", got)
		}
	})
}
