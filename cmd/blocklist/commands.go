package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// target is where the commands act: a store opened from a URL, or a
// server's admin handler.
type target interface {
	// Revoke revokes jti until exp and returns when its revocation ends.
	Revoke(ctx context.Context, jti string, exp time.Time) (time.Time, error)
	// RevokeToken revokes raw by its id until its exp plus
	// jwtguard.MaxLeeway, as (*jwtguard.Guard).Revoke does.
	RevokeToken(ctx context.Context, raw string) (revocation, error)
	// RevokedUntil is the end of jti's revocation, zero when not revoked.
	RevokedUntil(ctx context.Context, jti string) (time.Time, error)
	// List calls fn for live revocations whose id starts with prefix, each
	// once, until fn returns an error.
	List(ctx context.Context, prefix string, fn func(jti string, until time.Time) error) error
	RevokeSession(ctx context.Context, sid string) error
	LogoutAll(ctx context.Context, sub string) error
	Watch(ctx context.Context, fn func(blocklist.Event)) error
	// Doctor calls report for each thing it checked.
	Doctor(ctx context.Context, report func(finding)) error
	// Stats counts the live revocations, by jwtguard.IDKind.
	Stats(ctx context.Context) (stats, error)
	Close() error
}

// revocation is what revoke prints.
type revocation struct {
	JTI     string    `json:"jti"`
	Until   time.Time `json:"until"`
	Expired bool      `json:"expired,omitempty"` // the token had expired: nothing stored
	Session string    `json:"sid,omitempty"`     // the token's session, if it names one
}

// finding is one line of doctor.
type finding struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// env is what a command runs with.
type env struct {
	opts   options
	target target
	out    *printer
	stderr io.Writer
}

// A command parses its arguments and returns the call that does the work.
type command func(args []string) (func(ctx context.Context, e env) error, error)

var commands map[string]command

func init() {
	commands = map[string]command{
		"revoke":         cmdRevoke,
		"check":          cmdCheck,
		"list":           cmdList,
		"revoke-session": cmdRevokeSession,
		"logout-all":     cmdLogoutAll,
		"watch":          cmdWatch,
		"stats":          cmdStats,
		"doctor":         cmdDoctor,
	}
}

func subFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseSub(fs *flag.FlagSet, args []string, operands int, usage string) error {
	if err := fs.Parse(args); err != nil {
		return usagef("%s: %v; usage: %s", fs.Name(), err, usage)
	}
	if fs.NArg() != operands {
		return usagef("%s: want %d argument(s), got %d; usage: %s", fs.Name(), operands, fs.NArg(), usage)
	}
	return nil
}

// bounded runs the call under the -timeout.
func bounded(ctx context.Context, o options) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.timeout)
}

func validID(what, id string) error {
	if err := blocklist.ValidateID(id); err != nil {
		return usagef("%s: %v", what, err)
	}
	return nil
}

func cmdRevoke(args []string) (func(context.Context, env) error, error) {
	const usage = "revoke (-exp RFC3339 | -ttl DURATION) JTI, or revoke -token TOKEN"
	fs := subFlags("revoke")
	expStr := fs.String("exp", "", "")
	ttl := fs.Duration("ttl", 0, "")
	token := fs.String("token", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("revoke: %v; usage: %s", err, usage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if operands := map[bool]int{true: 0, false: 1}[set["token"]]; fs.NArg() != operands {
		return nil, usagef("revoke: want %d argument(s), got %d; usage: %s", operands, fs.NArg(), usage)
	}
	if set["token"] {
		if set["exp"] || set["ttl"] {
			return nil, usagef("revoke: -token takes its exp from the token; no -exp or -ttl")
		}
		if *token == "" {
			return nil, usagef("revoke: -token is empty")
		}
		return func(ctx context.Context, e env) error {
			ctx, cancel := bounded(ctx, e.opts)
			defer cancel()
			r, err := e.target.RevokeToken(ctx, *token)
			if err != nil {
				return err
			}
			return e.out.revocation(r)
		}, nil
	}
	if set["exp"] == set["ttl"] {
		return nil, usagef("revoke: give one of -exp and -ttl; usage: %s", usage)
	}
	jti := fs.Arg(0)
	if err := validID("revoke", jti); err != nil {
		return nil, err
	}
	var exp time.Time
	if set["exp"] {
		t, err := time.Parse(time.RFC3339, *expStr)
		if err != nil {
			return nil, usagef("revoke: -exp %q: want RFC 3339, like 2030-01-02T15:04:05Z", *expStr)
		}
		if !t.After(time.Now()) {
			return nil, usagef("revoke: -exp %s is not in the future: nothing to revoke", *expStr)
		}
		exp = t
	} else if *ttl <= 0 {
		return nil, usagef("revoke: -ttl %v: want a positive duration", *ttl)
	}
	return func(ctx context.Context, e env) error {
		ctx, cancel := bounded(ctx, e.opts)
		defer cancel()
		if !set["exp"] {
			exp = time.Now().Add(*ttl)
		}
		until, err := e.target.Revoke(ctx, jti, exp)
		if err != nil {
			return err
		}
		return e.out.revocation(revocation{JTI: jti, Until: until})
	}, nil
}

func cmdCheck(args []string) (func(context.Context, env) error, error) {
	fs := subFlags("check")
	if err := parseSub(fs, args, 1, "check JTI"); err != nil {
		return nil, err
	}
	jti := fs.Arg(0)
	if err := validID("check", jti); err != nil {
		return nil, err
	}
	return func(ctx context.Context, e env) error {
		ctx, cancel := bounded(ctx, e.opts)
		defer cancel()
		until, err := e.target.RevokedUntil(ctx, jti)
		if err != nil {
			return err
		}
		if err := e.out.check(jti, until); err != nil {
			return err
		}
		if until.IsZero() {
			return errNo
		}
		return nil
	}, nil
}

func cmdList(args []string) (func(context.Context, env) error, error) {
	fs := subFlags("list")
	prefix := fs.String("prefix", "", "")
	limit := fs.Int("limit", 0, "")
	count := fs.Bool("count", false, "")
	if err := parseSub(fs, args, 0, "list [-prefix P] [-limit N] [-count]"); err != nil {
		return nil, err
	}
	switch {
	case *limit < 0:
		return nil, usagef("list: -limit %d: want 0 (no limit) or more", *limit)
	case *count && *limit > 0:
		return nil, usagef("list: -count counts every match; no -limit with it")
	}
	return func(ctx context.Context, e env) error {
		ctx, cancel := bounded(ctx, e.opts)
		defer cancel()
		n := 0
		err := e.target.List(ctx, *prefix, func(jti string, until time.Time) error {
			n++
			if !*count {
				if err := e.out.listed(jti, until); err != nil {
					return err
				}
			}
			if *limit > 0 && n >= *limit {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if *count {
			return e.out.count(n)
		}
		return nil
	}, nil
}

// errStop ends a scan early.
var errStop = errors.New("stop")

func cmdRevokeSession(args []string) (func(context.Context, env) error, error) {
	fs := subFlags("revoke-session")
	if err := parseSub(fs, args, 1, "revoke-session SID"); err != nil {
		return nil, err
	}
	sid := fs.Arg(0)
	if sid == "" {
		return nil, usagef("revoke-session: empty session id")
	}
	return func(ctx context.Context, e env) error {
		ctx, cancel := bounded(ctx, e.opts)
		defer cancel()
		if err := e.target.RevokeSession(ctx, sid); err != nil {
			return err
		}
		return e.out.done("revoked session", "sid", sid)
	}, nil
}

func cmdLogoutAll(args []string) (func(context.Context, env) error, error) {
	fs := subFlags("logout-all")
	if err := parseSub(fs, args, 1, "logout-all SUB"); err != nil {
		return nil, err
	}
	sub := fs.Arg(0)
	if sub == "" {
		return nil, usagef("logout-all: empty subject")
	}
	return func(ctx context.Context, e env) error {
		ctx, cancel := bounded(ctx, e.opts)
		defer cancel()
		if err := e.target.LogoutAll(ctx, sub); err != nil {
			return err
		}
		return e.out.done("logged out everywhere", "sub", sub)
	}, nil
}

func cmdWatch(args []string) (func(context.Context, env) error, error) {
	fs := subFlags("watch")
	if err := parseSub(fs, args, 0, "watch"); err != nil {
		return nil, err
	}
	return func(ctx context.Context, e env) error {
		var werr error
		err := e.target.Watch(ctx, func(ev blocklist.Event) {
			if werr == nil {
				werr = e.out.event(ev, time.Now())
			}
		})
		if werr != nil {
			return werr
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil // interrupted: the normal end
		}
		return unavailable(err)
	}, nil
}

func cmdStats(args []string) (func(context.Context, env) error, error) {
	fs := subFlags("stats")
	if err := parseSub(fs, args, 0, "stats"); err != nil {
		return nil, err
	}
	return func(ctx context.Context, e env) error {
		ctx, cancel := bounded(ctx, e.opts)
		defer cancel()
		st, err := e.target.Stats(ctx)
		if err != nil {
			return err
		}
		return e.out.stats(st)
	}, nil
}

// stats is what the stats command prints.
type stats struct {
	Revocations int            `json:"revocations"`
	ByKind      map[string]int `json:"by_kind"`
}

func cmdDoctor(args []string) (func(context.Context, env) error, error) {
	fs := subFlags("doctor")
	if err := parseSub(fs, args, 0, "doctor"); err != nil {
		return nil, err
	}
	return func(ctx context.Context, e env) error {
		ctx, cancel := bounded(ctx, e.opts)
		defer cancel()
		problems := 0
		var perr error
		err := e.target.Doctor(ctx, func(f finding) {
			if !f.OK {
				problems++
			}
			if perr == nil {
				perr = e.out.finding(f)
			}
		})
		if err = errors.Join(err, perr); err != nil {
			return err
		}
		if problems > 0 {
			return errNo
		}
		return nil
	}, nil
}

// quoteID shows an id on one line: as it is when it is plain printable
// text without spaces, quoted Go-style otherwise.
func quoteID(id string) string {
	for _, r := range id {
		if r == ' ' || !strconv.IsPrint(r) || r == '"' || r == '\\' {
			return strconv.Quote(id)
		}
	}
	return id
}

// timeText prints a time for people and scripts alike.
func timeText(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// printError is for errors from fmt on the output.
func printError(err error) error {
	if err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	return nil
}
