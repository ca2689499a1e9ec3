package memorystore

// Held reports how many entries s holds, expired or not, without sweeping,
// so tests can see what the background sweeper did.
func Held(s *Store) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}
