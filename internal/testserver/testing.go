package testserver

import (
	"context"
	"errors"
	"os"
	"testing"
)

// Redis starts a redis-server for the test, as StartRedis does, and closes
// it when the test ends. When redis-server is not installed the test is
// skipped, or fails if the environment has CI=true. Any other start error
// fails the test.
func Redis(t testing.TB, args ...string) *Server {
	t.Helper()
	return startForTest(t, StartRedis, args)
}

// Memcached starts a memcached for the test, as StartMemcached does, and
// closes it when the test ends. When memcached is not installed the test is
// skipped, or fails if the environment has CI=true.
func Memcached(t testing.TB, args ...string) *Server {
	t.Helper()
	return startForTest(t, StartMemcached, args)
}

// startForTest starts a server with start and closes it when the test ends.
func startForTest(t testing.TB, start func(context.Context, ...string) (*Server, error), args []string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	s, err := start(ctx, args...)
	if err != nil {
		skipOrFatal(t, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return s
}

// RedisCluster starts a Redis Cluster for the test, as StartRedisCluster
// does, and closes it when the test ends. When redis-server is not
// installed the test is skipped, or fails if the environment has
// CI=true.
func RedisCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	return clusterForTest(t, func(ctx context.Context) (*Cluster, error) { return StartRedisCluster(ctx, masters) })
}

// RedisClusterWithReplicas starts a Redis Cluster with replicas for the
// test, as StartRedisClusterWithReplicas does, and closes it when the test
// ends. When redis-server is not installed the test is skipped, or fails if
// the environment has CI=true.
func RedisClusterWithReplicas(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	return clusterForTest(t, func(ctx context.Context) (*Cluster, error) {
		return StartRedisClusterWithReplicas(ctx, masters, replicasPerMaster)
	})
}

func clusterForTest(t testing.TB, start func(context.Context) (*Cluster, error)) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clusterTimeout)
	defer cancel()
	c, err := start(ctx)
	if err != nil {
		skipOrFatal(t, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return c
}

// skipOrFatal skips on a missing binary, unless CI=true: there the servers
// are part of the environment and their absence must not pass silently.
func skipOrFatal(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") != "true" {
		t.Skipf("%v (with CI=true this is a failure)", err)
	}
	t.Fatalf("%v", err)
}
