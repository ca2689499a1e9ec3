package memcachestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist"
)

// parseKey splits a key back into the prefix and id it was made from, or,
// for a hashed key, the prefix and the digest. It is the proof that keys are
// unambiguous: if every key parses back to its inputs, no two inputs share a
// key (hashed keys aside, whose values carry the id).
func parseKey(t *testing.T, key string) (prefix, id string, hashed bool, digest []byte) {
	t.Helper()
	i := strings.IndexAny(key, "=#")
	if i < 0 {
		t.Fatalf("key %q has no tag", key)
	}
	prefix = unescape(t, key[:i])
	body := key[i+1:]
	if key[i] == hashedTag {
		d, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil || len(d) != sha256.Size {
			t.Fatalf("key %q: hashed body is not a base64url SHA-256: %v", key, err)
		}
		return prefix, "", true, d
	}
	return prefix, unescape(t, body), false, nil
}

func unescape(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			t.Fatalf("%q: truncated escape", s)
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil || strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] {
			t.Fatalf("%q: bad escape %q", s, s[i:i+3])
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String()
}

// checkKey checks the key of (prefix, jti): legal for memcached, and parsing
// back to exactly its inputs.
func checkKey(t *testing.T, prefix, jti string) {
	t.Helper()
	escaped := escapePrefix(prefix)
	if len(escaped) > maxPrefixLen {
		return // New turns this prefix into an error on every call
	}
	key, hashed := makeKey(escaped, jti)
	if !legalKey(key) {
		t.Fatalf("makeKey(%q, %q) = %q: not a legal memcached key", prefix, jti, key)
	}
	gotPrefix, gotID, gotHashed, digest := parseKey(t, key)
	if gotHashed != hashed {
		t.Fatalf("makeKey(%q, %q) = %q: hashed = %v, key says %v", prefix, jti, key, hashed, gotHashed)
	}
	if gotPrefix != prefix {
		t.Fatalf("makeKey(%q, %q) = %q: parses to prefix %q", prefix, jti, key, gotPrefix)
	}
	if hashed {
		sum := sha256.Sum256([]byte(jti))
		if !bytes.Equal(digest, sum[:]) {
			t.Fatalf("makeKey(%q, %q) = %q: digest is not the id's SHA-256", prefix, jti, key)
		}
		n := len(escaped) + 1
		for i := 0; i < len(jti); i++ {
			if c := jti[i]; c <= ' ' || c >= 0x7f || c == '%' {
				n += 3
			} else {
				n++
			}
		}
		if n <= maxKeyLen {
			t.Fatalf("makeKey(%q, %q): hashed an id that fits verbatim (%d bytes)", prefix, jti, n)
		}
	} else if gotID != jti {
		t.Fatalf("makeKey(%q, %q) = %q: parses to id %q", prefix, jti, key, gotID)
	}

	// The value tells this id from any other that shares its key.
	it := &memcache.Item{Key: key, Flags: valueFlags, Value: encodeValue(1234, jti, hashed)}
	exp, mine, err := decodeValue(it, jti, hashed)
	if err != nil || !mine || exp != 1234 {
		t.Fatalf("decodeValue of %q's own value = (%d, %v, %v)", jti, exp, mine, err)
	}
	if hashed {
		other := jti[:len(jti)-1] + string(jti[len(jti)-1]^1)
		if _, mine, err := decodeValue(it, other, true); mine || err != nil {
			t.Fatalf("decodeValue took %q's value for %q's (mine %v, err %v)", jti, other, mine, err)
		}
	}
}

var keySeeds = []string{
	"a", " ", "\x00", "\n", "\r\n", "\x7f", "\xff", "\xc3\x28", "%", "%25", "%%", "=", "#", "a=b#c",
	"{}", "*", "%s%d", "550e8400-e29b-41d4-a716-446655440000", "eyJhbGciOi.J9=",
	strings.Repeat("a", 239), strings.Repeat("a", 240), strings.Repeat("a", 241),
	strings.Repeat("\x00", 79), strings.Repeat("\x00", 80), strings.Repeat(" ", 1024),
	strings.Repeat("x", 300) + "1", strings.Repeat("x", 300) + "2",
	strings.Repeat("z", blocklist.MaxIDLen),
}

var prefixSeeds = []string{DefaultPrefix, "", "app:", "app:=x", "app:%3Dx", "a b", "#", "=", "\x00", strings.Repeat("p", 206), strings.Repeat("=", 69)}

// FuzzKey checks the key encoding: every valid id under every usable prefix
// yields a legal memcached key, and every key parses back to its own prefix
// and id, so distinct (prefix, id) pairs never share a key, except hashed
// ids whose digests collide, which their values tell apart. Under plain go
// test it runs the seeds below; to explore further:
//
//	go test -run '^$' -fuzz FuzzKey -fuzztime 1m -fuzzminimizetime 5x ./memcachestore
//
// (-fuzzminimizetime keeps the run from spending a minute minimizing each
// new input.)
func FuzzKey(f *testing.F) {
	for i, id := range keySeeds {
		f.Add(prefixSeeds[i%len(prefixSeeds)], id)
	}
	f.Fuzz(func(t *testing.T, prefix, jti string) {
		if blocklist.ValidateID(jti) != nil {
			return
		}
		checkKey(t, prefix, jti)
		checkKey(t, DefaultPrefix, jti)
	})
}

// TestKeyBoundaries walks the lengths where an id stops fitting verbatim.
func TestKeyBoundaries(t *testing.T) {
	p := escapePrefix(DefaultPrefix)
	room := maxKeyLen - len(p) - 1
	for _, tc := range []struct {
		id     string
		hashed bool
	}{
		{strings.Repeat("a", room), false},
		{strings.Repeat("a", room+1), true},
		{strings.Repeat("\n", room/3), false},
		{strings.Repeat("\n", room/3+1), true},
	} {
		key, hashed := makeKey(p, tc.id)
		if hashed != tc.hashed {
			t.Errorf("id of %d bytes (%q...): hashed = %v, want %v", len(tc.id), tc.id[:1], hashed, tc.hashed)
		}
		if !legalKey(key) {
			t.Errorf("id of %d bytes: illegal key %q", len(tc.id), key)
		}
	}
	// The longest prefix still leaves room for a hashed key.
	key, _ := makeKey(strings.Repeat("p", maxPrefixLen), strings.Repeat("x", blocklist.MaxIDLen))
	if len(key) != maxKeyLen || !legalKey(key) {
		t.Errorf("longest prefix: key of %d bytes, legal %v", len(key), legalKey(key))
	}
}

func TestKeyAllocations(t *testing.T) {
	p := escapePrefix(DefaultPrefix)
	for _, id := range []string{"550e8400-e29b-41d4-a716-446655440000", "with space", strings.Repeat("x", 1000)} {
		if n := testing.AllocsPerRun(100, func() { makeKey(p, id) }); n > 1 {
			t.Errorf("makeKey(%d-byte id) allocates %v times, want 1 (the key)", len(id), n)
		}
	}
}
