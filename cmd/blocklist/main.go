// Command blocklist is the operator's tool for a blocklist: revoke a token
// or an id by hand, check and list revocations, end a session or log a user
// out everywhere, watch revocations arrive, and diagnose the store.
//
//	go run ./cmd/blocklist -store URL [-json] COMMAND ARGS
//	go run ./cmd/blocklist -admin URL [-json] COMMAND ARGS
//
// The store is named by a URL:
//
//	redis://[user:pass@]host:port[/db][?opts]   Redis (go-redis's URL form; rediss:// for TLS)
//	redis://host:port?addr=host2:port2&...      Redis Cluster (go-redis's cluster URL form: any addr= option,
//	                                            or -cluster for a single seed)
//	memcached://host:port[,host:port]           memcached
//	bolt:PATH, or a PATH ending in .db          a bbolt file (not while a server holds it open: use -admin)
//
// With -admin the command talks to a server's admin handler
// ((*jwtguard.Guard).AdminHandler) instead, sending the admin token of
// -admin-token, else $BLOCKLIST_ADMIN_TOKEN, as a bearer token: for a bolt
// file a running server holds locked, or a Redis the operator cannot reach.
//
// Commands:
//
//	revoke (-exp RFC3339 | -ttl DURATION) JTI   revoke an id until exp
//	revoke -token TOKEN                          revoke a raw token by its id (jti, or jwtguard's signature
//	                                             digest) until its exp; the signature is not checked
//	check JTI                                    print when the revocation of JTI ends
//	list [-prefix P] [-limit N] [-count]         print live revocations, or just their number
//	revoke-session SID                           what (*jwtguard.Guard).RevokeSession writes
//	logout-all SUB                               what (*jwtguard.Guard).LogoutAll writes
//	watch                                        print revocations as they are announced, until interrupted
//	stats                                        counts of live revocations, by kind
//	doctor                                       check the store: reachability, Redis settings, bolt file consistency
//
// Output is human-readable, or with -json one JSON object per result.
// Exit status: 0 success (for check: revoked); 1 check found the id not
// revoked, or doctor found a problem; 2 bad usage; 3 the store (or admin
// server) could not answer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Exit statuses.
const (
	exitOK          = 0
	exitNo          = 1 // check: not revoked; doctor: a problem found
	exitUsage       = 2
	exitUnavailable = 3
)

func main() {
	// go-redis logs every failed dial on its own; the command reports
	// failures itself, once.
	redis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// usageError is a bad command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// unavailableError is a store or admin server that could not answer: exit
// status 3, never confused with "not revoked".
type unavailableError struct{ err error }

func (e unavailableError) Error() string { return e.err.Error() }
func (e unavailableError) Unwrap() error { return e.err }

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) {
		return err
	}
	return unavailableError{err}
}

// errNo is the answer "no" of check (not revoked) and doctor (a problem
// found): exit status 1, after the result was printed.
var errNo = errors.New("no")

// options are the global flags.
type options struct {
	store      string
	cluster    bool
	keyPrefix  string
	jsonOut    bool
	admin      string
	adminToken string
	timeout    time.Duration
}

const usageText = `Usage: blocklist (-store URL | -admin URL) [flags] COMMAND ARGS

Commands:
  revoke (-exp RFC3339 | -ttl DURATION) JTI
  revoke -token TOKEN
  check JTI
  list [-prefix P] [-limit N] [-count]
  revoke-session SID
  logout-all SUB
  watch
  stats
  doctor

Store URLs: redis://..., rediss://... (go-redis URL forms; Cluster with addr= options
or -cluster), memcached://host:port[,host:port], bolt:PATH or PATH.db

Exit status: 0 ok (check: revoked), 1 check: not revoked / doctor: problem found,
2 bad usage, 3 the store could not answer.

Flags:
`

func newFlags(o *options, getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("blocklist", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.store, "store", "", "store `URL` (see above)")
	fs.BoolVar(&o.cluster, "cluster", false, "treat a redis:// URL with a single address as a Redis Cluster seed")
	fs.StringVar(&o.keyPrefix, "key-prefix", "blocklist:", "key prefix of a Redis or memcached store (redisstore/memcachestore WithPrefix)")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per result")
	fs.StringVar(&o.admin, "admin", "", "base `URL` of a server's admin handler, instead of -store")
	fs.StringVar(&o.adminToken, "admin-token", getenv("BLOCKLIST_ADMIN_TOKEN"), "bearer `token` for -admin (default $BLOCKLIST_ADMIN_TOKEN)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on each command but watch")
	return fs
}

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := runErr(ctx, args, getenv, stdout, stderr)
	var ue usageError
	var ua unavailableError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errNo):
		return exitNo
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "blocklist: %v (run with -h for help)\n", oneLine(err))
		return exitUsage
	case errors.As(err, &ua):
		fmt.Fprintf(stderr, "blocklist: %v\n", oneLine(err))
		return exitUnavailable
	default:
		// Anything else is a failure to get an answer.
		fmt.Fprintf(stderr, "blocklist: %v\n", oneLine(err))
		return exitUnavailable
	}
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func runErr(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := newFlags(&o, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usageText)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return err
		}
		return usageError{err}
	}
	if fs.NArg() == 0 {
		return usagef("no command")
	}
	switch {
	case o.store == "" && o.admin == "":
		return usagef("give -store URL or -admin URL")
	case o.store != "" && o.admin != "":
		return usagef("give -store or -admin, not both")
	case o.timeout <= 0:
		return usagef("-timeout %v: want a positive duration", o.timeout)
	}
	name, cargs := fs.Arg(0), fs.Args()[1:]
	cmd, ok := commands[name]
	if !ok {
		return usagef("unknown command %q", name)
	}
	// Parse the command's arguments before touching the store, so a bad
	// command line never waits for a server.
	call, err := cmd(cargs)
	if err != nil {
		return err
	}
	var t target
	if o.admin != "" {
		t, err = newAdminTarget(o)
	} else {
		t, err = openStore(ctx, o)
	}
	if err != nil {
		return err
	}
	defer t.Close()
	out := &printer{w: stdout, json: o.jsonOut}
	return call(ctx, env{opts: o, target: t, out: out, stderr: stderr})
}
