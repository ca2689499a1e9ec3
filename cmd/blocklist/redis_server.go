package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/redisstore"
)

// doctorRedisServer reports what redisstore.CheckServer finds wrong with
// the server's settings.
func doctorRedisServer(ctx context.Context, client redis.UniversalClient, s *redisstore.Store, report func(finding)) {
}
