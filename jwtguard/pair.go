package jwtguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// tokenResponse is the JSON form of a Pair: an RFC 6749 section 5.1
// access token response. refresh_expires_in is an extension (RFC 6749
// section 5.1 lets a server add parameters and clients ignore those they do
// not know), so that RefreshExpiresAt survives the round trip.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        *int64 `json:"expires_in,omitempty"`
	RefreshToken     string `json:"refresh_token,omitempty"`
	RefreshExpiresIn *int64 `json:"refresh_expires_in,omitempty"`
}

// MarshalJSON encodes p as an OAuth 2.0 token response (RFC 6749 section
// 5.1), the body a login or refresh endpoint answers with:
//
//	{"access_token":"…","token_type":"Bearer","expires_in":899,"refresh_token":"…","refresh_expires_in":86399}
//
// expires_in and refresh_expires_in are the seconds, rounded down, from
// the moment the pair was minted (by NewSession or Refresh, on the Guard's
// clock) to AccessExpiresAt and RefreshExpiresAt, never negative; for a
// Pair made otherwise they count from the time of the call. A zero
// expiry time leaves its member out, and so does an empty RefreshToken.
// SessionID is not encoded: it is the sid claim of both tokens.
func (p Pair) MarshalJSON() ([]byte, error) {
	from := p.mintedAt
	if from.IsZero() {
		from = time.Now()
	}
	res := tokenResponse{
		AccessToken:  p.AccessToken,
		TokenType:    "Bearer",
		ExpiresIn:    secondsUntil(from, p.AccessExpiresAt),
		RefreshToken: p.RefreshToken,
	}
	if p.RefreshToken != "" {
		res.RefreshExpiresIn = secondsUntil(from, p.RefreshExpiresAt)
	}
	return json.Marshal(res)
}

// UnmarshalJSON decodes an OAuth 2.0 token response (RFC 6749 section 5.1)
// into p, as a client receives it: AccessExpiresAt and RefreshExpiresAt
// are the time of the call plus expires_in and refresh_expires_in (zero
// when absent), and SessionID is left empty. It returns an error for a
// response without access_token, a token_type other than Bearer (compared
// case-insensitively, RFC 6749 section 5.1), or a negative lifetime; p is
// then left unchanged.
func (p *Pair) UnmarshalJSON(data []byte) error {
	var res tokenResponse
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("jwtguard: token response: %w", err)
	}
	switch {
	case res.AccessToken == "":
		return errors.New("jwtguard: token response without access_token")
	case !strings.EqualFold(res.TokenType, "Bearer"):
		return fmt.Errorf("jwtguard: token response of token_type %q, not Bearer", res.TokenType)
	case res.ExpiresIn != nil && *res.ExpiresIn < 0, res.RefreshExpiresIn != nil && *res.RefreshExpiresIn < 0:
		return errors.New("jwtguard: token response with a negative lifetime")
	}
	now := time.Now()
	at := func(seconds *int64) time.Time {
		if seconds == nil {
			return time.Time{}
		}
		// Saturate: a Duration holds only 292 years of seconds, and a
		// wrapped product would put the expiry in the past.
		if *seconds > int64(math.MaxInt64/time.Second) {
			return now.Add(math.MaxInt64)
		}
		return now.Add(time.Duration(*seconds) * time.Second)
	}
	*p = Pair{
		AccessToken:      res.AccessToken,
		AccessExpiresAt:  at(res.ExpiresIn),
		RefreshToken:     res.RefreshToken,
		RefreshExpiresAt: at(res.RefreshExpiresIn),
		mintedAt:         now,
	}
	return nil
}

// secondsUntil returns the whole seconds from from to t, rounded down and
// never negative, or nil for a zero t.
func secondsUntil(from, t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	s := max(int64(t.Sub(from)/time.Second), 0)
	return &s
}
