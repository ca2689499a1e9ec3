package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/chaosproxy"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// propagationRevocations is how many revocations each row of the
// propagation section times, in quick mode too: it is quick.
const propagationRevocations = 1000

// propagationHeader names the columns of the propagation table.
var propagationHeader = []string{
	"backend", "B's mode", "revocations", "p50", "p99", "max", "B's checks", "B's backend calls",
}

// propagation measures how long a revocation made by one instance takes to
// reach another, over Redis's stream (redisstore announcements, watched by
// package cached), and that a replica answers every check from memory.
func (r *runner) propagation(ctx context.Context) (section, error) {
	e := r.env
	sec := section{title: "Propagation: a logout on instance A seen by instance B"}
	sec.intro = append(sec.intro, fmt.Sprintf("Two instances, each a `cached` Store over `redisstore` with its own client. "+
		"A revokes %s fresh ids one at a time; each figure is the time from the call of A's Revoke to the moment B's watch "+
		"has applied the announcement (B's `Stats().WatchEvents` counts it), so it includes A's write. B keeps \"not revoked\" "+
		"answers for an hour; in replica mode B holds the whole blocklist. Then B checks every revoked id and as many never "+
		"revoked, and the last column counts the calls B made to Redis for them.", fmtCount(propagationRevocations)))
	sec.table = table{header: propagationHeader}
	type target struct {
		name   string
		client func() redis.UniversalClient
	}
	var targets []target
	if e.redis != nil && e.cfg.wants("propagation") {
		addr := e.redis.Options().Addr
		targets = append(targets, target{"redisstore", func() redis.UniversalClient { return newRedisClient(addr) }})
	}
	if e.cluster != nil && e.cfg.wants("propagation") {
		addrs := e.cluster.Options().Addrs
		targets = append(targets, target{"redisstore (cluster)", func() redis.UniversalClient { return newClusterClient(addrs) }})
	}
	if len(targets) == 0 {
		return sec, errors.New("no Redis to measure on")
	}
	for _, tg := range targets {
		for _, replica := range []bool{false, true} {
			mode := "cache"
			if replica {
				mode = "replica"
			}
			r.log.printf("propagation: %s, B in %s mode", tg.name, mode)
			row, err := measurePropagation(ctx, tg.client, e.prefix("propagation-"+tg.name+"-"+mode), replica)
			if err != nil {
				sec.failed = true
				sec.table.add(tg.name, mode, "error: "+err.Error())
				continue
			}
			row.name, row.mode = tg.name, mode
			r.propagated = append(r.propagated, row)
			sec.table.add(tg.name, mode, fmtCount(row.revocations),
				fmtDur(row.p50), fmtDur(row.p99), fmtDur(row.max),
				fmtCount(row.checks), strconv.FormatUint(row.backendCalls, 10))
		}
	}
	if e.redis != nil && e.cfg.wants("propagation") {
		addr := e.redis.Options().Addr
		r.log.printf("propagation: recovery from cuts, stale-if-error")
		rows, err := measureOutage(ctx, addr, e.prefix("propagation-outage"))
		if err != nil {
			sec.failed = true
			sec.table.add("redisstore", "outage", "error: "+err.Error())
		}
		for _, row := range rows {
			sec.table.add(row...)
		}
	}
	sec.notes = append(sec.notes, "The goal is p99 under 10 ms on loopback. In replica mode B's backend calls must be 0: "+
		"every check, of revoked and never-seen ids alike, is answered from B's memory.",
		fmt.Sprintf("The outage rows put B (go-redis default options) behind a TCP proxy. *Recovering from a cut*: %d times, "+
			"the proxy accepts and closes B's connections, B's watch reports the loss, A revokes an id B had cached as not revoked, "+
			"and the proxy heals; the figures run from the heal to B's watch being live again (Resumed or Synced), and to B's "+
			"first check of that id answering revoked. *Redis unreachable*: the proxy refuses B; each figure is one check of "+
			"an id B had cached (%s checks), with `WithStaleIfError(1 min)` answered from memory, and without it (the default) "+
			"failing closed.", outageCuts, fmtCount(outageChecks)))
	return sec, nil
}

// outageCuts and outageChecks size the outage rows of the propagation
// section.
const (
	outageCuts   = 20
	outageChecks = 10_000
)

// measureOutage returns the outage rows of the propagation section: a
// watch recovering from cuts, and checks while Redis is unreachable.
func measureOutage(ctx context.Context, addr, prefix string) ([][]string, error) {
	proxy, err := chaosproxy.New(addr)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	ca := newRedisClient(addr)
	defer ca.Close()
	a := redisstore.New(ca, redisstore.WithPrefix(prefix))
	var rows [][]string

	// Recovery from cuts.
	cb := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	defer cb.Close()
	b, err := cached.New(redisstore.New(cb, redisstore.WithPrefix(prefix)), cached.WithWatchNegativeTTL(time.Hour))
	if err != nil {
		return nil, err
	}
	defer b.Close()
	wait := func(what string, ok func() bool) error {
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s: not after 10 s", what)
			}
			time.Sleep(100 * time.Microsecond)
		}
		return nil
	}
	live := func() bool { return b.Stats().Watch == cached.WatchLive }
	if err := wait("B live", live); err != nil {
		return nil, err
	}
	exp := time.Now().Add(30 * time.Minute)
	var toLive, toCorrect []time.Duration
	for i := range outageCuts {
		jti := prefix + "cut-" + strconv.Itoa(i)
		if ok, err := b.IsRevoked(ctx, jti); err != nil || ok {
			return nil, fmt.Errorf("B: IsRevoked before the cut = %v, %v", ok, err)
		}
		if err := proxy.Set(chaosproxy.AcceptClose); err != nil {
			return nil, err
		}
		if err := wait("B's watch lost", func() bool { return b.Stats().Watch == cached.WatchLost }); err != nil {
			return nil, err
		}
		if err := a.Revoke(ctx, jti, exp); err != nil {
			return nil, err
		}
		if err := proxy.Set(chaosproxy.Pass); err != nil {
			return nil, err
		}
		healed := time.Now()
		var gotLive, gotCorrect time.Duration
		for gotLive == 0 || gotCorrect == 0 {
			if time.Since(healed) > 10*time.Second {
				return nil, errors.New("B not recovered 10 s after the heal")
			}
			if gotLive == 0 && live() {
				gotLive = time.Since(healed)
			}
			if gotCorrect == 0 {
				if ok, err := b.IsRevoked(ctx, jti); err == nil && ok {
					gotCorrect = time.Since(healed)
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
		toLive, toCorrect = append(toLive, gotLive), append(toCorrect, gotCorrect)
	}
	rows = append(rows, latencyRow("cache, heal → watch live", toLive, "", ""),
		latencyRow("cache, heal → first correct answer", toCorrect, "", ""))

	// Checks while Redis is unreachable.
	for _, stale := range []bool{true, false} {
		cs := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
		defer cs.Close()
		opts := []cached.Option{cached.WithWatchNegativeTTL(time.Hour)}
		mode := "cache, Redis unreachable, default (fail closed)"
		if stale {
			opts = append(opts, cached.WithStaleIfError(time.Minute))
			mode = "cache, Redis unreachable, WithStaleIfError"
		}
		s, err := cached.New(redisstore.New(cs, redisstore.WithPrefix(prefix)), opts...)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		if err := wait("B live", func() bool { return s.Stats().Watch == cached.WatchLive }); err != nil {
			return nil, err
		}
		ids := make([]string, 100)
		for i := range ids {
			ids[i] = prefix + "outage-" + strconv.Itoa(i)
		}
		// Cache every id; a pass that made backend calls may have raced
		// the watch's replay of A's revocations, which keeps a lookup in
		// flight from caching: fill again.
		for pass := 0; ; pass++ {
			before := s.Stats().BackendCalls
			for _, jti := range ids {
				if _, err := s.IsRevoked(ctx, jti); err != nil {
					return nil, err
				}
			}
			if s.Stats().BackendCalls == before {
				break
			}
			if pass == 10 {
				return nil, errors.New("B does not keep its answers")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := proxy.Set(chaosproxy.Refuse); err != nil {
			return nil, err
		}
		if err := wait("B's watch lost", func() bool { return s.Stats().Watch == cached.WatchLost }); err != nil {
			return nil, err
		}
		if err := cs.Ping(ctx).Err(); err == nil {
			return nil, errors.New("B reaches Redis through a refusing proxy")
		}
		n := outageChecks
		if !stale {
			n = outageChecks / 100 // each waits for the lookup's bound
		}
		before := s.Stats().BackendCalls
		lat := make([]time.Duration, 0, n)
		failed := 0
		for i := range n {
			start := time.Now()
			_, err := s.IsRevoked(ctx, ids[i%len(ids)])
			lat = append(lat, time.Since(start))
			if err != nil {
				failed++
			} else if !stale {
				return nil, errors.New("B answered without Redis, without stale-if-error")
			}
		}
		if stale && failed > 0 {
			return nil, fmt.Errorf("%d stale-if-error checks failed", failed)
		}
		calls := s.Stats().BackendCalls - before
		rows = append(rows, latencyRow(mode, lat, fmtCount(n), strconv.FormatUint(calls, 10)))
		if err := proxy.Set(chaosproxy.Pass); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// latencyRow is a row of the propagation table for figures lat.
func latencyRow(mode string, lat []time.Duration, checks, calls string) []string {
	slices.Sort(lat)
	return []string{"redisstore", mode, fmtCount(len(lat)),
		fmtDur(lat[len(lat)/2]), fmtDur(lat[len(lat)*99/100]), fmtDur(lat[len(lat)-1]), checks, calls}
}

// propagated is one measured row of the propagation section.
type propagated struct {
	name, mode    string
	revocations   int
	p50, p99, max time.Duration
	checks        int
	backendCalls  uint64 // B's, for the checks
}

// measurePropagation times propagationRevocations revocations from A to B.
func measurePropagation(ctx context.Context, newClient func() redis.UniversalClient, prefix string, replica bool) (propagated, error) {
	ca, cb := newClient(), newClient()
	defer ca.Close()
	defer cb.Close()
	a, err := cached.New(redisstore.New(ca, redisstore.WithPrefix(prefix)))
	if err != nil {
		return propagated{}, err
	}
	defer a.Close()
	opts := []cached.Option{cached.WithNegativeTTL(time.Hour), cached.WithWatchNegativeTTL(time.Hour)}
	if replica {
		opts = append(opts, cached.WithReplica())
	}
	b, err := cached.New(redisstore.New(cb, redisstore.WithPrefix(prefix)), opts...)
	if err != nil {
		return propagated{}, err
	}
	defer b.Close()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Watch != cached.WatchLive {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return propagated{}, fmt.Errorf("B's watch not live after 10 s (%s)", b.Stats().Watch)
		}
		time.Sleep(time.Millisecond)
	}

	exp := time.Now().Add(30 * time.Minute)
	lat := make([]time.Duration, 0, propagationRevocations)
	ids := make([]string, propagationRevocations)
	for i := range ids {
		ids[i] = prefix + "id-" + strconv.Itoa(i)
		want := b.Stats().WatchEvents + 1
		start := time.Now()
		if err := a.Revoke(ctx, ids[i], exp); err != nil {
			return propagated{}, err
		}
		for b.Stats().WatchEvents < want {
			if time.Since(start) > 5*time.Second {
				return propagated{}, fmt.Errorf("revocation %d not seen by B after 5 s", i)
			}
			runtime.Gosched()
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)

	before := b.Stats().BackendCalls
	for i, jti := range ids {
		if ok, err := b.IsRevoked(ctx, jti); err != nil || !ok {
			return propagated{}, fmt.Errorf("B: IsRevoked(%q) = %v, %v after propagation", jti, ok, err)
		}
		if ok, err := b.IsRevoked(ctx, prefix+"never-"+strconv.Itoa(i)); err != nil || ok {
			return propagated{}, fmt.Errorf("B: IsRevoked of an id never revoked = %v, %v", ok, err)
		}
	}
	calls := b.Stats().BackendCalls - before
	return propagated{
		revocations: len(lat),
		p50:         lat[len(lat)/2], p99: lat[len(lat)*99/100], max: lat[len(lat)-1],
		checks: 2 * len(ids), backendCalls: calls,
	}, nil
}
