package baseline

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/internal/measure"
)

// Redis is go-redis's EXISTS and SET PXAT on client, the commands a
// non-monotonic store would send, under prefix + "raw:".
func Redis(client redis.UniversalClient, prefix string) measure.Baseline {
	rawPrefix := prefix + "raw:"
	return measure.Baseline{
		RevokeFunc: func(ctx context.Context, jti string, exp time.Time) error {
			return client.Process(ctx, redis.NewStatusCmd(ctx, "set", rawPrefix+jti, "1", "pxat", exp.UnixMilli()))
		},
		IsRevokedFunc: func(ctx context.Context, jti string) (bool, error) {
			n, err := client.Exists(ctx, rawPrefix+jti).Result()
			return n == 1, err
		},
	}
}
