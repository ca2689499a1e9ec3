//go:build !race

package cached_test

const raceEnabled = false
