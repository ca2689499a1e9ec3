package main

import (
	"crypto/sha256"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/memorystore"
)

// clock is a manual clock for the demo's Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// throttledServer is the demo's handler over a memorystore, on a manual
// clock.
func throttledServer(t *testing.T) (http.Handler, *clock) {
	t.Helper()
	store := memorystore.New()
	t.Cleanup(func() { store.Close() })
	clk := &clock{now: time.Now()}
	h, err := newServer(serverConfig{
		Store: store, Secret: []byte(testSecret), TTL: time.Minute, User: "demo", Password: "demo",
		Log: slog.New(slog.DiscardHandler), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, clk
}

// tryLogin posts a login from remote and returns the status and Retry-After.
func tryLogin(h http.Handler, remote, user, password string) (int, string) {
	r := httptest.NewRequest("POST", "/login", strings.NewReader(`{"username":"`+user+`","password":"`+password+`"}`))
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Header().Get("Retry-After")
}

func TestLoginThrottlePerUsername(t *testing.T) {
	h, clk := throttledServer(t)
	// Guesses at demo's password from many addresses, as a botnet would.
	addr := func(i int) string { return "198.51.100." + string(rune('0'+i%10)) + ":4000" }
	for i := range failuresPerUser / 2 {
		if code, _ := tryLogin(h, addr(i), "demo", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d; want 401", i+1, code)
		}
	}
	code, retry := tryLogin(h, addr(7), "demo", "guess")
	if code != http.StatusTooManyRequests || retry != "12" {
		t.Fatalf("after %d failures: %d Retry-After %q; want 429 and 12 (one attempt every 12 s)", failuresPerUser/2, code, retry)
	}
	// The right password is refused too while the budget is spent: the
	// throttle decides before the password is checked.
	if code, _ := tryLogin(h, addr(8), "demo", "demo"); code != http.StatusTooManyRequests {
		t.Errorf("right password while throttled: %d; want 429", code)
	}
	// Another username is not affected.
	if code, _ := tryLogin(h, addr(9), "someone-else", "guess"); code != http.StatusUnauthorized {
		t.Errorf("another username: %d; want 401", code)
	}
	clk.advance(12 * time.Second)
	if code, _ := tryLogin(h, addr(1), "demo", "demo"); code != http.StatusOK {
		t.Errorf("after Retry-After, the right password: %d; want 200", code)
	}
	// The success gave its token back: one more failure fits, then 429.
	if code, _ := tryLogin(h, addr(1), "demo", "guess"); code != http.StatusUnauthorized {
		t.Errorf("failure after the refill: %d; want 401", code)
	}
	if code, _ := tryLogin(h, addr(1), "demo", "guess"); code != http.StatusTooManyRequests {
		t.Errorf("second failure after one refill: %d; want 429", code)
	}
	clk.advance(failureWindow)
	for i := range failuresPerUser / 2 {
		if code, _ := tryLogin(h, addr(i), "demo", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("a window later, failure %d: %d; want 401 (budget refilled)", i+1, code)
		}
	}
}

func TestLoginThrottlePerAddress(t *testing.T) {
	h, clk := throttledServer(t)
	const attacker, neighbour = "203.0.113.9:5000", "203.0.113.10:5000"
	user := func(i int) string { return "user" + strings.Repeat("x", i) }
	for i := range failuresPerAddress / 2 {
		if code, _ := tryLogin(h, attacker, user(i), "guess"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d; want 401", i+1, code)
		}
	}
	if code, retry := tryLogin(h, attacker, user(99), "guess"); code != http.StatusTooManyRequests || retry != "4" {
		t.Errorf("after %d failures from one address: %d Retry-After %q; want 429 and 4", failuresPerAddress/2, code, retry)
	}
	if code, _ := tryLogin(h, neighbour, "demo", "demo"); code != http.StatusOK {
		t.Errorf("another address: %d; want 200", code)
	}
	// IPv6: one /64 is one client.
	for i := range failuresPerAddress / 2 {
		tryLogin(h, "[2001:db8:1:2::"+string(rune('a'+i%6))+"]:80", user(i), "guess")
	}
	if code, _ := tryLogin(h, "[2001:db8:1:2:ffff::1]:80", "demo", "demo"); code != http.StatusTooManyRequests {
		t.Errorf("same /64: %d; want 429", code)
	}
	if code, _ := tryLogin(h, "[2001:db8:1:3::1]:80", "demo", "demo"); code != http.StatusOK {
		t.Errorf("another /64: %d; want 200", code)
	}
	clk.advance(4 * time.Second)
	if code, _ := tryLogin(h, attacker, "demo", "demo"); code != http.StatusOK {
		t.Errorf("after Retry-After: %d; want 200", code)
	}
}

func TestSuccessfulLoginsNotCounted(t *testing.T) {
	h, _ := throttledServer(t)
	for i := range 3 * failuresPerAddress {
		if code, _ := tryLogin(h, "192.0.2.1:1", "demo", "demo"); code != http.StatusOK {
			t.Fatalf("successful login %d: %d; want 200", i+1, code)
		}
	}
}

// The kind, not the instance: for random schedules of attempts by a few
// users from a few addresses, with random outcomes, no window of
// failureWindow ever holds more admitted failures than the budget of a user
// or an address; and a refused attempt retried after its Retry-After (with
// nothing in between) is admitted.
func TestThrottleBudgetProperty(t *testing.T) {
	refused := 0
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		l := newLoginThrottle()
		now := time.Unix(1_800_000_000, 0)
		users := []string{"a", "b", "c"}
		addrs := []string{"192.0.2.1:1", "192.0.2.2:1", "[2001:db8::1]:1"}
		failures := map[string][]time.Time{}
		spacing := 200*time.Millisecond + time.Duration(rng.Float64()*float64(3*time.Second))
		for range 400 {
			now = now.Add(time.Duration(rng.ExpFloat64() * float64(spacing)))
			u, a := users[rng.IntN(len(users))], addrs[rng.IntN(len(addrs))]
			at, wait := l.begin(u, a, now)
			if at == nil {
				refused++
				if wait <= 0 || wait > failureWindow {
					t.Fatalf("seed %d: refused with wait %v", seed, wait)
				}
				if rng.IntN(4) == 0 { // retry at the Retry-After, nothing in between
					now = now.Add(wait)
					var w2 time.Duration
					if at, w2 = l.begin(u, a, now); at == nil {
						t.Fatalf("seed %d: refused again after waiting %v: %v", seed, wait, w2)
					}
				} else {
					continue
				}
			}
			if rng.IntN(3) == 0 {
				at.succeeded(now)
				continue
			}
			failures["user:"+u] = append(failures["user:"+u], now)
			failures["addr:"+clientAddress(a)] = append(failures["addr:"+clientAddress(a)], now)
		}
		for key, times := range failures {
			budget := failuresPerUser
			if strings.HasPrefix(key, "addr:") {
				budget = failuresPerAddress
			}
			for i := range times {
				n := 0
				for j := i; j < len(times) && times[j].Sub(times[i]) < failureWindow; j++ {
					n++
				}
				if n > budget {
					t.Fatalf("seed %d: %s had %d failures within %v from %v; budget %d", seed, key, n, failureWindow, times[i], budget)
				}
			}
		}
	}
	if refused < 1000 {
		t.Errorf("only %d attempts refused in all: the schedules do not test the throttle", refused)
	}
}

func TestThrottleMemoryBound(t *testing.T) {
	b := newBuckets(10, time.Minute, 100)
	now := time.Unix(1_800_000_000, 0)
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i), byte(i >> 8)}) }
	for i := range 100 {
		b.get(key(i), now).ReserveN(now, 1) // a failure: not full any more
	}
	if lim := b.get(key(1000), now); lim != nil {
		t.Fatal("a new key got a bucket while the map is full of draining buckets")
	}
	// An old key still has its (drained) bucket: flooding evicted nothing.
	if lim := b.get(key(5), now); lim == nil || lim.TokensAt(now) >= 5 {
		t.Fatal("a draining bucket was lost")
	}
	now = now.Add(time.Minute) // every bucket refilled
	if lim := b.get(key(1000), now); lim == nil {
		t.Fatal("no bucket for a new key after the others refilled")
	}
	if n := b.len(); n > 100 {
		t.Errorf("%d buckets; want at most 100", n)
	}
}

func TestClientAddress(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:80":              "192.0.2.1",
		"[::ffff:192.0.2.1]:80":     "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:80":      "2001:db8:1:2::/64",
		"not an address":            "not an address",
	} {
		if got := clientAddress(in); got != want {
			t.Errorf("clientAddress(%q) = %q; want %q", in, got, want)
		}
	}
}
