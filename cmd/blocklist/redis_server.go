package main

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/redisstore"
)

// serverProblems are what redisstore.CheckServer can find, by name.
var serverProblems = []struct {
	check string
	err   error
}{
	{"eviction", redisstore.ErrEviction},
	{"server version", redisstore.ErrServerVersion},
	{"durability", redisstore.ErrNotDurable},
	{"stream length", redisstore.ErrStreamTooShort},
	{"prefix overlap", redisstore.ErrPrefixOverlap},
}

// doctorRedisServer reports, one finding per setting, what
// redisstore.CheckServer finds wrong with the server's settings.
func doctorRedisServer(ctx context.Context, _ redis.UniversalClient, s *redisstore.Store, report func(finding)) {
	err := s.CheckServer(ctx)
	known := false
	for _, p := range serverProblems {
		if errors.Is(err, p.err) {
			known = true
			report(finding{Check: p.check, OK: false, Detail: problemText(err, p.err)})
		} else {
			report(finding{Check: p.check, OK: true, Detail: "CheckServer found nothing wrong"})
		}
	}
	if err != nil && !known {
		report(finding{Check: "server settings", OK: false, Detail: "CheckServer could not check: " + oneLine(err)})
	}
}

// problemText is the part of err (errors.Join of several) that wraps
// target, on one line.
func problemText(err, target error) string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range joined.Unwrap() {
			if errors.Is(e, target) {
				parts = append(parts, oneLine(e))
			}
		}
		if len(parts) > 0 {
			return joinParts(parts)
		}
	}
	return oneLine(err)
}

func joinParts(parts []string) string {
	out := parts[0]
	for _, p := range parts[1:] {
		out += "; " + p
	}
	return out
}
