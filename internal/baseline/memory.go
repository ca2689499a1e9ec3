package baseline

import (
	"context"
	"sync"
	"time"

	"github.com/jwtblocklist/blocklist/internal/measure"
)

// Memory is the map and read-write lock memorystore is built on.
func Memory() measure.Baseline {
	var mu sync.RWMutex
	m := map[string]int64{}
	return measure.Baseline{
		RevokeFunc: func(_ context.Context, jti string, exp time.Time) error {
			mu.Lock()
			m[jti] = exp.UnixNano()
			mu.Unlock()
			return nil
		},
		IsRevokedFunc: func(_ context.Context, jti string) (bool, error) {
			mu.RLock()
			exp := m[jti]
			mu.RUnlock()
			return exp > time.Now().UnixNano(), nil
		},
	}
}
