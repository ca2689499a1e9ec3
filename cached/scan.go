package cached

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jwtblocklist/blocklist"
)

var _ blocklist.ScanStore = (*Store)(nil)

// ScanRevoked lists every live revocation by asking the next Store, as
// blocklist.ScanStore describes: the cache holds only the answers it was
// asked for, so it cannot list on its own. Errors from the next Store, and
// from fn, are returned as is. When the next Store is not a
// blocklist.ScanStore (memcachestore), it returns an error wrapping
// errors.ErrUnsupported. A done context fails before any work.
func (s *Store) ScanRevoked(ctx context.Context, fn func(jti string, until time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cached: %w", err)
	}
	scan, ok := s.next.(blocklist.ScanStore)
	if !ok {
		return fmt.Errorf("cached: scan: the next store (%T) is not a blocklist.ScanStore: %w", s.next, errors.ErrUnsupported)
	}
	return scan.ScanRevoked(ctx, fn)
}
