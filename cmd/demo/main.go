// Command demo is a small HTTP server that shows what the blocklist module
// is for: log in, call a protected endpoint, log out, and watch the old
// token get refused.
//
//	go run ./cmd/demo
//
// It keeps its blocklist in blocklist.db, an embedded bbolt file in the
// working folder, so a logout survives a restart of the server. The HS256
// key comes from -secret, else $JWT_SECRET, else it is generated once and
// kept beside the bolt file (blocklist.db.secret, mode 0600), so tokens
// survive a restart too.
//
// Endpoints:
//
//	GET  /         a page that walks the story below with buttons, in a browser
//	POST /login    {"username","password"} -> {"access_token","token_type","expires_in","refresh_token","refresh_expires_in"} and a cookie "token"
//	POST /refresh  {"refresh_token"} -> a new pair of the same session, as /login; the old refresh token is spent,
//	               and presenting it again revokes the whole session (401)
//	GET  /me       the token's claims (needs a token)
//	POST /logout   revokes the token, clears the cookie; 204 (needs a token)
//	POST /revoke   RFC 7009: form token=...; 200 (needs a token)
//	POST /logout-all  revokes every token of the caller's user, on every device; 204 (needs a token)
//	GET  /healthz  {"status":"ok"} 200 when the store answers; {"status":"degraded","problems":[...]} 200 when
//	               it answers but its Redis can lose revocations (eviction, server_version, stream_too_short,
//	               not_durable: see redisstore.CheckServer); {"status":"unavailable"} 503 when it does not answer
//	GET  /metrics  Prometheus exposition of the OpenTelemetry metrics of the Guard and the cache
//	     /admin/   the Guard's AdminHandler (revoke, check, list, sessions, stats), behind a bearer
//	               token kept beside the key (bolt-path + ".admin-token", mode 0600; with another
//	               store a temporary file); go run ./cmd/blocklist -admin URL/admin talks to it
//
// Run with -h for the flags.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memcachestore"
	"github.com/jwtblocklist/blocklist/memorystore"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// minSecretLen is the shortest HS256 key accepted: RFC 7518 section 3.2
// wants a key at least as long as the hash output.
const minSecretLen = 32

// connectTimeout bounds the check that a networked store answers at start.
const connectTimeout = 3 * time.Second

// shutdownTimeout bounds how long requests in flight may take to finish
// after SIGINT or SIGTERM.
const shutdownTimeout = 5 * time.Second

func main() {
	// go-redis logs every failed dial of its pool on its own; the demo
	// reports store failures itself (one line at start, the request log
	// after), so those lines would only repeat them.
	redis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// usageError is a bad command line: main exits with status 2 for it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() + " (run with -h for help)" }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// config is the parsed command line.
type config struct {
	addr       string
	store      string
	boltPath   string
	redisURL   string
	memcached  string
	cache      bool
	secret     string
	ttl        time.Duration
	refreshTTL time.Duration
	grace      time.Duration
	user       string
	password   string
	adminFile  string
	logLevel   slog.Level
}

// parseFlags parses args. With -h it prints the usage to stderr and
// returns flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // errors are reported in one line by main
	flags.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "`host:port` to listen on (port 0 picks a free one)")
	flags.StringVar(&cfg.store, "store", "bolt", "blocklist backend: bolt, memory, redis or memcached")
	flags.StringVar(&cfg.boltPath, "bolt-path", "blocklist.db", "bbolt `file` for -store bolt; the generated key is kept in file.secret")
	flags.StringVar(&cfg.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis `URL` for -store redis")
	flags.StringVar(&cfg.memcached, "memcached", "127.0.0.1:11211", "comma-separated memcached `addresses` for -store memcached")
	flags.BoolVar(&cfg.cache, "cache", false, "put a local LRU cache (package cached) in front of the store")
	flags.StringVar(&cfg.secret, "secret", "", "HS256 `key`, at least 32 bytes (default $JWT_SECRET, else generated)")
	flags.DurationVar(&cfg.ttl, "ttl", 15*time.Minute, "lifetime of access tokens")
	flags.DurationVar(&cfg.refreshTTL, "refresh-ttl", 24*time.Hour, "lifetime of refresh tokens, and the longest of any token (at least -ttl)")
	flags.DurationVar(&cfg.grace, "grace", 0, "grace period of refresh tokens: a refresh token presented again within it gets the same new pair (0: a second use ends the session)")
	flags.StringVar(&cfg.user, "user", "demo", "demo user name")
	flags.StringVar(&cfg.password, "password", "demo", "demo password")
	flags.StringVar(&cfg.adminFile, "admin-token-file", "", "`file` holding the bearer token of the admin API under /admin/, made when missing, mode 0600 (default: with -store bolt beside the key, bolt-path + \".admin-token\"; else a temporary file removed at exit)")
	flags.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log `level`: DEBUG (shows each refused token's reason), INFO, WARN, ERROR")

	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "Usage: demo [flags]\n\nA server that shows JWT logout made real: log in, log out, replay the token.\n\nFlags:\n")
			flags.SetOutput(stderr)
			flags.PrintDefaults()
			return cfg, err
		}
		return cfg, usageError{err}
	}
	if flags.NArg() > 0 {
		return cfg, usagef("unexpected argument %q", flags.Arg(0))
	}
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	only := map[string]string{"bolt-path": "bolt", "redis-url": "redis", "memcached": "memcached"}
	switch cfg.store {
	case "bolt", "memory", "redis", "memcached":
	default:
		return cfg, usagef("-store %q: want bolt, memory, redis or memcached", cfg.store)
	}
	for name, store := range only {
		if set[name] && cfg.store != store {
			return cfg, usagef("-%s is only used with -store %s", name, store)
		}
	}
	switch {
	case cfg.store == "bolt" && cfg.boltPath == "":
		return cfg, usagef("-bolt-path must not be empty")
	case cfg.ttl < time.Second:
		return cfg, usagef("-ttl %v: want at least 1s", cfg.ttl)
	case cfg.refreshTTL < cfg.ttl:
		return cfg, usagef("-refresh-ttl %v: want at least -ttl %v", cfg.refreshTTL, cfg.ttl)
	case cfg.grace < 0 || cfg.grace > jwtguard.MaxGracePeriod:
		return cfg, usagef("-grace %v: want 0 to %v", cfg.grace, jwtguard.MaxGracePeriod)
	case cfg.user == "" || cfg.password == "":
		return cfg, usagef("-user and -password must not be empty")
	case set["secret"] && len(cfg.secret) < minSecretLen:
		return cfg, usagef("-secret is %d bytes: want at least %d", len(cfg.secret), minSecretLen)
	}
	return cfg, nil
}

// run is the whole program: it parses args, opens the store, serves until
// ctx is done, then shuts down and closes the store. It prints the address
// it listens on to stdout, as "demo: listening on http://HOST:PORT", and
// logs to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	meter, metricsHandler, err := newMetrics()
	if err != nil {
		return err
	}
	defer meter.Shutdown(context.Background())
	operate := operateConfig{Meter: meter, Metrics: metricsHandler}

	backend, closeBackend, where, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeBackend(); err != nil {
			log.Error("closing the store", "err", err)
		} else {
			log.Info("store closed", "store", cfg.store)
		}
	}()
	// A Redis that evicts keys or does not persist every write can forget
	// logouts: say so at start, and in /healthz (see serverConfig).
	var checkServer func(context.Context) error
	if rs, ok := backend.(*redisstore.Store); ok {
		checkServer = rs.CheckServer
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		if err := checkServer(cctx); err != nil {
			log.Warn("the blocklist's Redis can lose revocations; /healthz reports it as degraded", "err", err)
		}
		cancel()
	}
	store := backend
	if cfg.cache {
		c, err := cached.New(backend, operate.cacheOptions(log)...)
		if err != nil {
			return err
		}
		// Over Redis the cache watches the revocation stream; stop it before
		// the backend's client closes (defers run last in, first out).
		defer c.Close()
		store = c
	}

	secret, source, err := loadSecret(cfg, getenv)
	if err != nil {
		return err
	}

	adminFile, removeAdminFile, err := adminTokenFile(cfg)
	if err != nil {
		return err
	}
	defer removeAdminFile()
	var madeAdminToken bool
	if operate.AdminToken, madeAdminToken, err = loadAdminToken(adminFile); err != nil {
		return err
	}

	handler, err := newServer(serverConfig{
		Operate:     operate,
		Store:       store,
		Health:      backend,
		CheckServer: checkServer,
		Secret:      secret,
		TTL:         cfg.ttl,
		RefreshTTL:  cfg.refreshTTL,
		Grace:       cfg.grace,
		User:        cfg.user,
		Password:    cfg.password,
		Log:         log,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	log.Info("listening", "url", url, "store", cfg.store, "at", where, "cache", cfg.cache,
		"secret", source, "ttl", cfg.ttl, "user", cfg.user) // the password goes to stdout only
	log.Info("admin API", "url", url+"/admin/", "token_file", adminFile, "new", madeAdminToken)
	fmt.Fprintf(stdout, "demo: listening on %s\n", url)
	fmt.Fprintf(stdout, "demo: log in as %q with password %q:\n", cfg.user, cfg.password)
	fmt.Fprintf(stdout, "  curl -s -X POST %s/login -d '{\"username\":%q,\"password\":%q}'\n", url, cfg.user, cfg.password)
	fmt.Fprintf(stdout, "demo: metrics at %s/metrics; admin API at %s/admin/, its bearer token in %s\n", url, url, adminFile)

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running at shutdown", "err", err)
		srv.Close()
	}
	<-served
	return nil
}

// openStore opens the backend cfg names and checks that it answers. It
// returns the store, the function that closes it (and its client), and
// where it is, for the logs.
func openStore(ctx context.Context, cfg config) (blocklist.ExpiryStore, func() error, string, error) {
	switch cfg.store {
	case "memory":
		s := memorystore.New()
		return s, s.Close, "in process", nil

	case "bolt":
		s, err := boltstore.Open(cfg.boltPath)
		if err != nil {
			return nil, nil, "", err
		}
		return s, s.Close, cfg.boltPath, nil

	case "redis":
		opts, err := redis.ParseURL(cfg.redisURL)
		if err != nil {
			return nil, nil, "", usagef("-redis-url: %v", err)
		}
		opts.ContextTimeoutEnabled = true
		client := redis.NewClient(opts)
		pctx, cancel := context.WithTimeout(ctx, connectTimeout)
		defer cancel()
		if err := client.Ping(pctx).Err(); err != nil {
			client.Close()
			return nil, nil, "", fmt.Errorf("redis at %s does not answer: %v", opts.Addr, err)
		}
		return redisstore.New(client), client.Close, opts.Addr, nil

	case "memcached":
		var addrs []string
		for _, a := range strings.Split(cfg.memcached, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			return nil, nil, "", usagef("-memcached: no address")
		}
		client := memcache.New(addrs...)
		if err := client.Ping(); err != nil {
			client.Close()
			return nil, nil, "", fmt.Errorf("memcached at %s does not answer: %v", strings.Join(addrs, ","), err)
		}
		return memcachestore.New(client), client.Close, strings.Join(addrs, ","), nil
	}
	return nil, nil, "", usagef("-store %q: want bolt, memory, redis or memcached", cfg.store)
}

// loadSecret returns the HS256 key and where it came from: -secret, else
// $JWT_SECRET, else a file beside the bolt file (created on first run), else
// (other stores) a key generated for this run only.
func loadSecret(cfg config, getenv func(string) string) ([]byte, string, error) {
	if cfg.secret != "" {
		return []byte(cfg.secret), "-secret", nil
	}
	if env := getenv("JWT_SECRET"); env != "" {
		if len(env) < minSecretLen {
			return nil, "", fmt.Errorf("$JWT_SECRET is %d bytes: want at least %d", len(env), minSecretLen)
		}
		return []byte(env), "$JWT_SECRET", nil
	}
	if cfg.store != "bolt" {
		key := make([]byte, minSecretLen)
		rand.Read(key)
		return key, "generated for this run (tokens die with the process; set -secret or $JWT_SECRET to keep them)", nil
	}
	path := cfg.boltPath + ".secret"
	key, err := readSecretFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, minSecretLen)
		rand.Read(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			// Another process made it first: use its key.
			key, err = readSecretFile(path)
			return key, path, err
		}
		if err != nil {
			return nil, "", fmt.Errorf("secret: %w", err)
		}
		_, werr := fmt.Fprintln(f, hex.EncodeToString(key))
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return nil, "", fmt.Errorf("secret: writing %s: %w", path, err)
		}
		return key, path + " (new)", nil
	}
	if err != nil {
		return nil, "", err
	}
	return key, path, nil
}

func readSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < minSecretLen {
		return nil, fmt.Errorf("secret file %s: want at least %d bytes in hex; delete it to make a new one", path, minSecretLen)
	}
	return key, nil
}
