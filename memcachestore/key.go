package memcachestore

import (
	"crypto/sha256"
	"encoding/base64"

	"github.com/jwtblocklist/blocklist"
)

// Key layout. Memcached refuses keys over 250 bytes and keys holding a space
// or a control character, and an id may be 1024 bytes of anything, so an id
// is never used as a key as it is:
//
//	escape(prefix) "=" escape(id)             when that fits in 250 bytes
//	escape(prefix) "#" base64url(sha256(id))  otherwise (44 bytes after the prefix)
//
// escape keeps the bytes '!' to '~' and writes every other byte, and '%'
// itself, as %XX (upper-case hex), so it is reversible and its output is
// always a legal key. In the prefix it also escapes '=' and '#', so the first
// '=' or '#' of a key ends its prefix: two different prefixes can never
// produce the same key, whatever the ids, even when one prefix starts with
// the other ("app:" and "app:=x" give "app:=..." and "app:%3Dx=...").
//
// Two different ids under one prefix get different keys, except two long ids
// whose SHA-256 digests collide; for those the value holds the whole id and
// reads compare it, so they are still never confused.
const (
	maxKeyLen = 250 // memcached's KEY_MAX_LENGTH

	verbatimTag = '='
	hashedTag   = '#'

	// hashedBodyLen is the length of a hashed key after its prefix.
	hashedBodyLen = 1 + 43 // tag + base64url (no padding) of 32 bytes

	// maxPrefixLen is the longest escaped prefix that leaves room for a
	// hashed key.
	maxPrefixLen = maxKeyLen - hashedBodyLen
)

const hexDigits = "0123456789ABCDEF"

// keepInID reports whether byte c of an id is written into a key as it is.
func keepInID(c byte) bool { return c > ' ' && c < 0x7f && c != '%' }

// keepInPrefix reports whether byte c of a prefix is written into a key as it
// is.
func keepInPrefix(c byte) bool { return keepInID(c) && c != verbatimTag && c != hashedTag }

// escapePrefix returns the prefix as it appears at the start of every key.
func escapePrefix(p string) string {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if keepInPrefix(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return string(b)
}

// escapedIDLen returns the length of the escaped id, stopping early once it
// exceeds limit.
func escapedIDLen(jti string, limit int) int {
	n := 0
	for i := 0; i < len(jti) && n <= limit; i++ {
		if keepInID(jti[i]) {
			n++
		} else {
			n += 3
		}
	}
	return n
}

// makeKey returns the memcached key of jti under the escaped prefix, and
// whether it is a hashed key (whose value must then carry the id). The key
// is built in a stack buffer and costs one allocation, the string itself.
func makeKey(prefix, jti string) (key string, hashed bool) {
	var buf [maxKeyLen]byte
	b := append(buf[:0], prefix...)
	if n := escapedIDLen(jti, maxKeyLen); len(prefix)+1+n <= maxKeyLen {
		b = append(b, verbatimTag)
		if n == len(jti) { // nothing to escape: the usual id
			return string(append(b, jti...)), false
		}
		for i := 0; i < len(jti); i++ {
			c := jti[i]
			if keepInID(c) {
				b = append(b, c)
			} else {
				b = append(b, '%', hexDigits[c>>4], hexDigits[c&0xf])
			}
		}
		return string(b), false
	}
	var idBuf [blocklist.MaxIDLen]byte // a copy on the stack: []byte(jti) would allocate
	sum := sha256.Sum256(append(idBuf[:0], jti...))
	b = append(b, hashedTag)
	b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	return string(b), true
}

// legalKey reports whether memcached accepts key: at most 250 bytes, none of
// them a space, a control character or outside ASCII. (Memcached itself
// takes bytes above 0x7e; keys of ours never hold them.)
func legalKey(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return false
		}
	}
	return true
}
