package main

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/jwtguard"
)

// operateConfig is what an operator gets from the demo: metrics, logs
// through the demo's logger, and the admin API.
type operateConfig struct {
	Meter      metric.MeterProvider // nil: the global provider (tests)
	Metrics    http.Handler         // GET /metrics; nil: not served
	AdminToken string               // bearer token of /admin/; "": not served
}

// newMetrics returns a meter provider that exports to Prometheus, and the
// handler of its exposition.
func newMetrics() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// guardOptions are the Guard's options for operators.
func (o operateConfig) guardOptions(log *slog.Logger) []jwtguard.Option {
	opts := []jwtguard.Option{jwtguard.WithLogger(log)}
	if o.Meter != nil {
		opts = append(opts, jwtguard.WithMeterProvider(o.Meter))
	}
	return opts
}

// cacheOptions are the cache's options for operators.
func (o operateConfig) cacheOptions(log *slog.Logger) []cached.Option {
	opts := []cached.Option{cached.WithLogger(log)}
	if o.Meter != nil {
		opts = append(opts, cached.WithMeterProvider(o.Meter))
	}
	return opts
}

// routeOperate adds GET /metrics and the admin API under /admin/.
func (s *server) routeOperate(mux *http.ServeMux) {
	if h := s.Operate.Metrics; h != nil {
		mux.Handle("GET /metrics", h)
	}
	if s.Operate.AdminToken == "" {
		return
	}
	admin := http.StripPrefix("/admin", s.guard.AdminHandler())
	want := []byte("Bearer " + s.Operate.AdminToken)
	mux.Handle("/admin/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="blocklist-demo admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required"})
			return
		}
		admin.ServeHTTP(w, r)
	}))
}

// loadAdminToken returns the admin API's bearer token, kept in path (mode
// 0600) and made on first use, and whether it was made now.
func loadAdminToken(path string) (string, bool, error) {
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		return "", false, fmt.Errorf("admin token file %s: mode %v lets other users read it; chmod 600 it, or delete it to make a new one", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 20 {
			return "", false, fmt.Errorf("admin token file %s: too short; delete it to make a new one", path)
		}
		return tok, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	tok := rand.Text()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadAdminToken(path) // another process made it first
	}
	if err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	_, werr := fmt.Fprintln(f, tok)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return "", false, fmt.Errorf("admin token: writing %s: %w", path, err)
	}
	return tok, true, nil
}

// adminTokenFile returns where the admin token is kept: -admin-token-file;
// else, with -store bolt, beside the key (bolt-path + ".admin-token"), kept
// across runs as the key is; else a temporary file made for this run, which
// remove deletes.
func adminTokenFile(cfg config) (path string, remove func(), err error) {
	switch {
	case cfg.adminFile != "":
		return cfg.adminFile, func() {}, nil
	case cfg.store == "bolt":
		return cfg.boltPath + ".admin-token", func() {}, nil
	}
	dir, err := os.MkdirTemp("", "blocklist-demo-")
	if err != nil {
		return "", nil, fmt.Errorf("admin token: %w", err)
	}
	return filepath.Join(dir, "admin-token"), func() { os.RemoveAll(dir) }, nil
}
