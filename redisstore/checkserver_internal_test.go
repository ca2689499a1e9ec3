package redisstore

import "testing"

func TestVersionAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"7.0.0": true, "7.0.15": true, "7.2.4": true, "8.0.1": true, "10.0.0": true,
		"6.2.14": false, "6.0.0": false, "5.0.7": false, "2.8.24": false,
		"": false, "7": false, "x.y.z": false, "7.x": false,
	} {
		if got := versionAtLeast(v, minVersion); got != want {
			t.Errorf("versionAtLeast(%q, 7.0) = %v, want %v", v, got, want)
		}
	}
}
