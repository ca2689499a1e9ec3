package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The operator's story on the demo: revoke a token through the admin API
// (behind the token kept beside the key), see it refused, read the metric
// that counted it.
func TestOperate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "b.db")
	d := startDemo(t, nil, "-bolt-path", path)
	tokenFile := path + ".admin-token"
	info, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("admin token file mode %v; want 0600", info.Mode().Perm())
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	adminToken := strings.TrimSpace(string(b))

	access := login(t, nil, d.url)
	if r := do(t, nil, "GET", d.url+"/me", "", access, ""); r.code != 200 {
		t.Fatalf("/me: %d", r.code)
	}
	admin := func(token, body string) int {
		req, _ := http.NewRequest("POST", d.url+"/admin/revocations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := admin("", `{"token":"`+access+`"}`); code != 401 {
		t.Fatalf("admin without the token: %d; want 401", code)
	}
	if code := admin("wrong", `{"token":"`+access+`"}`); code != 401 {
		t.Fatalf("admin with a wrong token: %d; want 401", code)
	}
	if r := do(t, nil, "GET", d.url+"/me", "", access, ""); r.code != 200 {
		t.Fatalf("/me after refused admin calls: %d", r.code)
	}
	if code := admin(adminToken, `{"token":"`+access+`"}`); code != 200 {
		t.Fatalf("admin revoke: %d", code)
	}
	if r := do(t, nil, "GET", d.url+"/me", "", access, ""); r.code != 401 {
		t.Fatalf("/me after the admin revoked the token: %d; want 401", r.code)
	}
	m := do(t, nil, "GET", d.url+"/metrics", "", "", "")
	revoked := regexp.MustCompile(`(?m)^jwtguard_requests_total\{jwtguard_outcome="revoked"[^}]*\} 1$`)
	if m.code != 200 || !revoked.MatchString(m.body) {
		t.Fatalf("/metrics: %d; no jwtguard_requests_total{revoked} 1 in\n%s", m.code, m.body)
	}
	if !strings.Contains(m.body, `jwtguard_revocations_total{jwtguard_outcome="ok",jwtguard_revocation_kind="token"`) {
		t.Errorf("/metrics lacks the admin revocation")
	}
}

// Without a bolt file the admin token lives in a temporary file for the
// run, removed at exit.
func TestOperateTemporaryToken(t *testing.T) {
	t.Parallel()
	d := startDemo(t, nil, "-store", "memory", "-cache")
	m := regexp.MustCompile(`msg="admin API" url=\S+ token_file=(\S+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("no admin API line in the log:\n%s", d.stderr)
	}
	if _, err := os.Stat(m[1]); err != nil {
		t.Fatalf("token file: %v", err)
	}
	if r := do(t, nil, "GET", d.url+"/metrics", "", "", ""); r.code != 200 || !strings.Contains(r.body, "cached_lookups_total") {
		t.Errorf("/metrics: %d; want the cache's metrics too", r.code)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("token file left behind: %v", err)
	}
}

// A token file others can read is refused, not used.
func TestAdminTokenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(path, []byte("0123456789abcdefghijklmnop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if _, _, err := loadAdminToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loadAdminToken of a 0644 file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, made, err := loadAdminToken(path); err != nil || made || tok != "0123456789abcdefghijklmnop" {
		t.Fatalf("loadAdminToken: %q %v %v", tok, made, err)
	}
}
