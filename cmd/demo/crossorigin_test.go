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
	srv, _ := newTestServer(t, false, false)
	post := func(path, body, bearer, cookie string, headers map[string]string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
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
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL}

	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"Origin of another site", evil, http.StatusForbidden},
		{"Sec-Fetch-Site cross-site", crossSite, http.StatusForbidden},
		{"same origin", sameOrigin, http.StatusNoContent},
		{"no headers", nil, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/logout", "/logout-all"} {
				token := login(t, nil, srv.URL)
				if got := post(path, "", "", token, tc.headers); got != tc.want {
					t.Errorf("cookie POST %s: %d; want %d", path, got, tc.want)
				}
				// Still logged in after a refusal.
				if tc.want == http.StatusForbidden {
					if r := do(t, nil, "GET", srv.URL+"/me", "", token, ""); r.code != 200 {
						t.Errorf("after the refused %s, /me: %d; want 200", path, r.code)
					}
				}
			}
			token := login(t, nil, srv.URL)
			want := tc.want
			if want == http.StatusNoContent {
				want = http.StatusOK
			}
			if got := post("/revoke", "token="+token, "", token, tc.headers); got != want {
				t.Errorf("cookie POST /revoke: %d; want %d", got, want)
			}
		})
	}

	t.Run("bearer with an Origin of another site", func(t *testing.T) {
		for _, path := range []string{"/logout", "/logout-all"} {
			token := login(t, nil, srv.URL)
			if got := post(path, "", token, "", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); got != http.StatusNoContent {
				t.Errorf("bearer POST %s: %d; want 204", path, got)
			}
		}
	})

	t.Run("login and refresh", func(t *testing.T) {
		// Login CSRF would log the victim in as the attacker.
		if got := post("/login", `{"username":"demo","password":"demo"}`, "", "", evil); got != http.StatusForbidden {
			t.Errorf("cross-site /login: %d; want 403", got)
		}
		r := do(t, nil, "POST", srv.URL+"/login", `{"username":"demo","password":"demo"}`, "", "")
		var tr tokenResponse
		if err := json.Unmarshal([]byte(r.body), &tr); err != nil {
			t.Fatal(err)
		}
		if got := post("/refresh", `{"refresh_token":"`+tr.RefreshToken+`"}`, "", "", crossSite); got != http.StatusForbidden {
			t.Errorf("cross-site /refresh: %d; want 403", got)
		}
		if got := post("/refresh", `{"refresh_token":"`+tr.RefreshToken+`"}`, "", "", sameOrigin); got != http.StatusOK {
			t.Errorf("same-origin /refresh: %d; want 200", got)
		}
	})
}
