package redisstore

// Prefix returns the key prefix of the Store (see WithPrefix), so tests can
// make a peer of it or read its keys.
func (s *Store) Prefix() string { return s.prefix }

// Stream returns the key of the stream revocations are announced on (the
// prefix itself, see the package documentation), or "" with WithoutEvents.
func (s *Store) Stream() string { return s.stream }
