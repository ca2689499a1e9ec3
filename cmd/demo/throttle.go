package main

import (
	"crypto/sha256"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed logins allowed, per username and per client address. Each is a
// token bucket of golang.org/x/time/rate that holds half the budget and
// refills the other half over the window: a burst of half, then one
// attempt per window/(budget/2), and never more than budget failures in any
// window (burst + rate × window = budget).
const (
	failuresPerUser    = 10
	failuresPerAddress = 30
	failureWindow      = time.Minute

	// maxThrottled bounds each map of buckets: about 200 bytes an entry.
	// Buckets that have refilled are dropped first (they are the same as
	// no bucket); when every bucket is still draining, a new name or
	// address is refused until one refills, so that flooding the map can
	// never reset a bucket that an attacker has emptied.
	maxThrottled = 50_000
	// sweepEvery spaces the sweeps for full buckets when a map is full.
	sweepEvery = time.Second
)

// loginThrottle limits failed logins per username and per client address.
// A login attempt takes one token from each bucket before the password is
// checked, so that concurrent guesses cannot overshoot, and a successful
// login gives them back.
type loginThrottle struct {
	users, addresses *buckets
}

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{
		users:     newBuckets(failuresPerUser, failureWindow, maxThrottled),
		addresses: newBuckets(failuresPerAddress, failureWindow, maxThrottled),
	}
}

// attempt is a login attempt that holds a token from each bucket.
type attempt struct {
	reservations []*rate.Reservation
}

// begin takes a token for user and for the client address of remoteAddr at
// now. It returns the attempt, or, when either budget is spent, how long
// until both have a token again.
func (l *loginThrottle) begin(user, remoteAddr string, now time.Time) (*attempt, time.Duration) {
	a := &attempt{}
	var wait time.Duration
	for _, take := range []struct {
		b   *buckets
		key [sha256.Size]byte
	}{
		{l.users, sha256.Sum256([]byte("user:" + user))},
		{l.addresses, sha256.Sum256([]byte("addr:" + clientAddress(remoteAddr)))},
	} {
		lim := take.b.get(take.key, now)
		if lim == nil { // the map is full of draining buckets
			wait = max(wait, sweepEvery)
			continue
		}
		r := lim.ReserveN(now, 1)
		// A delay under a microsecond is the float rounding of the
		// bucket's arithmetic, not a spent budget: a client that waited
		// exactly the Retry-After must get in.
		if d := r.DelayFrom(now); !r.OK() || d >= time.Microsecond {
			r.CancelAt(now)
			wait = max(wait, d)
			if !r.OK() {
				wait = max(wait, take.b.window)
			}
			continue
		}
		a.reservations = append(a.reservations, r)
	}
	if wait > 0 {
		a.succeeded(now) // gives back what was taken
		return nil, wait
	}
	return a, 0
}

// succeeded gives the tokens of a successful login back: only failures
// count.
func (a *attempt) succeeded(now time.Time) {
	for _, r := range a.reservations {
		r.CancelAt(now)
	}
}

// clientAddress is the key of a client: its IP address, or for IPv6 its
// /64, which one subscriber usually holds whole. The demo takes the address
// of the connection; behind a proxy, it would have to read the proxy's
// forwarding header, and trust it only from the proxy.
func clientAddress(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// buckets is a bounded map of token buckets, one per key.
type buckets struct {
	limit  rate.Limit
	burst  int
	window time.Duration
	max    int

	mu        sync.Mutex
	m         map[[sha256.Size]byte]*rate.Limiter
	lastSweep time.Time
}

// newBuckets returns buckets that allow budget events in any window.
func newBuckets(budget int, window time.Duration, max int) *buckets {
	half := int(math.Ceil(float64(budget) / 2))
	return &buckets{
		limit:  rate.Limit(float64(budget-half) / window.Seconds()),
		burst:  half,
		window: window,
		max:    max,
		m:      make(map[[sha256.Size]byte]*rate.Limiter),
	}
}

// get returns the bucket of key, made full if it is new, or nil when the
// map is full of buckets that have not refilled.
func (b *buckets) get(key [sha256.Size]byte, now time.Time) *rate.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	if lim, ok := b.m[key]; ok {
		return lim
	}
	if len(b.m) >= b.max && now.Sub(b.lastSweep) >= sweepEvery {
		b.lastSweep = now
		for k, lim := range b.m {
			if lim.TokensAt(now) >= float64(b.burst) {
				delete(b.m, k)
			}
		}
	}
	if len(b.m) >= b.max {
		return nil
	}
	lim := rate.NewLimiter(b.limit, b.burst)
	b.m[key] = lim
	return lim
}

// len returns the number of buckets held.
func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
