package main

import (
	"fmt"
	"strings"
)

// recommendations are the lines the report opens with: which backend for
// which use, each drawn from this run's figures, or saying which row this
// run did not measure.
func (r *runner) recommendations() []string {
	row := func(name string) *comparedPair {
		for i := range r.compared {
			if r.compared[i].name == name && r.compared[i].err == nil {
				return &r.compared[i]
			}
		}
		return nil
	}
	lookup := func(p *comparedPair) string {
		return fmt.Sprintf("IsRevoked %s p50 (%s p99)", fmtDur(p.store.Unrevoked.P50), fmtDur(p.store.Unrevoked.P99))
	}
	revoke := func(p *comparedPair) string {
		return fmt.Sprintf("Revoke %s p50 (%s p99)", fmtDur(p.store.Revoke.P50), fmtDur(p.store.Revoke.P99))
	}
	notMeasured := func(names ...string) string {
		return "not measured in this run (" + strings.Join(names, ", ") + " skipped or failed; see below)"
	}
	var lines []string

	// One process: nothing to share, restarts may forget.
	if m := row("memorystore"); m != nil {
		lines = append(lines, fmt.Sprintf("- **One process** (revocations may be lost on restart): `memorystore`: %s, %s, "+
			"×%s of the bare map and lock it is built on.",
			lookup(m), revoke(m), strings.TrimPrefix(fmtRatio(m.store.Unrevoked.P50, m.raw.Unrevoked.P50), "×")))
	} else {
		lines = append(lines, "- **One process**: `memorystore`, "+notMeasured("memorystore"))
	}

	// One machine, durable: bolt's fsync is the cost, on Revoke only.
	if b := row("boltstore"); b != nil {
		line := fmt.Sprintf("- **One machine, durable** (revocations survive restarts; one process holds the file): `boltstore`: %s", lookup(b))
		if m := row("memorystore"); m != nil && m.store.Unrevoked.P50 > 0 {
			line += fmt.Sprintf(", %s memorystore's", fmtRatio(b.store.Unrevoked.P50, m.store.Unrevoked.P50))
		}
		lines = append(lines, line+fmt.Sprintf("; %s, which waits for bbolt's batch and an fsync. "+
			"Logouts are rare, lookups are every request.", revoke(b)))
	} else {
		lines = append(lines, "- **One machine, durable**: `boltstore`, "+notMeasured("boltstore"))
	}

	// A fleet: a shared store, a cache in front, revocations pushed.
	fleet := "- **A fleet**: "
	switch c, n := row("cached → redisstore"), row("redisstore"); {
	case c != nil && n != nil:
		fleet += fmt.Sprintf("`cached` over `redisstore`: %s from the cache against %s for a round trip to Redis; %s",
			fmtDur(c.store.Unrevoked.P50), fmtDur(n.store.Unrevoked.P50), revoke(c))
		for _, p := range r.propagated {
			if p.name == "redisstore" && p.mode == "cache" {
				fleet += fmt.Sprintf("; a logout reaches the other instances' caches in %s p50, %s p99", fmtDur(p.p50), fmtDur(p.p99))
			}
		}
		if m := row("cached → memcachestore"); m != nil {
			fleet += fmt.Sprintf(". `cached` over `memcachestore` looks up in %s but is told of no revocation: "+
				"another instance may accept a logged-out token for up to the cache's NegativeTTL (1 s)", fmtDur(m.store.Unrevoked.P50))
		}
		fleet += "."
	default:
		fleet += "`cached` over `redisstore`, " + notMeasured("redisstore", "cached → redisstore")
	}
	lines = append(lines, fleet)
	return lines
}
