package jwtguard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
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

// sessionEnv is where the session tests of issue 13 run: Guards sharing
// one memorystore inside a testing/synctest bubble, whose clock moves only
// when the test moves it, or Guards each with its own cached Store over one
// real Redis, on the real clock.
type sessionEnv struct {
	fake  bool // in a bubble
	store func(t *testing.T) blocklist.Store
	// for reading the layout
	reader blocklist.ExpiryStore
}

// now is the time. In a bubble it moves a millisecond at each reading, as
// a real clock moves between two calls: a token minted before LogoutAll
// has an earlier iat than the cutoff.
func (e *sessionEnv) now() time.Time {
	if e.fake {
		time.Sleep(time.Millisecond)
	}
	return time.Now()
}

// advance moves the clock on by d: in a bubble at once, else in real time.
func (e *sessionEnv) advance(d time.Duration) {
	time.Sleep(d)
}

// clock is the clock of a Guard whose clock is off by skew.
func (e *sessionEnv) clock(skew time.Duration) func() time.Time {
	return func() time.Time { return e.now().Add(skew) }
}

// guard returns a Guard with sessions s on this environment's Store (for
// Redis, a cached Store of its own), its clock off by skew.
func (e *sessionEnv) guard(t *testing.T, s jwtguard.Sessions, skew time.Duration, opts ...jwtguard.Option) *jwtguard.Guard {
	t.Helper()
	if s.SigningMethod == nil {
		s.SigningMethod, s.SigningKey = jwt.SigningMethodHS256, testKey
	}
	opts = append([]jwtguard.Option{jwtguard.WithSessions(s), jwtguard.WithClock(e.clock(skew))}, opts...)
	return newGuard(t, e.store(t), opts...)
}

// eventually checks cond at once on the fake clock; on Redis, where a
// revocation made through one cached Store reaches the other through the
// watch, it retries for a few seconds.
func (e *sessionEnv) eventually(t *testing.T, cond func() bool) bool {
	t.Helper()
	if e.fake {
		return cond()
	}
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// inBubble runs test on Guards sharing one memorystore, inside a
// testing/synctest bubble: the Store and the Guards read the bubble's clock.
func inBubble(t *testing.T, test func(t *testing.T, e *sessionEnv)) {
	synctest.Test(t, func(t *testing.T) {
		mem := memorystore.New()
		t.Cleanup(func() { mem.Close() })
		e := &sessionEnv{fake: true, reader: mem}
		e.store = func(*testing.T) blocklist.Store { return mem }
		test(t, e)
	})
}

// forEachEnv runs test on memorystore and over Redis with cached Stores.
func forEachEnv(t *testing.T, test func(t *testing.T, e *sessionEnv)) {
	t.Run("memorystore", func(t *testing.T) {
		t.Parallel()
		inBubble(t, test)
	})
	t.Run("redis+cached", func(t *testing.T) {
		t.Parallel()
		srv := testserver.Redis(t)
		client := redistest.Client(t, srv.Addr())
		prefix := redistest.Prefix(t)
		e := &sessionEnv{}
		e.reader = redisstore.New(client, redisstore.WithPrefix(prefix))
		e.store = func(t *testing.T) blocklist.Store {
			// Without the watch: under -race on a loaded machine a watch
			// can miss its one-second silence bound, and a lost watch
			// abandons the lookups in flight. What these tests check is
			// the session logic across two caches, whose staleness
			// NegativeTTL bounds (eventually waits it out).
			c, err := cached.New(redisstore.New(client, redisstore.WithPrefix(prefix)),
				cached.WithoutWatch(), cached.WithNegativeTTL(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		test(t, e)
	})
}

func accepted(g *jwtguard.Guard, token string) bool {
	return serve(g.Middleware(whoami), bearerRequest("GET", token)).code == http.StatusOK
}

// wantRefused checks that every Guard refuses the access token and the
// refresh token of p as revoked (not as invalid).
func wantRefused(t *testing.T, e *sessionEnv, p *jwtguard.Pair, why string, guards ...*jwtguard.Guard) {
	t.Helper()
	for i, g := range guards {
		if !e.eventually(t, func() bool { return !accepted(g, p.AccessToken) }) {
			t.Errorf("guard %d accepts the access token: %s", i, why)
		}
		if _, err := g.Refresh(context.Background(), p.RefreshToken); !errors.Is(err, jwtguard.ErrRevoked) {
			t.Errorf("guard %d: Refresh: %v; want ErrRevoked: %s", i, err, why)
		}
	}
}

var base = jwtguard.Sessions{AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour}

func with(s jwtguard.Sessions, f func(*jwtguard.Sessions)) jwtguard.Sessions {
	f(&s)
	return s
}

// A setting of one Guard, raised or lowered against another's.
type setting struct {
	name   string
	s      jwtguard.Sessions
	leeway time.Duration
}

var settings = []setting{
	{"RefreshTTL 24h+1s", with(base, func(s *jwtguard.Sessions) { s.RefreshTTL += time.Second }), 0},
	{"RefreshTTL 48h", with(base, func(s *jwtguard.Sessions) { s.RefreshTTL = 48 * time.Hour }), 0},
	{"RefreshTTL 12h", with(base, func(s *jwtguard.Sessions) { s.RefreshTTL = 12 * time.Hour }), 0},
	{"AccessTTL 1h", with(base, func(s *jwtguard.Sessions) { s.AccessTTL = time.Hour }), 0},
	{"AccessTTL 1m", with(base, func(s *jwtguard.Sessions) { s.AccessTTL = time.Minute }), 0},
	{"leeway 5s", base, 5 * time.Second},
	{"leeway MaxLeeway", base, jwtguard.MaxLeeway},
}

// Issue 13, case 1: a LogoutAll or RevokeSession recorded by a Guard with
// one configuration is read the same by a Guard with another, in both
// directions of every setting: tokens minted before it by either Guard are
// refused by both for as long as either could accept them, and a login
// after LogoutAll works on both.
func TestIssue13ConfigurationChange(t *testing.T) {
	t.Parallel()
	forEachEnv(t, func(t *testing.T, e *sessionEnv) {
		ctx := context.Background()
		type victim struct {
			p    *jwtguard.Pair
			last time.Time // the last moment any Guard may accept a token of p
		}
		var victims []victim
		for i, set := range settings {
			ref := e.guard(t, base, 0)
			other := e.guard(t, set.s, 0, jwtguard.WithLeeway(set.leeway))
			for dir, gs := range [][2]*jwtguard.Guard{{ref, other}, {other, ref}} {
				writer, reader := gs[0], gs[1]
				sub := fmt.Sprintf("alice-%d-%d", i, dir)
				all := []*jwtguard.Pair{newSession(t, writer, sub), newSession(t, reader, sub)}
				one := newSession(t, reader, sub+"-one")
				if err := writer.LogoutAll(ctx, sub); err != nil {
					t.Fatal(err)
				}
				if err := writer.RevokeSession(ctx, one.SessionID); err != nil {
					t.Fatal(err)
				}
				for _, p := range append(all, one) {
					wantRefused(t, e, p, set.name+": minted before LogoutAll or RevokeSession", writer, reader)
					victims = append(victims, victim{p, p.RefreshExpiresAt.Add(jwtguard.MaxLeeway)})
				}
				if set.leeway == 0 {
					after := newSession(t, writer, sub)
					if !accepted(reader, after.AccessToken) || !accepted(writer, after.AccessToken) {
						t.Errorf("%s: a login after LogoutAll is refused", set.name)
					}
				}
			}
		}
		// The entries outlive every token they cover: on the fake clock,
		// go to the last moment a token could be accepted; on Redis, read
		// when the entries end.
		for _, v := range victims {
			sessionEnd, err := e.reader.RevokedUntil(ctx, "sid:"+v.p.SessionID)
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := jwt.Parse(v.p.RefreshToken, keyFunc, jwt.WithoutClaimsValidation())
			sub, _ := tok.Claims.GetSubject()
			subjectEnd, err := e.reader.RevokedUntil(ctx, "sub:"+sub)
			if err != nil {
				t.Fatal(err)
			}
			if !sessionEnd.After(v.last) && !subjectEnd.After(v.last) {
				t.Errorf("session %s: entries end %v and %v, before its last token can be accepted (%v)", v.p.SessionID, sessionEnd, subjectEnd, v.last)
			}
		}
		if e.fake {
			slices.SortFunc(victims, func(a, b victim) int { return a.last.Compare(b.last) })
			g := e.guard(t, with(base, func(s *jwtguard.Sessions) { s.RefreshTTL = 48 * time.Hour }), 0, jwtguard.WithLeeway(jwtguard.MaxLeeway))
			for _, v := range victims {
				if d := v.last.Add(-time.Second).Sub(e.now()); d > 0 { // the clock ticks on
					e.advance(d)
				}
				if _, err := g.Refresh(ctx, v.p.RefreshToken); !errors.Is(err, jwtguard.ErrRevoked) {
					t.Errorf("session %s at the last moment its refresh token can be accepted: %v; want ErrRevoked", v.p.SessionID, err)
				}
			}
		}
	})
}

// Issue 13, case 2: an issuer whose clock is ahead, within the leeway of
// both Guards. Tokens it minted before LogoutAll on the other Guard are
// refused; after RevokeSession its refresh token stays refused beyond
// RefreshTTL + leeway + 0.5 s.
func TestIssue13ClockSkew(t *testing.T) {
	t.Parallel()
	forEachEnv(t, func(t *testing.T, e *sessionEnv) {
		ctx := context.Background()
		for _, ahead := range []time.Duration{500 * time.Millisecond, 2 * time.Second} {
			s := jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: time.Hour}
			minter := e.guard(t, s, ahead, jwtguard.WithLeeway(5*time.Second))
			other := e.guard(t, s, 0, jwtguard.WithLeeway(5*time.Second))
			sub := fmt.Sprintf("alice-%v", ahead)
			p := newSession(t, minter, sub)
			if err := other.LogoutAll(ctx, sub); err != nil {
				t.Fatal(err)
			}
			wantRefused(t, e, p, fmt.Sprintf("minted %v ahead before LogoutAll", ahead), minter, other)
		}

		// An issuer ahead by the whole leeway; RevokeSession on the other
		// Guard. Short lifetimes, so that Redis can wait them out.
		const lee = 2 * time.Second
		s := jwtguard.Sessions{AccessTTL: time.Second, RefreshTTL: 2 * time.Second}
		minter := e.guard(t, s, lee, jwtguard.WithLeeway(lee))
		other := e.guard(t, s, 0, jwtguard.WithLeeway(lee))
		p := newSession(t, minter, "bob")
		if err := other.RevokeSession(ctx, p.SessionID); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, e, p, "RevokeSession", other)
		e.advance(s.RefreshTTL + lee + 500*time.Millisecond)
		if _, err := other.Refresh(ctx, p.RefreshToken); !errors.Is(err, jwtguard.ErrRevoked) {
			t.Errorf("RefreshTTL+leeway+0.5s after RevokeSession, the issuer-ahead refresh token: %v; want ErrRevoked", err)
		}
	})
}

// overlapStore runs hook once, in the middle of a Refresh: after its
// lookup found the session alive, before it records the exchange.
type overlapStore struct {
	onceBatch
	mu   sync.Mutex
	hook func()
}

type onceBatch interface {
	blocklist.BatchStore
	blocklist.OnceStore
}

func (s *overlapStore) RevokeOnce(ctx context.Context, id string, exp time.Time) (bool, error) {
	s.mu.Lock()
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s.onceBatch.RevokeOnce(ctx, id, exp)
}

// Issue 13, case 2 (overlap): a LogoutAll or RevokeSession that lands
// while a Refresh is under way covers the pair that Refresh mints, for as
// long as it can be accepted.
func TestIssue13RefreshOverlapsRevocation(t *testing.T) {
	t.Parallel()
	forEachEnv(t, func(t *testing.T, e *sessionEnv) {
		ctx := context.Background()
		s := jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: time.Hour}
		other := e.guard(t, s, 0)
		for _, kind := range []string{"LogoutAll", "RevokeSession"} {
			o := &overlapStore{onceBatch: e.store(t).(onceBatch)}
			g := newGuard(t, o, jwtguard.WithSessions(with(s, func(s *jwtguard.Sessions) {
				s.SigningMethod, s.SigningKey = jwt.SigningMethodHS256, testKey
			})), jwtguard.WithClock(e.clock(0)))
			sub := "carol-" + kind
			p := newSession(t, g, sub)
			o.hook = func() {
				var err error
				if kind == "LogoutAll" {
					err = other.LogoutAll(ctx, sub)
				} else {
					err = other.RevokeSession(ctx, p.SessionID)
				}
				if err != nil {
					t.Error(err)
				}
			}
			p2, err := g.Refresh(ctx, p.RefreshToken)
			if err != nil {
				// Refusing is as good as minting a pair born revoked.
				continue
			}
			wantRefused(t, e, p2, "minted by a Refresh that overlapped "+kind, g, other)
		}
	})
}

func graceSessions(grace time.Duration) jwtguard.Sessions {
	return jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: time.Hour, GracePeriod: grace}
}

// Issue 13, case 4 and the grace window's first test: 32 goroutines on two
// Guards refresh one token at once. All succeed with one successor (the
// same strings: HS256 is deterministic), the session lives, and the
// counters add up.
func TestGraceConcurrentRefresh(t *testing.T) {
	t.Parallel()
	forEachEnv(t, func(t *testing.T, e *sessionEnv) {
		ctx := context.Background()
		guards := []*jwtguard.Guard{e.guard(t, graceSessions(time.Minute), 0), e.guard(t, graceSessions(time.Minute), 0)}
		p := newSession(t, guards[0], "dave")
		const racers = 32
		pairs := make([]*jwtguard.Pair, racers)
		errs := make([]error, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				pairs[i], errs[i] = guards[i%2].Refresh(ctx, p.RefreshToken)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("refresh %d of %d: %v", i, racers, err)
			}
			if pairs[i].RefreshToken != pairs[0].RefreshToken || pairs[i].AccessToken != pairs[0].AccessToken || pairs[i].SessionID != p.SessionID {
				t.Fatalf("refresh %d answered another pair than refresh 0: the chain forked", i)
			}
		}
		for _, g := range guards {
			if !accepted(g, pairs[0].AccessToken) {
				t.Error("the successor's access token is refused")
			}
		}
		var st jwtguard.SessionStats
		for _, g := range guards {
			s := g.SessionStats()
			st.Refreshes += s.Refreshes
			st.GraceReplays += s.GraceReplays
			st.ReusesDetected += s.ReusesDetected
		}
		if st != (jwtguard.SessionStats{Refreshes: 1, GraceReplays: racers - 1}) {
			t.Errorf("stats %+v; want 1 refresh and %d grace replays", st, racers-1)
		}
		// The successor is one exchange: of two refreshes of it, both
		// within the window, both get the same next pair.
		n1, err := guards[0].Refresh(ctx, pairs[0].RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		n2, err := guards[1].Refresh(ctx, pairs[racers-1].RefreshToken)
		if err != nil || n2.RefreshToken != n1.RefreshToken {
			t.Fatalf("second refresh of the successor: %v, same pair %v", err, n2 != nil && n2.RefreshToken == n1.RefreshToken)
		}
	})
}

// Issue 13, case 5: the response to a Refresh is lost; the client retries
// with the refresh token it has, on another Guard, and gets the same pair.
// Without a grace period the retry is reuse, as before.
func TestGraceLostResponse(t *testing.T) {
	t.Parallel()
	forEachEnv(t, func(t *testing.T, e *sessionEnv) {
		ctx := context.Background()
		a, b := e.guard(t, graceSessions(30*time.Second), 0), e.guard(t, graceSessions(30*time.Second), 0)
		p := newSession(t, a, "erin")
		lost, err := a.Refresh(ctx, p.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		e.advance(2 * time.Second)
		retry, err := b.Refresh(ctx, p.RefreshToken)
		if err != nil {
			t.Fatalf("retry after a lost response: %v", err)
		}
		if retry.RefreshToken != lost.RefreshToken || retry.AccessToken != lost.AccessToken {
			t.Error("the retry got another pair than the lost one")
		}
		if !accepted(a, retry.AccessToken) {
			t.Error("the retried pair's access token is refused")
		}
		if _, err := a.Refresh(ctx, retry.RefreshToken); err != nil {
			t.Errorf("refreshing the retried pair: %v", err)
		}

		strict := e.guard(t, graceSessions(0), 0)
		q := newSession(t, strict, "erin-strict")
		if _, err := strict.Refresh(ctx, q.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if _, err := strict.Refresh(ctx, q.RefreshToken); !errors.Is(err, jwtguard.ErrRefreshReused) {
			t.Errorf("retry without a grace period: %v; want ErrRefreshReused", err)
		}
	})
}

// A replay after the window, and a replay of the grandparent after the
// successor was exchanged (within the window), are reuse: the session is
// revoked and the counters say so.
func TestGraceReplayIsReuse(t *testing.T) {
	t.Parallel()
	forEachEnv(t, func(t *testing.T, e *sessionEnv) {
		ctx := context.Background()
		const grace = 2 * time.Second
		a, b := e.guard(t, graceSessions(grace), 0), e.guard(t, graceSessions(grace), 0)

		p := newSession(t, a, "frank")
		p1, err := a.Refresh(ctx, p.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		e.advance(grace + 100*time.Millisecond)
		if _, err := b.Refresh(ctx, p.RefreshToken); !errors.Is(err, jwtguard.ErrRefreshReused) {
			t.Errorf("replay after the window: %v; want ErrRefreshReused", err)
		}
		wantRefused(t, e, p1, "the session of a replay after the window", a, b)

		q := newSession(t, a, "frank")
		q1, err := a.Refresh(ctx, q.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		q2, err := a.Refresh(ctx, q1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Refresh(ctx, q.RefreshToken); !errors.Is(err, jwtguard.ErrRefreshReused) {
			t.Errorf("grandparent replayed within the window: %v; want ErrRefreshReused", err)
		}
		wantRefused(t, e, q2, "the session of a grandparent replay", a, b)
		if got := a.SessionStats().ReusesDetected + b.SessionStats().ReusesDetected; got != 2 {
			t.Errorf("ReusesDetected %d; want 2", got)
		}
	})
}

// No refresh chain outlives LogoutAll, with or without the grace window:
// not a replay of the parent within the window, not the successor.
func TestGraceNoChainOutlivesLogoutAll(t *testing.T) {
	t.Parallel()
	forEachEnv(t, func(t *testing.T, e *sessionEnv) {
		ctx := context.Background()
		a, b := e.guard(t, graceSessions(time.Minute), 0), e.guard(t, graceSessions(time.Minute), 0)
		p := newSession(t, a, "grace")
		p1, err := a.Refresh(ctx, p.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.LogoutAll(ctx, "grace"); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, e, p1, "successor minted before LogoutAll", a, b)
		wantRefused(t, e, p, "parent replayed within the window after LogoutAll", a, b)
		if e.fake {
			e.advance(time.Hour - time.Second)
			wantRefused(t, e, p1, "successor near its end", a, b)
		}
	})
}
