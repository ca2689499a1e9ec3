package baseline

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist/internal/measure"
)

// Memcache is gomemcache's Get and Set on client, under prefix + "raw:".
// The ids of the workload need no escaping, so the key is the prefix and
// the id.
func Memcache(client *memcache.Client, prefix string) measure.Baseline {
	rawPrefix := prefix + "raw:"
	return measure.Baseline{
		RevokeFunc: func(_ context.Context, jti string, exp time.Time) error {
			v := binary.BigEndian.AppendUint64(nil, uint64(exp.UnixMilli()))
			secs := int32(time.Until(exp)/time.Second) + 1
			return client.Set(&memcache.Item{Key: rawPrefix + jti, Value: v, Expiration: secs})
		},
		IsRevokedFunc: func(_ context.Context, jti string) (bool, error) {
			it, err := client.Get(rawPrefix + jti)
			if errors.Is(err, memcache.ErrCacheMiss) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			return len(it.Value) == 8 && int64(binary.BigEndian.Uint64(it.Value)) > time.Now().UnixMilli(), nil
		},
	}
}
