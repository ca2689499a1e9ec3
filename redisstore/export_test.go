package redisstore

import (
	"context"
	"time"
)

// Prefix returns the key prefix of the Store (see WithPrefix), so tests can
// make a peer of it or read its keys.
func (s *Store) Prefix() string { return s.prefix }

// Stream returns the key of the stream revocations are announced on (the
// prefix itself, see the package documentation), or "" with WithoutEvents.
// On Cluster, see StreamKeys.
func (s *Store) Stream() string { return s.stream }

// StreamKeys returns the keys of the streams revocations are announced on,
// as the slot map reads now: on Cluster one per master, elsewhere the one
// stream; none with WithoutEvents.
func (s *Store) StreamKeys(ctx context.Context) ([]string, error) {
	switch {
	case s.stream == "":
		return nil, nil
	case s.streams == nil:
		return []string{s.stream}, nil
	}
	m, err := s.streams.read(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	return m.keys, nil
}

// StreamFor returns the key of the stream the revocation of jti is
// announced on.
func (s *Store) StreamFor(ctx context.Context, jti string) (string, error) {
	if s.streams == nil {
		return s.stream, nil
	}
	return s.streams.streamFor(ctx, s.key(jti))
}

// ClusterStreamKey is clusterStreamKey, for tests that check the layout.
var ClusterStreamKey = clusterStreamKey

// KeySlot is keySlot.
var KeySlot = keySlot
