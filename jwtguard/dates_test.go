package jwtguard_test

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// rawToken signs a token whose header and payload are the JSON given, as
// they are: numbers golang-jwt would never write (1e19, 1e400, -0).
func rawToken(t testing.TB, header, payload string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(signing, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

const hs256Header = `{"alg":"HS256","typ":"JWT"}`

// Issue 13, case 3: dates out of range make a token invalid in every mode
// (middleware, Verify, Revoke, Refresh; with and without sessions), where
// golang-jwt's conversion to int64 seconds wraps them into the past, or the
// milliseconds of exp-iat overflow.
func TestDatesOutOfRange(t *testing.T) {
	t.Parallel()
	t.Run("memorystore", func(t *testing.T) {
		t.Parallel()
		checkDatesOutOfRange(t, newGuard(t, newMemory(t)), sessionGuard(t, newMemory(t)))
	})
	t.Run("redis+cached", func(t *testing.T) {
		t.Parallel()
		client := redistest.Client(t, testserver.Redis(t).Addr())
		prefix := redistest.Prefix(t)
		store := func() blocklist.Store {
			c, err := cached.New(redisstore.New(client, redisstore.WithPrefix(prefix)), cached.WithoutWatch())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		checkDatesOutOfRange(t, newGuard(t, store()), sessionGuard(t, store()))
	})
}

func checkDatesOutOfRange(t *testing.T, plain, sessions *jwtguard.Guard) {
	ctx := context.Background()
	now := time.Now().Unix()
	iat, exp := itoa(now), itoa(now+600)
	cases := map[string]string{
		"exp that overflows milliseconds": `{"sub":"alice","jti":"a","iat":` + iat + `,"exp":18446744073709552}`,
		"exp past the year 9999":          `{"sub":"alice","jti":"a","iat":` + iat + `,"exp":253402300800}`,
		"exp 1e19":                        `{"sub":"alice","jti":"a","iat":` + iat + `,"exp":1e19}`,
		"nbf 1e19":                        `{"sub":"alice","jti":"a","iat":` + iat + `,"exp":` + exp + `,"nbf":1e19}`,
		"nbf -1e19":                       `{"sub":"alice","jti":"a","iat":` + iat + `,"exp":` + exp + `,"nbf":-1e19}`,
		"iat 1e19":                        `{"sub":"alice","jti":"a","iat":1e19,"exp":` + exp + `}`,
		"iat -1e19":                       `{"sub":"alice","jti":"a","iat":-1e19,"exp":` + exp + `}`,
		"iat before the year 1":           `{"sub":"alice","jti":"a","iat":-62135596801,"exp":` + exp + `}`,
		"exp a string":                    `{"sub":"alice","jti":"a","iat":` + iat + `,"exp":"` + exp + `"}`,
		"exp null":                        `{"sub":"alice","jti":"a","iat":` + iat + `,"exp":null}`,
		"refresh token with huge exp":     `{"sub":"alice","jti":"r","sid":"s","token_use":"refresh","iat":` + iat + `,"exp":18446744073709552}`,
	}
	for name, payload := range cases {
		tok := rawToken(t, hs256Header, payload)
		for mode, g := range map[string]*jwtguard.Guard{"plain": plain, "sessions": sessions} {
			if _, err := g.Verify(ctx, tok); !errors.Is(err, jwtguard.ErrInvalidToken) {
				t.Errorf("%s, %s: Verify: %v; want ErrInvalidToken", name, mode, err)
			}
			if res := serve(g.Middleware(whoami), bearerRequest("GET", tok)); res.code != http.StatusUnauthorized || res.challenge != challengeInvalid {
				t.Errorf("%s, %s: middleware: %d %q; want 401 invalid_token", name, mode, res.code, res.challenge)
			}
			if err := g.Revoke(ctx, tok); !errors.Is(err, jwtguard.ErrInvalidToken) {
				t.Errorf("%s, %s: Revoke: %v; want ErrInvalidToken", name, mode, err)
			}
		}
		if _, err := sessions.Refresh(ctx, tok); !errors.Is(err, jwtguard.ErrInvalidToken) {
			t.Errorf("%s: Refresh: %v; want ErrInvalidToken", name, err)
		}
	}

	// The edges of the range: the last millisecond of 9999 is a date.
	edge := rawToken(t, hs256Header, `{"sub":"alice","jti":"edge","iat":`+iat+`,"exp":253402300799.999}`)
	if _, err := plain.Verify(ctx, edge); err != nil {
		t.Errorf("exp at the end of the year 9999: %v; want it accepted", err)
	}
}

// RFC 7515 section 4.1.11: a crit header naming an extension the Guard does
// not understand makes the token invalid, in every mode.
func TestCritHeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().Unix()
	payload := `{"sub":"alice","jti":"c","iat":` + itoa(now) + `,"exp":` + itoa(now+600) + `}`
	refresh := `{"sub":"alice","jti":"r","sid":"s","token_use":"refresh","iat":` + itoa(now) + `,"exp":` + itoa(now+600) + `}`
	g := sessionGuard(t, newMemory(t))
	for _, header := range []string{
		`{"alg":"HS256","crit":["exp"],"exp":1}`,
		`{"alg":"HS256","crit":["b64"],"b64":false}`,
		`{"alg":"HS256","crit":[]}`,
		`{"alg":"HS256","crit":"x"}`,
		`{"alg":"HS256","crit":null}`,
	} {
		tok := rawToken(t, header, payload)
		if _, err := g.Verify(ctx, tok); !errors.Is(err, jwtguard.ErrInvalidToken) {
			t.Errorf("header %s: Verify: %v; want ErrInvalidToken", header, err)
		}
		if err := g.Revoke(ctx, tok); !errors.Is(err, jwtguard.ErrInvalidToken) {
			t.Errorf("header %s: Revoke: %v; want ErrInvalidToken", header, err)
		}
		if _, err := g.Refresh(ctx, rawToken(t, header, refresh)); !errors.Is(err, jwtguard.ErrInvalidToken) {
			t.Errorf("header %s: Refresh: %v; want ErrInvalidToken", header, err)
		}
	}
	if _, err := g.Verify(ctx, rawToken(t, hs256Header, payload)); err != nil {
		t.Errorf("the same token without crit: %v", err)
	}
}

func itoa(n int64) string { return big.NewInt(n).String() }

// FuzzNumericDate signs tokens whose exp, nbf and iat are any JSON text,
// and checks the Guard's answer against the rules computed exactly (with
// math/big): a token is accepted only when every date present is a number
// from the year 1 to the year 9999, exp has not passed, nbf and iat are not
// in the future, and (with sessions) exp-iat is at most RefreshTTL. A date
// of 0 counts as absent, as in golang-jwt. Nothing may panic.
func FuzzNumericDate(f *testing.F) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := memorystore.New() // nothing is revoked: its clock never matters
	f.Cleanup(func() { store.Close() })
	plain := newGuard(f, store, jwtguard.WithClock(clock))
	sessions := newGuard(f, store, jwtguard.WithClock(clock), jwtguard.WithSessions(jwtguard.Sessions{RefreshTTL: time.Hour}))
	n := now.Unix()
	for _, seed := range [][3]string{
		{itoa(n + 60), "", itoa(n)},
		{"18446744073709552", "", itoa(n)},
		{"1e19", "1e19", "1e19"},
		{itoa(n + 60), "-1e19", "-1e19"},
		{"253402300799.999", "", itoa(n)},
		{"253402300800", "", itoa(n)},
		{"9223372036854775.807", "", ""},
		{"9223372036854775808", "0", "0"},
		{"1e400", "", ""},
		{itoa(n + 3600), "", itoa(n) + ".0004"},
		{itoa(n) + ".5", "-0", "-62135596800"},
		{`"x"`, "null", "true"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, exp, nbf, iat string) {
		var b strings.Builder
		b.WriteString(`{"sub":"alice"`)
		for _, c := range []struct{ name, lit string }{{"exp", exp}, {"nbf", nbf}, {"iat", iat}} {
			if c.lit != "" {
				b.WriteString(`,"` + c.name + `":` + c.lit)
			}
		}
		b.WriteString("}")
		tok := rawToken(t, hs256Header, b.String())

		// The oracle: mustRefuse when a rule is broken by more than a
		// millisecond, so that float64 rounding at an edge is never
		// counted against the Guard.
		dates := map[string]*big.Float{}
		mustRefuse, numbers := false, true
		for name, lit := range map[string]string{"exp": exp, "nbf": nbf, "iat": iat} {
			if lit == "" {
				continue
			}
			v, ok := jsonNumber(lit)
			if !ok {
				numbers = false // not a number, or JSON that adds keys
				continue
			}
			if v.Sign() == 0 {
				continue
			}
			if v.Cmp(big.NewFloat(-62135596800.001)) < 0 || v.Cmp(big.NewFloat(253402300800.001)) >= 0 {
				mustRefuse = true
			}
			dates[name] = v
		}
		if e := dates["exp"]; e == nil || e.Cmp(big.NewFloat(float64(n)-0.001)) < 0 {
			mustRefuse = true // no exp, or expired
		}
		for _, name := range []string{"nbf", "iat"} {
			if d := dates[name]; d != nil && d.Cmp(big.NewFloat(float64(n)+1.001)) >= 0 {
				mustRefuse = true // in the future, to the second
			}
		}
		_, errPlain := plain.Verify(ctx, tok)
		if errPlain != nil && !errors.Is(errPlain, jwtguard.ErrInvalidToken) {
			t.Fatalf("%s: %v; want ErrInvalidToken", b.String(), errPlain)
		}
		_, errSessions := sessions.Verify(ctx, tok)
		if errSessions != nil && !errors.Is(errSessions, jwtguard.ErrInvalidToken) {
			t.Fatalf("%s, sessions: %v; want ErrInvalidToken", b.String(), errSessions)
		}
		if !numbers {
			return
		}
		if errPlain == nil && mustRefuse {
			t.Fatalf("accepted %s", b.String())
		}
		if errSessions == nil {
			e, i := dates["exp"], dates["iat"]
			if mustRefuse || i == nil || new(big.Float).Sub(e, i).Cmp(big.NewFloat(3600.002)) > 0 {
				t.Fatalf("sessions accepted %s", b.String())
			}
		}
	})
}

// jsonNumber parses lit as encoding/json would accept a JSON number, into
// an exact value; ok is false for anything else.
func jsonNumber(lit string) (*big.Float, bool) {
	lit = strings.Trim(lit, " \t\r\n")
	if !jsonNumberSyntax.MatchString(lit) {
		return nil, false
	}
	v, _, err := big.ParseFloat(lit, 10, 200, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	if f, _ := v.Float64(); math.IsInf(f, 0) {
		return nil, false // encoding/json refuses numbers beyond float64
	}
	return v, true
}

var jsonNumberSyntax = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
