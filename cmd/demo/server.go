package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// issuer is the iss and aud of the demo's tokens.
const issuer = "blocklist-demo"

// healthTimeout bounds the store lookup of /healthz.
const healthTimeout = 2 * time.Second

// serverConfig is what newServer needs; run fills it from the flags, tests
// fill it directly.
type serverConfig struct {
	Store      blocklist.Store // checked and written by the middleware and logout
	Health     blocklist.Store // probed by /healthz: the backend itself, not a cache in front of it; nil means Store
	Secret     []byte          // HS256 key
	TTL        time.Duration   // access-token lifetime
	RefreshTTL time.Duration   // refresh-token lifetime; zero means 24h, or TTL when longer
	Grace      time.Duration   // Sessions.GracePeriod
	User       string
	Password   string
	Log        *slog.Logger
	// CheckServer, when not nil, reports the backend's settings that can
	// lose revocations ((*redisstore.Store).CheckServer); /healthz calls it.
	CheckServer func(context.Context) error
	FailOpen    bool             // let requests through when the store fails (no flag: tests only)
	Now         func() time.Time // nil means time.Now
	Operate     operateConfig    // metrics and the admin API; see operate.go
}

type server struct {
	serverConfig
	guard    *jwtguard.Guard
	throttle *loginThrottle
}

// newServer returns the demo's handler: the five endpoints behind an access
// log.
func newServer(cfg serverConfig) (http.Handler, error) {
	if cfg.Store == nil || len(cfg.Secret) == 0 || cfg.TTL <= 0 || cfg.User == "" || cfg.Password == "" || cfg.Log == nil {
		return nil, errors.New("newServer: incomplete configuration")
	}
	if cfg.Health == nil {
		cfg.Health = cfg.Store
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = max(24*time.Hour, cfg.TTL)
	}
	s := &server{serverConfig: cfg, throttle: newLoginThrottle()}
	// One cross-origin protection for every POST: the Guard applies it to
	// requests that carry the token cookie (/logout, /logout-all, /revoke),
	// and it guards /login and /refresh, which set the cookie, directly.
	crossOrigin := http.NewCrossOriginProtection()
	opts := []jwtguard.Option{
		jwtguard.WithCrossOriginProtection(crossOrigin),
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithIssuer(issuer),
		jwtguard.WithAudience(issuer),
		// No leeway: the demo mints and checks tokens with one clock, and
		// under sessions a leeway L also refuses the tokens issued in the L
		// after "log out everywhere" (see jwtguard.Guard.LogoutAll), so a
		// login right after it would get refused tokens.
		jwtguard.WithRealm(issuer),
		jwtguard.WithClock(cfg.Now),
		jwtguard.WithErrorHandler(s.storeFailed),
		jwtguard.WithUnauthorizedHandler(s.unauthorized),
		jwtguard.WithSessions(jwtguard.Sessions{
			SigningMethod: jwt.SigningMethodHS256, SigningKey: cfg.Secret,
			AccessTTL: cfg.TTL, RefreshTTL: cfg.RefreshTTL, GracePeriod: cfg.Grace,
		}),
	}
	opts = append(opts, cfg.Operate.guardOptions(cfg.Log)...)
	if cfg.FailOpen {
		opts = append(opts, jwtguard.WithFailOpen(func(r *http.Request, err error) {
			s.Log.Error("blocklist store failed; request let through (fail-open)", "path", r.URL.Path, "err", err)
		}))
	}
	secret := cfg.Secret
	g, err := jwtguard.New(cfg.Store, func(*jwt.Token) (any, error) { return secret, nil }, opts...)
	if err != nil {
		return nil, err
	}
	s.guard = g

	mux := http.NewServeMux()
	mux.Handle("POST /login", crossOrigin.Handler(http.HandlerFunc(s.login)))
	mux.Handle("GET /me", g.Middleware(http.HandlerFunc(s.me)))
	mux.Handle("POST /logout", g.Middleware(http.HandlerFunc(s.logout)))
	mux.Handle("POST /revoke", g.Middleware(g.RevocationHandler()))
	mux.Handle("POST /refresh", crossOrigin.Handler(http.HandlerFunc(s.refresh)))
	mux.Handle("POST /logout-all", g.Middleware(http.HandlerFunc(s.logoutAll)))
	mux.HandleFunc("GET /healthz", s.healthz)
	routePage(mux)      // GET /: the story page
	s.routeOperate(mux) // GET /metrics, /admin/
	return s.accessLog(mux), nil
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var c credentials
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request",
			"error_description": `want a JSON body {"username":"...","password":"..."}`})
		return
	}
	// The attempt takes its place in the failure budgets before the
	// password is checked, so that a throttled guess learns nothing.
	now := s.Now()
	attempt, wait := s.throttle.begin(c.Username, r.RemoteAddr, now)
	if attempt == nil {
		s.Log.Warn("login throttled", "user", c.Username, "remote", r.RemoteAddr, "retry_after", wait)
		w.Header().Set("Retry-After", strconv.FormatInt(max(int64(math.Ceil(wait.Seconds())), 1), 10))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too_many_attempts",
			"error_description": "too many failed logins; retry later"})
		return
	}
	userOK := subtle.ConstantTimeCompare([]byte(c.Username), []byte(s.User))
	passOK := subtle.ConstantTimeCompare([]byte(c.Password), []byte(s.Password))
	if userOK&passOK != 1 {
		s.Log.Info("login refused", "user", c.Username)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+issuer+`"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid username or password"})
		return
	}
	attempt.succeeded(now)
	p, err := s.guard.NewSession(c.Username, nil)
	if err != nil {
		s.Log.Error("signing a token", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	s.Log.Info("logged in", "user", c.Username, "sid", p.SessionID, "exp", p.AccessExpiresAt.UTC().Format(time.RFC3339))
	s.writePair(w, p)
}

// writePair answers a login or a refresh: the pair in the body, as an
// OAuth 2.0 token response, the access token in the cookie too.
func (s *server) writePair(w http.ResponseWriter, p *jwtguard.Pair) {
	s.guard.SetCookie(w, p.AccessToken, p.AccessExpiresAt)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, p)
}

// refresh exchanges a refresh token for a new pair. A spent refresh token
// presented again revokes its whole session.
func (s *server) refresh(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.RefreshToken == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request",
			"error_description": `want a JSON body {"refresh_token":"..."}`})
		return
	}
	p, err := s.guard.Refresh(r.Context(), body.RefreshToken)
	switch {
	case err == nil:
		s.Log.Info("refreshed", "sid", p.SessionID)
		s.writePair(w, p)
	case errors.Is(err, jwtguard.ErrRefreshReused):
		s.Log.Warn("refresh token reused: session revoked", "err", err)
		s.refuseGrant(w)
	case errors.Is(err, jwtguard.ErrInvalidToken), errors.Is(err, jwtguard.ErrRevoked):
		s.Log.Info("refresh refused", "err", err)
		s.refuseGrant(w)
	default:
		s.storeFailed(w, r, err)
	}
}

func (s *server) refuseGrant(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+issuer+`", error="invalid_token"`)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_grant"})
}

// logoutAll revokes every token of the caller's user issued until now.
func (s *server) logoutAll(w http.ResponseWriter, r *http.Request) {
	claims, _ := jwtguard.ClaimsFromContext(r.Context())
	sub, _ := claims.GetSubject()
	if err := s.guard.LogoutAll(r.Context(), sub); err != nil {
		s.storeFailed(w, r, err)
		return
	}
	s.guard.SetCookie(w, "", time.Unix(1, 0)) // clears it
	s.Log.Info("logged out everywhere", "user", sub)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	claims, _ := jwtguard.ClaimsFromContext(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, claims)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	// Behind the middleware the token is in the context, so the only error
	// left is the store's.
	if err := s.guard.Logout(w, r); err != nil {
		s.storeFailed(w, r, err)
		return
	}
	if t, ok := jwtguard.TokenFromContext(r.Context()); ok {
		s.Log.Info("logged out: token revoked", "user", t.Claims["sub"], "jti", t.ID, "exp", t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if _, err := s.Health.IsRevoked(ctx, "healthz"); err != nil {
		s.Log.Error("health check: store does not answer", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, health{Status: "unavailable"})
		return
	}
	if s.CheckServer != nil {
		if err := s.CheckServer(ctx); err != nil {
			// Degraded, not down: the store answers, and every instance
			// shares the same server, so taking this one out of rotation
			// would help nothing. The detail (server addresses) goes to
			// the log only.
			s.Log.Warn("health check: the blocklist's server can lose revocations", "err", err)
			writeJSON(w, http.StatusOK, health{Status: "degraded", Problems: serverProblems(err)})
			return
		}
	}
	writeJSON(w, http.StatusOK, health{Status: "ok"})
}

// health is the body of /healthz.
type health struct {
	Status   string   `json:"status"`             // ok, degraded or unavailable
	Problems []string `json:"problems,omitempty"` // when degraded: what can lose revocations
}

// serverProblems names the problems CheckServer reported, one code per
// sentinel found in err; "unchecked" when the check itself failed.
func serverProblems(err error) []string {
	var codes []string
	for _, p := range []struct {
		sentinel error
		code     string
	}{
		{redisstore.ErrEviction, "eviction"},
		{redisstore.ErrServerVersion, "server_version"},
		{redisstore.ErrStreamTooShort, "stream_too_short"},
		{redisstore.ErrNotDurable, "not_durable"},
	} {
		if errors.Is(err, p.sentinel) {
			codes = append(codes, p.code)
		}
	}
	if len(codes) == 0 {
		codes = append(codes, "unchecked")
	}
	return codes
}

// unauthorized answers a request without a valid token in JSON, as the
// rest of the API; the Guard has set WWW-Authenticate already.
func (s *server) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	code := "invalid_token" // RFC 6750 section 3.1
	if errors.Is(err, jwtguard.ErrNoToken) {
		code = "unauthorized"
	}
	s.Log.Info("request refused", "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": code})
}

// storeFailed answers a request the blocklist could not serve: 503, the
// detail in the log only.
func (s *server) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.Log.Error("blocklist store failed; request refused (fail-closed)", "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// accessLog logs one line per request.
func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.Log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.code,
			"duration", time.Since(start).Round(time.Microsecond), "remote", r.RemoteAddr)
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
