package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// The seed's story, clicked through on the demo's page in a real browser, on
// every store of the demo: the token cookie is HttpOnly and gone after
// logout, a copied token is refused after logout with RFC 6750's challenge,
// a logout ends the session's refresh token, and "log out everywhere" ends
// every token. On the default store, a page of another origin (same site),
// then one of another site, try to log the user out with fetch and with a
// form, and are refused.
func TestStory(t *testing.T) {
	browserPath := chromiumPath(t)
	start := time.Now()
	bin := buildDemo(t) // bounded by go test -timeout: a cold build on a loaded machine takes minutes
	t.Logf("demo built in %v", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	start = time.Now()
	browser := startBrowser(t, ctx, browserPath)
	t.Logf("browser started in %v", time.Since(start).Round(time.Millisecond))
	shots := newShots(t)
	defer fmt.Printf("e2e: screenshots of each step in %s\n", shots.dir)

	stores := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"bolt", func(t *testing.T) []string {
			return []string{"-store", "bolt", "-bolt-path", filepath.Join(t.TempDir(), "blocklist.db")}
		}},
		{"memory", func(*testing.T) []string { return []string{"-store", "memory"} }},
		{"redis+cache", func(t *testing.T) []string {
			return []string{"-store", "redis", "-redis-url", "redis://" + testserver.Redis(t).Addr(), "-cache"}
		}},
		{"memcached", func(t *testing.T) []string {
			return []string{"-store", "memcached", "-memcached", testserver.Memcached(t).Addr()}
		}},
	}
	for i, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			d := startDemo(t, bin, s.args(t)...)
			b := newTab(t, browser, shots, chromedp.WithNewBrowserContext())
			var whileLoggedIn func()
			if i == 0 {
				whileLoggedIn = func() {
					for _, a := range attacks {
						crossOrigin(t, b, d, a)
					}
				}
			}
			story(t, b, d, i == 0, whileLoggedIn)
		})
	}
}

// story clicks through the page's steps and checks each status. With
// shoot it saves a screenshot of each step. It calls whileLoggedIn, if not
// nil, while the user is logged in, before "log out everywhere".
func story(t *testing.T, b *tab, d *demo, shoot bool, whileLoggedIn func()) {
	b.do("open the page", chromedp.Navigate(d.url+"/"), chromedp.WaitVisible(chromedp.ID("login")))
	shot := func(name, id string) {
		if shoot {
			b.shoot(name, id)
		}
	}

	b.step("login", 200)
	token := eval[string](b, `document.getElementById("token").value`)
	if strings.Count(token, ".") != 2 {
		t.Fatalf("token box holds %q; want the access token of the login", token)
	}
	if c := b.tokenCookie(d.url); c == nil || c.Value != token || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
		t.Fatalf("after login the token cookie is %+v; want the access token, HttpOnly, SameSite=Lax", c)
	}
	shot("login", "step-login")
	b.step("me", 200)
	shot("me", "step-me")
	b.do("copy the token", chromedp.Click(chromedp.ID("copy")))
	shot("token", "step-token")

	b.step("logout", 204)
	if c := b.tokenCookie(d.url); c != nil {
		t.Fatalf("after logout the browser still holds the cookie %+v", c)
	}
	shot("logout", "step-logout")
	if _, text := b.step("me", 401); strings.Contains(text, "invalid_token") {
		t.Errorf("GET /me without a cookie: %q; want a challenge without an error, as for no token", text)
	}
	_, text := b.step("replay", 401)
	if !strings.Contains(text, `WWW-Authenticate: Bearer realm="blocklist-demo", error="invalid_token"`) {
		t.Errorf("replayed token: %q; want RFC 6750's invalid_token challenge", text)
	}
	shot("replay", "step-replay")

	// The logout ended the session: its refresh token is dead too.
	if _, text := b.step("refresh", 401); !strings.Contains(text, "invalid_grant") {
		t.Errorf("refresh after logout: %q; want invalid_grant", text)
	}
	shot("refresh-after-logout", "step-refresh")
	b.step("login", 200)
	first := eval[string](b, `document.getElementById("token").value`)
	b.step("refresh", 200)
	refreshed := eval[string](b, `document.getElementById("token").value`)
	if refreshed == first {
		t.Fatal("refresh returned the same access token")
	}
	if c := b.tokenCookie(d.url); c == nil || c.Value != refreshed {
		t.Fatalf("after refresh the cookie is %+v; want the new access token", c)
	}
	shot("refresh", "step-refresh")
	b.step("me", 200)
	if whileLoggedIn != nil {
		whileLoggedIn()
	}

	b.do("copy the refreshed token", chromedp.Click(chromedp.ID("copy")))
	b.step("logout-all", 204)
	if c := b.tokenCookie(d.url); c != nil {
		t.Fatalf("after logout-all the browser still holds the cookie %+v", c)
	}
	shot("logout-all", "step-logout-all")
	b.step("me", 401)
	if _, text := b.step("replay", 401); !strings.Contains(text, `error="invalid_token"`) {
		t.Errorf("token replayed after logout-all: %q; want invalid_token", text)
	}
	// The story ends at "log out everywhere". (A Guard with a leeway L
	// refuses the tokens of a login in the L after it, see
	// jwtguard.Guard.LogoutAll; the demo has none.)
	shot("story", "")
}

// step clicks the button with id and waits for the page to print the
// answer to the request it sent. It checks the status, and that the page's
// scripts still see no cookie. It returns the status and the printed text.
func (b *tab) step(id string, want int) (int, string) {
	b.t.Helper()
	before := eval[int](b, `Number(document.body.dataset.requests)`)
	b.do("click "+id,
		chromedp.Click(chromedp.ID(id)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[bool](fmt.Sprintf(`Number(document.body.dataset.requests) > %d`, before),
				chromedp.WithPollingTimeout(stepTimeout), pollEvery())(ctx, t)
			return err
		}))
	status := eval[string](b, fmt.Sprintf(`document.getElementById(%q).dataset.status`, id+"-result"))
	text := eval[string](b, fmt.Sprintf(`document.getElementById(%q).textContent`, id+"-result"))
	if status != fmt.Sprint(want) {
		b.t.Fatalf("step %s: status %s; want %d\n%s", id, status, want, text)
	}
	if c := eval[string](b, `document.cookie`); c != "" {
		b.t.Fatalf("after step %s, document.cookie is %q; want it empty (the token cookie is HttpOnly)", id, c)
	}
	if shown := eval[string](b, `document.getElementById("cookie").textContent`); shown != "(empty)" {
		b.t.Fatalf("after step %s the page shows document.cookie as %q", id, shown)
	}
	var code int
	fmt.Sscan(status, &code)
	return code, text
}

// tokenCookie returns the browser's token cookie for url, or nil.
func (b *tab) tokenCookie(url string) *network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url + "/"}})
	if err != nil {
		b.t.Fatalf("reading cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == "token" {
			return c
		}
	}
	return nil
}

// attack is a page of another origin trying to log the user out, and what
// the browser and the demo must do with its requests.
type attack struct {
	name       string // for messages and screenshots
	host       string // the other page's host; its port always differs from the demo's
	fetchSite  string // the Sec-Fetch-Site the browser sends
	cookieSent bool   // whether SameSite=Lax lets the cookie go along
	status     int    // the demo's answer
}

// pollEvery polls on a timer: the default, requestAnimationFrame, stops in
// a tab that is not in front, as the story tab is while another one attacks.
func pollEvery() chromedp.PollOption { return chromedp.WithPollingInterval(25 * time.Millisecond) }

var attacks = []attack{
	// Another port of the same host is another origin but the same site:
	// SameSite=Lax sends the cookie, and only the cross-origin protection
	// stands between that page and the user's session.
	{name: "other-origin", host: "127.0.0.1", fetchSite: "same-site", cookieSent: true, status: http.StatusForbidden},
	// Another site: SameSite=Lax keeps the cookie off a POST, so the
	// request carries no token at all.
	{name: "other-site", host: "localhost", fetchSite: "cross-site", cookieSent: false, status: http.StatusUnauthorized},
}

// crossOrigin opens, in a second tab of the story tab's browser (its
// cookies), a page from a.host on another port that tries to log the
// logged-in user out of d: fetch with credentials to /logout and
// /logout-all, and a form posting to /logout as a top-level navigation.
// The demo must answer a.status to each, and the story tab stays logged in.
func crossOrigin(t *testing.T, story *tab, d *demo, a attack) {
	b := newTab(t, story.ctx, story.shots)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, otherOriginPage, html.EscapeString(d.url), d.url)
	}))
	defer other.Close()
	page := strings.Replace(other.URL, "127.0.0.1", a.host, 1) + "/"

	b.do("open the "+a.name+" page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("fetch")))
	b.do("fetch from the "+a.name+" page",
		chromedp.Click(chromedp.ID("fetch")),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[bool](`document.body.dataset.done === "1"`, chromedp.WithPollingTimeout(stepTimeout), pollEvery())(ctx, t)
			return err
		}))
	for _, path := range []string{"/logout", "/logout-all"} {
		x := b.lastExchange("POST " + d.url + path)
		if x.tokenSent != a.cookieSent || x.fetchSite != a.fetchSite {
			t.Errorf("%s: fetch POST %s: cookie sent %v, Sec-Fetch-Site %q; want %v, %q", a.name, path, x.tokenSent, x.fetchSite, a.cookieSent, a.fetchSite)
		}
		if x.status != a.status || !d.answered("POST", path, a.status) {
			t.Errorf("%s: fetch POST %s: %d; want %d, and in the demo's log", a.name, path, x.status, a.status)
		}
	}
	b.shoot(a.name+"-fetch", "")
	story.stillLoggedIn(d, a.name+": after the fetch")

	b.do("open the "+a.name+" page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("submit")))
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("submit")))
	if err != nil {
		t.Fatalf("%s: submitting the form: %v", a.name, err)
	}
	if res.URL != d.url+"/logout" || int(res.Status) != a.status {
		t.Errorf("%s: form POST: %s %d; want %s/logout %d", a.name, res.URL, res.Status, d.url, a.status)
	}
	if x := b.lastExchange("POST " + d.url + "/logout"); x.tokenSent != a.cookieSent || x.fetchSite != a.fetchSite {
		t.Errorf("%s: form POST: cookie sent %v, Sec-Fetch-Site %q; want %v, %q", a.name, x.tokenSent, x.fetchSite, a.cookieSent, a.fetchSite)
	}
	b.shoot(a.name+"-form", "")
	story.stillLoggedIn(d, a.name+": after the form")
}

// stillLoggedIn checks that the browser still holds the token cookie and
// that GET /me with it still answers 200.
func (b *tab) stillLoggedIn(d *demo, when string) {
	b.t.Helper()
	if c := b.tokenCookie(d.url); c == nil {
		b.t.Fatalf("%s the browser holds no token cookie", when)
	}
	b.step("me", 200)
	b.shoot("still-logged-in", "step-me")
}

// otherOriginPage is the page of the second origin; %[1]s is the demo's URL
// escaped for HTML, %[2]s the same for a script (a loopback URL needs no
// escaping there).
const otherOriginPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>another origin</title>
<style>body{font:14px/1.4 system-ui,sans-serif;max-width:46rem;margin:1rem auto;padding:0 1rem}pre{white-space:pre-wrap;background:#f5f6f8;padding:.4rem}</style>
</head><body>
<h1>Another origin</h1>
<p>This page is not the demo's. It tries to log you out of %[1]s with your cookie.</p>
<button id="fetch">fetch POST /logout and /logout-all, credentials: "include"</button>
<pre id="out"></pre>
<form method="POST" action="%[1]s/logout"><button id="submit">Submit a form POST to /logout</button></form>
<script>
const demo = "%[2]s";
document.getElementById("fetch").addEventListener("click", async () => {
  const out = document.getElementById("out");
  for (const path of ["/logout", "/logout-all"]) {
    try {
      const r = await fetch(demo + path, { method: "POST", credentials: "include", mode: "no-cors" });
      out.textContent += "POST " + path + ": sent with the cookie; the answer is opaque to this page (" + r.type + ")\n";
    } catch (e) {
      out.textContent += "POST " + path + ": " + e + "\n";
    }
  }
  document.body.dataset.done = "1";
});
</script>
</body></html>
`
