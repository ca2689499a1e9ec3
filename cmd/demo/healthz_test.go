package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// Over a Redis that can lose revocations the demo warns at start, and
// /healthz answers 200 "degraded" naming the problems; over one that
// cannot, "ok".
func TestHealthzRedisConfig(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		args     []string
		status   string
		problems []string
	}{
		"no persistence, allkeys-lru": {[]string{"--maxmemory-policy", "allkeys-lru"}, "degraded", []string{"eviction", "not_durable"}},
		"appendfsync always":          {[]string{"--appendonly", "yes", "--appendfsync", "always"}, "ok", nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := testserver.Redis(t, c.args...)
			d := startDemo(t, nil, "-store", "redis", "-redis-url", "redis://"+srv.Addr()+"/0", "-cache")
			r := do(t, nil, "GET", d.url+"/healthz", "", "", "")
			var body struct {
				Status   string   `json:"status"`
				Problems []string `json:"problems"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.code != 200 {
				t.Fatalf("/healthz: %d %q (%v); want 200 and JSON", r.code, r.body, err)
			}
			if body.Status != c.status || strings.Join(body.Problems, ",") != strings.Join(c.problems, ",") {
				t.Errorf("/healthz: %s; want status %q, problems %q", r.body, c.status, c.problems)
			}
			if strings.Contains(r.body, srv.Addr()) {
				t.Errorf("/healthz %s names the server's address: the detail belongs in the log", r.body)
			}
			warned := strings.Contains(d.stderr.String(), "can lose revocations")
			if warned != (c.status == "degraded") {
				t.Errorf("start-up warning logged: %v, want %v:\n%s", warned, c.status == "degraded", d.stderr)
			}
		})
	}
}
