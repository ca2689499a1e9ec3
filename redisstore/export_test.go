package redisstore

import "context"

// Prefix returns the key prefix of the Store (see WithPrefix), so tests can
// make a peer of it or read its keys.
func (s *Store) Prefix() string { return s.prefix }

// Stream returns the key of the stream revocations are announced on (the
// prefix itself, see the package documentation), or "" with WithoutEvents.
// On Cluster, see Streams.
func (s *Store) Stream() string { return s.stream }

// StreamFor returns the key of the stream the revocation of jti is
// announced on.
func (s *Store) StreamFor(ctx context.Context, jti string) (string, error) {
	if s.streams == nil {
		return s.stream, nil
	}
	st, _, err := s.streams.streamFor(ctx, s.key(jti))
	return st, err
}

// ClusterStreamKey is clusterStreamKey, for tests that check the layout.
var ClusterStreamKey = clusterStreamKey

// KeySlot is keySlot.
var KeySlot = keySlot
