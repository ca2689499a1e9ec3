package conformance_test

import (
	"testing"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// A backend proves it keeps the contract with one test function: a factory
// that returns a fresh, empty store for each subtest. Backends with a server
// add WithUnavailable, a factory for a store whose server is down.
func ExampleRun() {
	testConformance := func(t *testing.T) {
		conformance.Run(t, func(t *testing.T) blocklist.Store {
			s := memorystore.New()
			t.Cleanup(func() { s.Close() })
			return s
		})
	}
	_ = testConformance // in a _test.go file: func TestConformance(t *testing.T) { ... }
}
