package main

import (
	"regexp"
	"strings"
	"testing"
)

// The story page: served at GET / with a policy that lets it run only its
// own files; every file it references is served from this server; nothing
// else under /page/ is, and the API keeps its 404 and 405 answers. What the
// page does in a browser is tested by the e2e module.
func TestPage(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, "-store", "memory", "-secret", testSecret)

	r := do(t, nil, "GET", d.url+"/", "", "", "")
	if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", r.code, r.header.Get("Content-Type"))
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /: no nosniff")
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(r.body, -1)
	if len(refs) < 2 {
		t.Fatalf("page references %d files; want its script and style", len(refs))
	}
	wantType := map[string]string{".js": "text/javascript", ".css": "text/css"}
	for _, ref := range refs {
		u := ref[1]
		if !strings.HasPrefix(u, "/page/") {
			t.Errorf("page references %q: want only its own files under /page/", u)
			continue
		}
		a := do(t, nil, "GET", d.url+u, "", "", "")
		ext := u[strings.LastIndex(u, "."):]
		if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), wantType[ext]) || a.header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: %d %q", u, a.code, a.header.Get("Content-Type"))
		}
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/page/", 404}, {"GET", "/page/index.html", 404}, {"GET", "/page/nope.js", 404},
		{"GET", "/page/../main.go", 404}, {"GET", "/nope", 404}, {"POST", "/", 405}, {"GET", "/login", 405},
	} {
		if r := do(t, nil, c.method, d.url+c.path, "", "", ""); r.code != c.code {
			t.Errorf("%s %s: %d; want %d", c.method, c.path, r.code, c.code)
		}
	}
}
